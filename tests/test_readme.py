"""README.md's examples as a new user runs them: every ```python block and the cheap `medq`
command lines of its ```bash blocks, in a fresh folder holding `medq samples --export samples/`,
with the claims the README makes next to them (printed values, JSON keys, files written)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

import medq
from conftest import run_medq
from medq.errors import MedqError

README = Path(__file__).parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
WIDE = {"COLUMNS": "250"}  # one table row per line


def fenced(lang: str) -> list[tuple[int, str]]:
    """The README's ```lang blocks as (line number of their first line, code)."""
    blocks, start, lines = [], None, TEXT.splitlines()
    for n, line in enumerate(lines, 1):
        if start is None and line.strip() == f"```{lang}":
            start = n + 1
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines[start - 1:n - 1]) + "\n"))
            start = None
    return blocks


def readme_line(prefix: str) -> tuple[list[str], str]:
    """The one README bash line starting with `prefix`: its words (comment dropped), its comment."""
    found = [line for _, code in fenced("bash") for line in code.splitlines()
             if line.startswith(prefix)]
    assert len(found) == 1, f"README: {len(found)} bash lines start with {prefix!r}"
    code, _, comment = found[0].partition("  #")
    return shlex.split(code), comment.strip()


def nibabel_data() -> str:
    """`$D` of the README: the README's own `D=$(python -c ...)` line run by bash."""
    (line,) = [ln for _, code in fenced("bash") for ln in code.splitlines()
               if ln.startswith("D=$(python")]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    res = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$D"'], capture_output=True,
                         text=True, env=dict(os.environ, PATH=path), timeout=60)
    assert res.returncode == 0 and Path(res.stdout).is_dir(), res.stderr
    return res.stdout


