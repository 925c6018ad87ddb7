"""`medq describe` (findings, verdict and clinical text per input) and `medq bench describe`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from medq.cli.assess import assess_inputs
from medq.cli.bench_results import (
    BENCH_JSON_OPTION,
    RESULTS_OPTION,
    lossy_source_note,
    results_ready,
    write_results,
)
from medq.cli.cells import UNKNOWN_MODALITY_NOTE, path_table
from medq.cli.common import (
    DEVICE_OPTION,
    EACH_VOLUME_OPTION,
    INPUTS_ARGUMENT,
    JSON_LIST_OPTION,
    MODALITY_OPTION,
    PRECISION_OPTION,
    QUALITY_MODEL_OPTION,
    Outcome,
    app,
    error_object,
    out,
    print_json,
    progress_bar,
)
from medq.cli.train import bench_app


def _findings_text(findings: list[dict[str, Any]]) -> str:
    return "\n".join(f"{f['type']} ({f['severity']}, {f['location']})" for f in findings) or "none"


@app.command()
def describe(
    paths: list[Path] = INPUTS_ARGUMENT,
    as_json: bool = JSON_LIST_OPTION,
    model: str = typer.Option("mediqa-s", "--model", "-m", help=(
        "Shipped model name or path to a checkpoint (.pt). The verdict and score are those of "
        "the findings described, whatever the model: a model fine-tuned on your ratings gives "
        "its score as assess_score in the JSON (medq assess reports it).")),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per forward pass."),
    modality: str | None = MODALITY_OPTION,
    precision: str = PRECISION_OPTION,
    device: str = DEVICE_OPTION,
    each: bool = EACH_VOLUME_OPTION,
) -> None:
    """Describe image quality: verdict, findings (type, severity, location, evidence), text."""
    from medq.assess.predictor import Assessor
    from medq.describe import report_from
    from medq.io import load
    from medq.io.archive import shown, unpack_all

    outcome = Outcome()
    inputs = assess_inputs(unpack_all(paths), each)
    assessor = outcome.run(model, lambda: Assessor(model, batch_size=batch_size,
                                                   modality=modality,
                                                   precision=precision, device=device,
                                                   describe=True))
    if isinstance(assessor, BaseException):
        outcome.exit()
    rows: list[dict[str, Any]] = []
    with progress_bar("describing", len(inputs) < 2) as bar:
        task = bar.add_task("describe", total=len(inputs))
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start:start + batch_size]
            images = [outcome.attempt(lambda p=p: load(p, modality=modality)) for p in chunk]
            ok = [img for img in images if not isinstance(img, BaseException)]
            assessed = outcome.run(None, lambda ok=ok: assessor.assess_many(ok))
            results = iter([assessed] * len(ok) if isinstance(assessed, BaseException)
                           else assessed)
            for path, image in zip(chunk, images, strict=True):
                result = image if isinstance(image, BaseException) else next(results)
                if not isinstance(result, BaseException):
                    result = outcome.run(path, lambda a=result, i=image: report_from(a, i))
                elif result is not assessed:
                    outcome.fail(path, result)  # this input's own load or assessment error
                if isinstance(result, BaseException):
                    rows.append(error_object(path, result))
                else:
                    rows.append(dict(result.to_dict(), path=shown(path)))
            bar.advance(task, len(chunk))
    if as_json:
        print_json(rows)
    else:
        described = [row for row in rows if "error" not in row]
        table, names = path_table("verdict", "score", "findings", "text", show_lines=True,
                                  paths=[row["path"] for row in described])
        for name, row in zip(names, described, strict=True):
            table.add_row(name, row["verdict"], f"{row['score']:.2f}",
                          _findings_text(row["findings"]), row["text"])
            if row["modality"] == "OT":
                table.caption = UNKNOWN_MODALITY_NOTE
        if table.row_count:
            out.print(table)
    outcome.exit()


def _cell(m: dict[str, Any] | None, key: str, digits: int = 2) -> str:
    """A summary value, with its 95 % interval (`<key>_ci`) on a second line when it has one."""
    if not m or m.get(key) is None:
        return "–"
    ci = m.get(f"{key}_ci") or []
    if len(ci) == 2 and all(c == c for c in ci):
        return f"{m[key]:.{digits}f}\n[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return f"{m[key]:.{digits}f}"


@bench_app.command("describe")
def bench_describe(
    n: int = typer.Option(16, "--n", min=1, help="Items per 2D test source (3D sources get "
                          "half)."),
    model: str = QUALITY_MODEL_OPTION,
    results: Path = RESULTS_OPTION,
    as_json: bool = BENCH_JSON_OPTION,
) -> None:
    """Description metrics (4 × 0–2, total /8) and finding-type accuracy on the test split."""
    from medq.describe.bench import GROUPS, DescribePlan, run
    from medq.describe.metrics import DIMENSIONS
    from medq.workers import set_threads

    outcome = Outcome()
    plan = DescribePlan(per_2d=max(1, n), per_3d=max(1, n // 2))

    def job() -> dict[str, Any]:
        from medq.assess.weights import load_weights

        set_threads()
        results_ready(results)
        load_weights(model)  # a wrong name at once, before the items are built
        with progress_bar("describing", False) as bar:
            task = bar.add_task("describe", total=None)
            payload = run(plan, model, progress=lambda _, done, total: bar.update(
                task, completed=done, total=total))
        write_results(results, "describe.json", payload, indent=1)
        return payload

    payload = outcome.run(model, job)
    if isinstance(payload, BaseException):
        outcome.exit()
    summ = payload["summary"]
    if as_json:
        print_json({k: v for k, v in payload.items() if k != "rows"})
        outcome.exit()
    table = Table("subset", "n", *DIMENSIONS, "total /8", "type acc.\n(moderate+)",
                  title=f"Description metrics on the held-out test split ({model}); "
                        "[95 % bootstrap interval]")
    for group in GROUPS:
        m = summ.get(group)
        if m:
            table.add_row(group, str(m["n"]), *[_cell(m, d) for d in DIMENSIONS],
                          _cell(m, "total"), _cell(m, "type_accuracy", 3))
    out.print(table)
    for name, lossy in summ.get("lossy_sources", {}).items():
        m = summ["per_source"][name]
        out.print(lossy_source_note(name, lossy, m["n"], f"their total {m['total']:.2f} / 8"),
                  highlight=False)
    for name, key in (("contradictions", "most frequent contradictions"),
                      ("verdicts", "most frequent wrong verdicts")):
        top = list(summ.get(name, {}).items())[:4]
        if top:
            out.print(f"{key}: " + "; ".join(f"{k} ×{v}" for k, v in top), highlight=False)
    out.print(f"JSON: {results / 'describe.json'}", highlight=False, markup=False)
    outcome.exit()
