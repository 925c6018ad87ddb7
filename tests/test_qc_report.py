"""`medq qc report`: the self-contained HTML report of a results store filled with real results."""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_medq
from conftest_qc import MODEL, filled_db
from medq.errors import InvalidParameter
from medq.qc.store import Store
from medq.report.qc_report import build_qc_report
from medq.report.render import CT_WINDOW
from medq.web.images import CT_REGION_WINDOWS, window_for


@pytest.fixture(scope="module")
def qc_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], dict]:
    """A SQLite store holding real assessments of samples, degraded samples and a broken file."""
    return filled_db(tmp_path_factory, "qc_report")


def _flagged(rows: list[dict]) -> Counter:
    return Counter(r["verdict"] for r in rows
                   if r["status"] == "ok" and r["verdict"] in ("reject", "usable"))


def _cards(html: str) -> list[str]:
    return re.findall(r'<div class="card" data-verdict="(\w+)">', html)


def test_report_counts_match_the_store(qc_db: tuple, tmp_path: Path) -> None:
    db, rows, _ = qc_db
    out = build_qc_report(db, tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    flagged = _flagged(rows)
    assert sum(flagged.values()) > 0
    count = re.search(r'id="flagged-count">(\d+)<', html)
    assert count and int(count.group(1)) == sum(flagged.values())
    assert f"({flagged['reject']} reject, {flagged['usable']} usable)" in html
    assert re.search(r'id="total-count">(\d+)<', html).group(1) == str(len(rows))
    errors = [r for r in rows if r["status"] == "error"]
    assert re.search(r'id="error-count">(\d+)<', html).group(1) == str(len(errors))
    # one row per modality (an unreadable file's is "not read"): verdicts, errors, total; then all
    def cells(group: list[dict]) -> str:
        verdicts = Counter(r["verdict"] for r in group if r["status"] == "ok")
        counts = [verdicts[v] for v in ("good", "usable", "reject")]
        counts += [sum(r["status"] == "error" for r in group), len(group)]
        return "".join(f'<td class="num">{n}</td>' for n in counts)

    named = {r.get("modality") or "not read" for r in rows}
    assert "not read" in named and len(named) >= 3
    for modality in named:
        group = [r for r in rows if (r.get("modality") or "not read") == modality]
        assert f"<tr><td>{modality}</td>{cells(group)}</tr>" in html
    assert f'<tr class="total"><td>all</td>{cells(rows)}</tr>' in html


def test_histogram_legend_tells_score_bands_from_verdicts(qc_db: tuple, tmp_path: Path) -> None:
    db, rows, _ = qc_db
    html = build_qc_report(db, tmp_path / "report.html").read_text(encoding="utf-8")
    legend = " ".join(re.search(r'id="histogram-legend">(.*?)</p>', html, re.S).group(1).split())
    assert "verdict bounds" not in legend
    assert "dotted lines mark the score bands (below 2.5 reject, below 3.5 usable" in legend
    assert "verdict is its description's, read from its findings" in legend
    assert "may differ from the score's band" in legend
    from medq.describe import verdict_for  # the stored verdicts do differ from the bands here

    assert any(r["verdict"] != verdict_for(r["score"]) for r in rows if r["status"] == "ok")


def test_report_is_self_contained_with_thumbnails(qc_db: tuple, tmp_path: Path) -> None:
    db, rows, _ = qc_db
    html = build_qc_report(db, tmp_path / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:") or s.startswith("#") for s in sources)
    assert "http://" not in html and "https://" not in html
    thumbs = re.findall(r'<img src="(data:image/png;base64,[^"]+)" alt="item', html)
    assert len(thumbs) == sum(_flagged(rows).values())
    for uri in thumbs:
        img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert max(img.size) <= 160
        assert np.asarray(img).std() > 5  # a real picture, not a blank tile
    assert 'alt="score histograms per modality"' in html


def test_flagged_items_reject_first_then_usable_worst_first(qc_db: tuple, tmp_path: Path) -> None:
    db, rows, _ = qc_db
    html = build_qc_report(db, tmp_path / "report.html").read_text(encoding="utf-8")
    verdicts = _cards(html)
    flagged = _flagged(rows)
    assert verdicts == ["reject"] * flagged["reject"] + ["usable"] * flagged["usable"]
    scores = [float(s) for s in re.findall(r"score <b>([\d.]+)</b>", html)]
    rejects, usables = scores[:flagged["reject"]], scores[flagged["reject"]:]
    assert len(usables) == flagged["usable"] >= 2  # both groups have an order to check
    assert rejects == sorted(rejects) and usables == sorted(usables)
    worst = min((r for r in rows if r["status"] == "ok"), key=lambda r: r["score"])
    first_card = html.split('<div class="card"')[1]
    assert worst["path"] in first_card


def test_report_caps_thumbnails_and_says_how_many_more(qc_db: tuple, tmp_path: Path) -> None:
    db, rows, _ = qc_db
    html = build_qc_report(db, tmp_path / "r.html", max_flagged=2).read_text(encoding="utf-8")
    total = sum(_flagged(rows).values())
    assert len(_cards(html)) == 2
    assert f"Showing the first 2;\n{total - 2} more are in the database" in html
    none = build_qc_report(db, tmp_path / "r0.html", max_flagged=0).read_text(encoding="utf-8")
    assert "No thumbnails asked for" in none and "Nothing flagged" not in none
    assert "Showing the first 0" not in none  # it said so, and then "Nothing flagged."
    with pytest.raises(InvalidParameter, match="name the output .html"):
        build_qc_report(db, tmp_path / "r.pdf")  # it wrote HTML into r.pdf
    assert not (tmp_path / "r.pdf").exists()


def test_report_lists_errors_and_provenance(qc_db: tuple, tmp_path: Path) -> None:
    from medq import __version__

    db, rows, _ = qc_db
    html = build_qc_report(db, tmp_path / "report.html").read_text(encoding="utf-8")
    errors = [r for r in rows if r["status"] == "error"]
    section = html[html.index('id="errors"'):html.index('id="provenance"')]
    for row in errors:
        assert row["path"] in section and row["error"] in section
    runs = html[html.index('id="provenance"'):]
    assert f"<b>{MODEL}</b> ({len(rows)} items)" in runs
    assert f"<td>{__version__}</td>" in runs
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", runs)


def test_missing_image_does_not_stop_the_report(qc_db: tuple, tmp_path: Path) -> None:
    import shutil

    from conftest_qc import fill_store

    db, rows, _ = qc_db
    moved = tmp_path / "inputs"
    moved.mkdir()
    target = next(r for r in rows if r["status"] == "ok" and r["verdict"] == "reject")
    copy = moved / Path(target["path"]).name
    shutil.copy(target["path"], copy)
    fill_store(tmp_path / "moved.sqlite", [{**target, "path": str(copy)}])
    copy.unlink()
    html = build_qc_report(tmp_path / "moved.sqlite", tmp_path / "r.html").read_text("utf-8")
    assert "no image: the recorded image is no longer there" in html
    assert re.search(r'id="flagged-count">1<', html)


def test_empty_store_report(tmp_path: Path) -> None:
    Store(tmp_path / "empty.sqlite").close()
    html = build_qc_report(tmp_path / "empty.sqlite", tmp_path / "r.html").read_text("utf-8")
    assert re.search(r'id="flagged-count">0<', html)
    assert "The database holds no items yet." in html and "No QC run is recorded" in html


def test_ct_thumbnails_use_a_window_for_the_region() -> None:
    from medq.data.samples import load_sample

    ct = load_sample("ct_small")
    assert window_for(ct.evolve(region="head")) == CT_REGION_WINDOWS["head"]
    assert window_for(ct.evolve(region="unknown")) == CT_WINDOW == (-160.0, 240.0)  # soft tissue
    mr = load_sample("mni_t1")
    lo, hi = window_for(mr)
    low, high = np.percentile(mr.array, [0.5, 99.5])  # of every voxel (window_for subsamples)
    assert lo == pytest.approx(low, abs=1.0) and hi == pytest.approx(high, rel=0.02)
    assert 0.003 < np.mean(mr.array > hi) < 0.007


def test_cli_report_and_bad_database(qc_db: tuple, tmp_path: Path) -> None:
    db, _, _ = qc_db
    out = tmp_path / "cli.html"
    res = run_medq("qc", "report", "--db", db, "-o", out)
    assert res.returncode == 0, res.stderr
    assert out.exists() and 'id="flagged-count"' in out.read_text("utf-8")
    missing = tmp_path / "no" / "qc.sqlite"
    bad = run_medq("qc", "report", "--db", missing, "-o", tmp_path / "x.html")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medq: error:") and "does not exist" in lines[0]
    assert not (tmp_path / "x.html").exists()
    typo = tmp_path / "qc-typo.sqlite"  # a reader never creates an empty database
    bad = run_medq("qc", "export", "--db", typo, "-o", tmp_path / "x.csv")
    assert bad.returncode == 2 and "no such results database" in bad.stderr
    assert not typo.exists() and not (tmp_path / "x.csv").exists()
    for command, name in (("report", "x.html"), ("export", "x.csv")):
        made = tmp_path / "new" / command / name  # outputs make their folder, as every writer
        res = run_medq("qc", command, "--db", db, "-o", made)
        assert res.returncode == 0 and made.is_file(), res.stderr


def test_a_database_of_two_models_is_reported_one_model_at_a_time(qc_db: tuple,
                                                                   tmp_path: Path) -> None:
    """Two models' results of the same files made one report of twice the items, two cards
    per file, neither naming its model."""
    import shutil

    db, rows, _ = qc_db
    both = tmp_path / "both.sqlite"
    shutil.copy(db, both)
    with Store(both) as store:
        for row in store.items():
            store.record({**row, "model": "other-model", "score": 1.0, "verdict": "reject"})
    with pytest.raises(InvalidParameter, match=r"holds the results of 2 models \(.*\): name one "
                                               "with --model"):
        build_qc_report(both, tmp_path / "mixed.html")
    html = build_qc_report(both, tmp_path / "one.html", model=MODEL).read_text(encoding="utf-8")
    assert re.search(r'id="total-count">(\d+)<', html).group(1) == str(len(rows))
    with Store(both) as store:  # this model's reviewed items, not the database's
        store.add_review(store.items(model="other-model")[0]["id"], "Dr A", "accept")
    html = build_qc_report(both, tmp_path / "one.html", model=MODEL).read_text(encoding="utf-8")
    assert re.search(r'id="reviewed-count">(\d+)<', html).group(1) == "0"
    assert f"model {MODEL}" in html and "other-model" not in html
    with pytest.raises(InvalidParameter, match="no results for model 'nope'"):
        build_qc_report(both, tmp_path / "nope.html", model="nope")
    res = run_medq("qc", "report", "--db", both, "-o", tmp_path / "cli.html", "-m", "other-model")
    assert res.returncode == 0, res.stderr
    cli = (tmp_path / "cli.html").read_text(encoding="utf-8")
    assert len(_cards(cli)) == sum(r["status"] == "ok" for r in rows)  # every one a reject
    assert run_medq("qc", "report", "--db", both, "-o", tmp_path / "x.html").returncode == 2
