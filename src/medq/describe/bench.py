"""`medq bench describe`: description metrics on the held-out test split.

Items are built deterministically from the TEST sources (`sources('test', dim)`: pydicom's real
CT and MR files, the AP skull radiograph, the right retina half, the held-out MNI zone) exactly
as the quality benchmark builds its items (`degraded_item`: 0–2 engine degradations at continuous
severities 0.2–3.2), and cached as images under `cache_dir()/describe/bench-<key>/`. Every item
is assessed (batched), described (`report_from`) and scored (`medq.describe.metrics`); the
summary has the four dimensions, the total /8 and the finding-type accuracy on moderate-or-worse
degradations per modality, for 2D and 3D, and overall.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medq.image import MedImage

BENCH_VERSION = 1
"""Bumped whenever item generation changes."""

SEED_BASE = 9_000_000
"""Seeds of the description benchmark items."""

GROUPS = ("CT", "MR", "PT", "XR", "OP", "2D", "3D", "overall")
"""Rows of the summary table."""


@dataclass(frozen=True)
class DescribePlan:
    """How many items per test source (2D and 3D), from what seed."""

    per_2d: int = 16
    per_3d: int = 8
    seed: int = 0

    def key(self) -> str:
        """Cache key of the plan and the generator version."""
        from medq.degrade import available

        text = json.dumps({**asdict(self), "version": BENCH_VERSION, "kinds": available()})
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def jobs(plan: DescribePlan) -> list[tuple[str, str, int]]:
    """(test source, dim, seed) of every item, in a fixed order."""
    from medq.data.sources import sources

    out: list[tuple[str, str, int]] = []
    base = SEED_BASE + plan.seed * 100_003
    for dim, count in (("2d", plan.per_2d), ("3d", plan.per_3d)):
        for src in sources("test", dim):
            out += [(src.name, dim, base + len(out) + i) for i in range(count)]
    return out


def _jsonable(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _make(job: tuple[str, str, int], folder: str) -> str:
    """Build one item and store it (image array + geometry + records) as an .npz file."""
    from pathlib import Path

    from medq.data.items import degraded_item
    from medq.data.sources import source_named
    from medq.io.atomic import atomic_path

    name, dim, seed = job
    path = Path(folder) / f"{name}-{dim}-{seed}.npz"
    if path.exists():
        return str(path)
    source = source_named(name, "test")
    image, _ = degraded_item(source, dim, seed)
    header = {"spacing": image.spacing, "modality": image.modality, "region": image.region,
              "physics": image.physics, "meta": image.meta, "source": name, "dim": dim}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, array=image.array, header=json.dumps(header, default=_jsonable))
    return str(path)


def load_item(path: str) -> tuple[MedImage, dict[str, Any]]:
    """(image, header) of a stored benchmark item."""
    with np.load(path) as data:
        header = json.loads(str(data["header"]))
        image = MedImage(data["array"], tuple(header["spacing"]), header["modality"],
                         header["region"], physics=header["physics"], meta=header["meta"])
    return image, header


def build_items(plan: DescribePlan, workers: int | None = None, progress: bool = True) -> list[str]:
    """Paths of the stored items of a plan (built once, then read from the cache)."""
    from functools import partial

    from medq.data.cache import cache_dir, map_jobs

    folder = cache_dir() / "describe" / f"bench-{plan.key()}"
    folder.mkdir(parents=True, exist_ok=True)
    return map_jobs(partial(_make, folder=str(folder)), jobs(plan), workers, progress,
                    "building description items", chunksize=2)


def group_of(modality: str) -> str:
    """Table group of a modality (CR/DX → XR)."""
    return "XR" if modality in ("CR", "DX") else modality


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics per modality group, 2D, 3D and overall, plus per-type recall (moderate+), per
    source, the sources whose file states lossy compression (`sources.lossy_sources`), and
    where points are lost: each contradiction (`metrics.contradictions`: group, type, what,
    minor/major) and each wrong verdict (group, reference → given), counted."""
    from medq.data.sources import lossy_sources
    from medq.describe.metrics import summarise

    out = {}
    for group in GROUPS:
        if group == "overall":
            sel = rows
        elif group in ("2D", "3D"):
            sel = [r for r in rows if r["dim"] == group.lower()]
        else:
            sel = [r for r in rows if r["group"] == group]
        if sel:
            out[group] = summarise(sel)
    per_type: dict[str, list[bool]] = {}
    for r in rows:
        for kind, hit in r["type_hits"]:
            per_type.setdefault(kind, []).append(hit)
    out["type_recall"] = {k: {"n": len(v), "recall": float(np.mean(v))}
                          for k, v in sorted(per_type.items())}
    out["per_source"] = {name: summarise([r for r in rows if r["source"] == name])
                         for name in dict.fromkeys(r["source"] for r in rows)}
    out["contradictions"] = _counts(f"{r['group']} {kind}: {what} ({how})"
                                    for r in rows for kind, what, how in r["contradictions"])
    out["verdicts"] = _counts(f"{r['group']} {r['reference_verdict']} → {r['verdict']}"
                              for r in rows if r["verdict"] != r["reference_verdict"])
    out["lossy_sources"] = lossy_sources(list(out["per_source"]))
    return out


def _counts(keys: Any) -> dict[str, int]:
    """How often each key occurs, most frequent first."""
    from collections import Counter

    return dict(Counter(keys).most_common())


def run(plan: DescribePlan, model: str = "mediqa-s", batch_size: int = 16,
        progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Build (or read) the items, assess + describe + score each; the JSON-ready result."""
    from medq.assess.predictor import Assessor
    from medq.describe import report_from
    from medq.describe.metrics import score_description

    started = time.time()
    paths = build_items(plan, progress=progress is not None)
    assessor = Assessor(model, batch_size=batch_size, measures=False, describe=True)
    rows = []
    for start in range(0, len(paths), batch_size):
        chunk = [load_item(p) for p in paths[start:start + batch_size]]
        assessments = assessor.assess_many([image for image, _ in chunk])
        for (image, header), a in zip(chunk, assessments, strict=True):
            if isinstance(a, BaseException):
                raise a
            report = report_from(a, image)
            row = score_description(report.findings, report.normal, report.verdict,
                                    header["meta"].get("degradations", []))
            row.update(source=header["source"], dim=header["dim"],
                       group=group_of(image.modality), verdict=report.verdict,
                       findings=[(f.type, f.severity) for f in report.findings],
                       normal=report.normal)
            rows.append(row)
        if progress:
            progress("describe", min(start + batch_size, len(paths)), len(paths))
    return {"plan": asdict(plan), "key": plan.key(), "model": model,
            "calibration": calibration_id(), "items": len(rows),
            "seconds": round(time.time() - started, 1), "summary": summary(rows), "rows": rows}


def calibration_id() -> str:
    """SHA-256 (16 hex digits) of the shipped finding-detector calibration."""
    from medq.assess.detector import CALIBRATION_PATH

    return hashlib.sha256(CALIBRATION_PATH.read_bytes()).hexdigest()[:16]