def run_readme_line(prefix: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the README's bash line starting with `prefix` in `cwd` as `medq …` (`$D` expanded)."""
    words, _ = readme_line(prefix)
    assert words[0] == "medq", words
    if any("$D" in w for w in words):
        data = nibabel_data()
        words = [w.replace("$D", data) for w in words]
    return run_medq(*words[1:], cwd=cwd, env=WIDE)


def subset(claimed: Any, actual: Any) -> bool:
    """Whether `claimed` (the README's abridged JSON) is contained in `actual`."""
    if isinstance(claimed, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in claimed.items())
    if isinstance(claimed, list):
        return isinstance(actual, list) and len(claimed) == len(actual) and all(
            subset(c, a) for c, a in zip(claimed, actual, strict=True))
    return claimed == actual


def table_rows(stdout: str) -> dict[str, list[str]]:
    """A Rich table's body rows, keyed by their first cell."""
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in stdout.splitlines()
            if line.startswith("│")]
    return {row[0]: row for row in rows if row and row[0]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's `medq samples --export samples/`, run in a fresh folder."""
    folder = tmp_path_factory.mktemp("readme")
    res = run_readme_line("medq samples --export", folder)
    assert res.returncode == 0, res.stderr
    for name in ("ct_small.dcm", "mr_small.dcm", "mni_t1.nii.gz"):
        assert f"samples/{name}" in res.stdout.split()
        assert (folder / "samples" / name).is_file()
    return folder / "samples"


@pytest.fixture
def workdir(tmp_path: Path, exported: Path) -> Path:
    """A fresh folder holding the exported samples as `samples/`, as the README expects."""
    (tmp_path / "samples").symlink_to(exported, target_is_directory=True)
    return tmp_path


# ---------------------------------------------------------------- command lines, with their claims


def check_info_json(res: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """The JSON the README shows under "`medq info --json` prints a list" (its `...` dropped)."""
    block = TEXT.split("`medq info --json` prints a list", 1)[1].split("```json\n", 1)[1]
    claimed = json.loads(block.split("\n```", 1)[0].replace(", ...", ""))
    actual = json.loads(res.stdout)
    assert subset(claimed, actual), (claimed, actual)


def check_degradations(res: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """Every kind of the physics engine's table is listed, for the modalities the table gives."""
    section = TEXT.split("## The physics engine", 1)[1].split("\n## ", 1)[0]
    listed = {name: row[1].split(",") for name, row in table_rows(res.stdout).items()}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for kind in re.findall(r"`(\w+)`", cells[0]):
            assert kind in listed, kind
            if cells[1] == "all":
                assert {"CT", "MR", "PT", "DX", "OP"} <= set(listed[kind]), (kind, listed[kind])
            elif cells[1] == "all but OP":
                assert "OP" not in listed[kind] and "CT" in listed[kind], (kind, listed[kind])
            else:
                assert set(cells[1].split("/")) <= set(listed[kind]), (kind, listed[kind])


def check_simulate_ct(res: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """A derived DICOM with new UIDs, and the record (name, level, unit, severity, seed, params)
    in a JSON sidecar next to it."""
    out = pydicom.dcmread(cwd / "ct_low_dose.dcm")
    src = pydicom.dcmread(cwd / "samples" / "ct_small.dcm")
    assert out.ImageType[0] == "DERIVED" and out.SOPInstanceUID != src.SOPInstanceUID
    assert out.SeriesInstanceUID != src.SeriesInstanceUID
    record = json.loads((cwd / "ct_low_dose.json").read_text())["degradation"]
    assert {"name", "level", "unit", "severity", "seed", "params"} <= set(record)
    assert (record["name"], record["level"], record["seed"]) == ("ct_low_dose", 1e5, 1)


def check_simulate_mr(res: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """NIfTI in, NIfTI out, with its sidecar."""
    record = json.loads((cwd / "t1_R.json").read_text())["degradation"]
    assert (record["name"], record["severity"]) == ("mr_undersample", "moderate")
    assert medq.load(cwd / "t1_R.nii.gz").modality == "MR"


def check_assess_table(res: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """"table: score, grade, recall, findings", one row per input."""
    header = next(line for line in res.stdout.splitlines() if line.startswith("┃"))
    assert all(f" {col} " in header for col in ("score", "grade", "recall", "findings"))
    rows = table_rows(res.stdout)
    assert set(rows) == {"ct_small.dcm", "mni_t1.nii.gz"}
    assert "acceptable" in rows["ct_small.dcm"]  # the README: "acceptable" at 3.05 there


def check_describe_table(res: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """"table: verdict, score, findings, text"; CT_small is `reject` (moderate noise)."""
    header = next(line for line in res.stdout.splitlines() if line.startswith("┃"))
    assert all(f" {col} " in header for col in ("verdict", "score", "findings", "text"))
    rows = table_rows(res.stdout)
    assert rows["ct_small.dcm"][1] == "reject" and "noise (moderate" in rows["ct_small.dcm"][3]
    assert "Overall, the quality of this image is" in res.stdout


def check_par(res: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """"MR, 9 × 64², TR 2000 ms, TE 30 ms"."""
    (row,) = table_rows(res.stdout).values()
    assert row[1] == "MR" and row[3] == "9×64×64", row
    assert "tr_ms=2000.0" in row[5] and "te_ms=30.0" in row[5], row


def check_tinypet(res: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """"PT, 3 × 10², FDG, F-18, 300 s frame (too small to grade)"."""
    (row,) = table_rows(res.stdout).values()
    assert row[1] == "PT" and row[3] == "3×10×10", row
    assert {"radiopharmaceutical=FDG", "radionuclide=F-18", "frame_duration_ms=300000.0"} <= \
        set(row[5].split(", ")), row
    pet = run_medq("assess", res.args[-1], cwd=cwd)
    assert pet.returncode == 2 and "medq assesses images of at least 16×16" in pet.stderr


# (README line prefix, the comment it must carry, what is checked)
COMMANDS: list[tuple[str, str, Callable[[subprocess.CompletedProcess[str], Path], None]]] = [
    ("medq info samples/ct_small.dcm", "modality, region, shape, spacing, physics",
     check_info_json),
    ("medq degradations", "every degradation, its physical unit and severity levels",
     check_degradations),
    ("medq simulate samples/ct_small.dcm", "", check_simulate_ct),
    ("medq simulate samples/mni_t1.nii.gz", "", check_simulate_mr),
    ("medq assess samples/ct_small.dcm samples/mni_t1.nii.gz",
     "table: score, grade, recall, findings", check_assess_table),
    ("medq describe samples/ct_small.dcm samples/mni_t1.nii.gz",
     "table: verdict, score, findings, text", check_describe_table),
    ("medq info $D/phantom_EPI_asc_CLEAR_2_1.PAR", "MR, 9 × 64², TR 2000 ms, TE 30 ms", check_par),
    ("medq info $D/tinypet.v", "PT, 3 × 10², FDG, F-18, 300 s frame (too small to grade)",
     check_tinypet),
]


@pytest.mark.parametrize(("prefix", "comment", "check"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_readme_command_line(prefix: str, comment: str, check: Callable, workdir: Path) -> None:
    _, said = readme_line(prefix)
    assert said == comment, f"README's comment changed: {said!r}; update its check"
    res = run_readme_line(prefix, workdir)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "", res.stderr
    check(res, workdir)


# ---------------------------------------------------------------- Python blocks, with their claims


def claims_assess_many(ns: dict[str, Any], out: str, cwd: Path) -> None:
    """"Assessment or a medq error per input", in input order; the table's CT_small grade."""
    kinds = [type(r).__name__ for r in ns["results"]]
    assert kinds[:-1] == ["Assessment"] * (len(kinds) - 1), kinds
    assert isinstance(ns["results"][-1], MedqError), kinds
    assert out.split()[1] == "acceptable", out


def claims_arrays(ns: dict[str, Any], out: str, cwd: Path) -> None:
    """Arrays in, "→ Assessment", "ndarray out", the restored array saved as NIfTI."""
    assert type(ns["a"]).__name__ == "Assessment"
    assert isinstance(ns["result"].array, np.ndarray) and "numpy.ndarray" in out
    saved = medq.load(cwd / "restored.nii.gz")
    assert saved.modality == "CT" and saved.shape == ns["ct"].array.shape


def claims_describe(ns: dict[str, Any], out: str, cwd: Path) -> None:
    """Verdict and (type, severity, location) findings; the text ends with its verdict."""
    first = out.splitlines()[0]
    assert first.startswith("reject [('noise', 'moderate', "), first
    assert out.splitlines()[1].endswith("Overall, the quality of this image is reject.")
    report = ns["report"]
    assert report.text.endswith(f"Overall, the quality of this image is {report.verdict}.")


def claims_restore(ns: dict[str, Any], out: str, cwd: Path) -> None:
    """`medq.restore` on a MedImage restores the noisy radiograph; the result saved as a derived
    DICOM."""
    assert ns["result"].changed and ns["result"].findings_addressed == ["noise"], out
    ds = pydicom.dcmread(cwd / "restored.dcm")
    assert ds.ImageType[0] == "DERIVED" and ds.Modality == "DX"


def claims_python(ns: dict[str, Any], out: str, cwd: Path) -> None:
    """"MedImage: HU array, spacing in mm, physics from tags"; "derived DICOM … back in HU"."""
    assert out.splitlines()[0] == "CT (128, 128) (0.661468, 0.661468) 120.0", out
    back = medq.load(cwd / "noisy.dcm")
    assert back.modality == "CT" and back.array.min() < -500  # air in HU


def claims_measures(ns: dict[str, Any], out: str, cwd: Path) -> None:
    """The measures its comment names, and "MedIQA's 7 salient slices of a volume"."""
    code = next(code for _, code in fenced("python") if "compute_measures(" in code)
    named = re.search(r"# (.*), \.\.\.", code).group(1).split(", ")
    measures = ns["compute_measures"](ns["ct"].array, "CT")
    assert set(named) <= set(measures), (named, sorted(measures))
    assert len(ns["salient_slices"](ns["t1"].array)) == 7


# a string that marks the block → its claims
PYTHON_CLAIMS: dict[str, Callable[[dict[str, Any], str, Path], None]] = {
    "assess_many(paths)": claims_assess_many,
    'medq.save(result.array, "restored.nii.gz"': claims_arrays,
    "report_from(assessment, image)": claims_describe,
    "load_sample(\"xr_head\")": claims_restore,
    'level=5e4, seed=1': claims_python,
    "compute_measures(ct.array": claims_measures,
}
PYTHON_BLOCKS = fenced("python")


def test_every_python_claim_names_one_block() -> None:
    assert len(PYTHON_BLOCKS) >= len(PYTHON_CLAIMS)
    for marker in PYTHON_CLAIMS:
        assert sum(marker in code for _, code in PYTHON_BLOCKS) == 1, marker


@pytest.mark.parametrize(("line", "code"), PYTHON_BLOCKS,
                         ids=[f"README.md:{n}" for n, _ in PYTHON_BLOCKS])
def test_readme_python_block(line: int, code: str, workdir: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    ns: dict[str, Any] = {"__name__": "__readme__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md:{line}", "exec"), ns)
    for marker, claims in PYTHON_CLAIMS.items():
        if marker in code:
            claims(ns, out.getvalue(), workdir)


# ---------------------------------------------------------------- links between the pages


def test_every_relative_link_resolves() -> None:
    """Every markdown link `](path)` of README.md and docs/*.md that is not http(s) (nor a bare
    `#anchor`) names a file that exists, relative to the page that holds it."""
    pages = [README, *sorted((README.parent / "docs").glob("*.md"))]
    assert len(pages) > 1, "docs/ holds no pages"
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"https?://", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(README.parent)}: {target}")
    assert not broken, broken
