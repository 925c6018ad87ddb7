"""`medq train CONFIG` and `medq bench iqa`."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from medq.cli.bench_results import (
    BENCH_JSON_OPTION,
    RESULTS_OPTION,
    load_named,
    lossy_source_note,
    names_list,
    results_ready,
    write_results,
)
from medq.cli.common import Outcome, app, err, out, print_json, reflowed, sigterm_as_ctrl_c
from medq.errors import InvalidParameter

bench_app = typer.Typer(help="Benchmarks on medq's held-out test split.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

BENCH_MODELS = ["mediqa-s", "mediqa-s-noprompt", "mediqa-s-nopretrain", "mediqa-s-nomeasures",
                "cnniqa", "wadiqam"]
"""Rows of `medq bench iqa` by default: the shipped model, its ablations, the baselines."""

TABLE_SUBSETS = ("CT", "MR", "PT", "XR", "OP", "2D", "3D", "overall")
"""Column groups of the IQA table."""


@app.command()
@reflowed
def train(
    config: Path = typer.Argument(..., help="Training config (YAML), e.g. configs/mediqa_s.yaml."),
    scores: Path | None = typer.Option(None, "--scores", help="CSV path,score[,modality,region] "
                                       "of your own expert scores to fine-tune on."),
    tagged: Path | None = typer.Option(None, "--tagged", help="Folder (or one file) of your "
                                       "scans: the dose (CT, radiograph mAs; CTDIvol) and MR "
                                       "field strength their DICOM headers state train the "
                                       "stages that weight the acquisition loss."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Run folder (default from "
                                       "the config)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda (default from "
                                      "the config, whose default is auto: a CUDA GPU when "
                                      "PyTorch sees one)."),
) -> None:
    """Train a quality model, a restoration network or the prompt classifier from a config.

    A quality model is pretrained on physics parameters (the engine's, and with --tagged the
    acquisitions your scans' headers state), then fine-tuned on scores. Started again, an
    interrupted run continues where it stopped."""
    from medq.assess.precision import resolve_device
    from medq.train.config import load_config
    from medq.train.loop import train as run_train

    outcome = Outcome()

    def job() -> dict[str, Any]:
        cfg = load_config(config)
        if output is not None:  # a folder named as given: its braces are no placeholders
            cfg.output = str(output).replace("{", "{{").replace("}", "}}")
        if device is not None:
            resolve_device(device)  # InvalidParameter: an unknown name, or cuda without a GPU
            cfg.device = device
        check_run_folder(cfg.output_dir())
        check_tagged_config(cfg, config, tagged)
        if scores is None:
            if cfg.init and tagged is None:  # configs/mediqa_s_finetune.yaml run as it stands
                err.print(f"medq: note: {config}: fine-tunes {cfg.init} on medq's own "
                          "benchmark, as no --scores were given (to fine-tune on your raters' "
                          "scores: --scores FILE.csv)", markup=False, highlight=False)
            return run_train(cfg, tagged=tagged_set(cfg, tagged))
        from medq.train.scores import check_scores_config, describe, load_scores, read_scores

        check_scores_config(cfg, config, tagged=tagged is not None)
        rows = read_scores(scores)
        train_set, test_set = load_scores(scores, size=cfg.bench.size, seed=cfg.seed,
                                          extras=cfg.bench.evidence_extras, rows=rows)
        return run_train(cfg, train_set, test_set,
                         scores=describe(scores, rows, train_set, test_set),
                         tagged=tagged_set(cfg, tagged, held_out=test_set,
                                           trained=train_set))

    # SIGTERM outside the steps stops at once; within them the run takes it itself and saves
    # at the step's end first (`Checkpointer.stopping_at_step_end`)
    with sigterm_as_ctrl_c() as terminated:
        try:
            result = outcome.run(config, job)
        except KeyboardInterrupt as stop:  # Ctrl-C: the state saved at the step's end, if any
            err.print(f"medq: {interrupted_line(stop)}", markup=False, highlight=False)
            by_term = terminated or getattr(stop, "signum", None) == signal.SIGTERM
            raise typer.Exit(143 if by_term else 130) from None
    if not isinstance(result, BaseException):
        out.print(f"trained {result['name']} → {result.get('output', '')}", highlight=False,
                  markup=False)
    outcome.exit()


def check_run_folder(folder: Path) -> None:
    """InvalidParameter, before any work, when the run folder cannot be made or written: it is
    a file, a file stands on its path, or its nearest existing folder is not writable (a
    read-only mount); found only after training, such a run was lost with an internal error."""
    import os

    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InvalidParameter("the run folder is a file, not a folder" if existing == folder
                               else f"cannot make the run folder: {existing} is a file", folder)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidParameter(f"cannot write the run folder ({existing} is not writable)",
                               folder)


def interrupted_line(stop: KeyboardInterrupt) -> str:
    """What a Ctrl-C'd `medq train` tells the user: where the run stopped and what the same
    command does next (`medq.train.resume.Interrupted` when it stopped at a step's end)."""
    from medq.train.resume import Interrupted

    if not isinstance(stop, Interrupted):
        return ("interrupted; run the same command again: it continues from the run's last "
                "saved state (resume.pt in the run folder), if one was saved, else starts over")
    if stop.saved is None:
        return (f"interrupted at {stop.stage} step {stop.step}; nothing saved "
                "(checkpoint_every_s is 0 in the config): the same command starts over")
    return (f"interrupted at {stop.stage} step {stop.step}, saved in {stop.saved}; run the "
            "same command again to continue from there")


def check_tagged_config(cfg: Any, config: Path, tagged: Path | None) -> None:
    """InvalidParameter, naming the config file, when its stages and `--tagged` do not go
    together: an acquisition stage needs images, and images need such a stage."""
    weighted = [s.name for s in cfg.stages if s.steps and s.losses.get("acquisition")]
    if weighted and tagged is None:
        raise InvalidParameter(f"stage {weighted[0]!r} weights the acquisition loss, which "
                               "trains on what your scans' DICOM headers state: give them "
                               "with --tagged FOLDER", config)
    if tagged is not None and not weighted:  # a restoration config never does (config_check)
        raise InvalidParameter("--tagged images train the acquisition loss, which no stage of "
                               "this config weights (see configs/mediqa_s_tagged.yaml)", config)


def tagged_set(cfg: Any, tagged: Path | None, held_out: dict[str, Any] | None = None,
               trained: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """`{"train", "test", "summary"}` of the `--tagged` images, prepared as the config's plan
    prepares its items, without the files and patients of `held_out` (the `--scores` test set,
    which the test must not have seen), and holding none of those of `trained` (its training
    set, which the score stage trains on) out; None without --tagged."""
    if tagged is None:
        return None
    from medq.train.acquisition import load_tagged

    train_set, test_set, summary = load_tagged(tagged, size=cfg.bench.size, seed=cfg.seed,
                                               extras=cfg.bench.evidence_extras,
                                               exclude=(held_out or {}).get("source", ()),
                                               exclude_subjects=(held_out or {}).get("subject",
                                                                                     ()),
                                               trained=(trained or {}).get("source", ()),
                                               trained_subjects=(trained or {}).get("subject",
                                                                                    ()))
    return {"train": train_set, "test": test_set, "summary": summary}


def _cell(metrics: dict[str, Any], subset: str) -> list[str]:
    m = metrics.get(subset)
    if not m:
        return ["–", "–", "–"]
    return [f"{m[k]:.3f}" if m[k] == m[k] else "nan" for k in ("srcc", "plcc", "rmse")]


def lossy_notes(rows: list[dict[str, Any]]) -> None:
    """Under the IQA table: each test source whose file states lossy compression, and the
    `medq assess` SRCC within it (its references still treat the base image as clean)."""
    from medq.data.sources import lossy_sources

    row = next((r for r in rows if r.get("model", "").startswith("medq assess")), None)
    if not row or "per_source" not in row:
        return
    for name, lossy in lossy_sources(list(row["per_source"])).items():
        m = row["per_source"][name]
        out.print(lossy_source_note(name, lossy, m["n"],
                                    f"medq assess SRCC within them {m['srcc']:.3f}"),
                  highlight=False)


def _interval(value: float, ci: list[float], signed: bool = False) -> str:
    """`0.747 [0.71, 0.78]`, signed (`+0.05 [−0.01, +0.10]`) for a difference."""
    f = "{:+.3f}" if signed else "{:.3f}"
    g = "{:+.2f}" if signed else "{:.2f}"
    return f"{f.format(value)} [{g.format(ci[0])}, {g.format(ci[1])}]"


def margin_table(rows: list[dict[str, Any]]) -> None:
    """Print the SRCC of the rows with margins (overall, 95 % interval) and their margins over
    each learned baseline per subset (paired bootstrap intervals)."""
    marked = [r for r in rows if r.get("margins")]
    if not marked:
        return
    table = Table("SRCC difference", *TABLE_SUBSETS,
                  title="Margins over the learned baselines (same items; 95 % bootstrap interval)")
    for row in marked:
        for base, per in row["margins"].items():
            table.add_row(f"{row['model']} − {base}",
                          *[_interval(per[s]["gain"], per[s]["ci"], signed=True) if s in per
                            else "–" for s in TABLE_SUBSETS])
    out.print(table)
    for row in marked:
        m = row["metrics"]["overall"]
        out.print(f"{row['model']}: overall SRCC {_interval(m['srcc'], m['srcc_ci'])}",
                  highlight=False)


@bench_app.command("iqa")
def bench_iqa(
    models: str = typer.Option(",".join(BENCH_MODELS), "--models", show_default=False,
                               help="Comma-separated shipped names or checkpoint paths "
                                    "(default: the shipped model, its three ablations, CNNIQA "
                                    "and WaDIQaM)."),
    classical: bool = typer.Option(True, "--classical/--no-classical",
                                   help="Add rows for classical measures."),
    results: Path = RESULTS_OPTION,
    as_json: bool = BENCH_JSON_OPTION,
) -> None:
    """SRCC/PLCC/RMSE of every model per modality subset on the held-out test split."""
    from medq.assess.weights import load_weights
    from medq.data.bench import build
    from medq.train.evaluate import benchmark_rows
    from medq.workers import set_threads

    outcome = Outcome()
    names = names_list(models)

    def job() -> dict[str, Any]:
        set_threads()
        load_named(names, load_weights)
        plans = {name: scoring_plan(load_weights(name)[1]) for name in names}
        plan = plans[names[0]]
        other = next((n for n in names if plans[n].key() != plan.key()), None)
        if other is not None:  # one table, one test split: rows of other splits mislead
            raise InvalidParameter(
                f"{names[0]} and {other} were trained on different benchmark plans (plan "
                f"{plan.key()}, {plan.size} px; plan {plans[other].key()}, {plans[other].size} "
                "px), so they have no common test split: benchmark them in separate runs")
        results_ready(results)
        started = time.time()
        data = build(plan, "test")
        rows = benchmark_rows(data, names, classical, progress=lambda line: err.print(
            f"medq: bench iqa: {line}", markup=False, highlight=False))
        payload = {"plan": plan.__dict__, "bench_key": plan.key(), "items": int(len(data["score"])),
                   "seconds": round(time.time() - started, 1), "rows": rows}
        write_results(results, "iqa.json", payload)
        return payload

    payload = outcome.run(models, job)
    if isinstance(payload, BaseException):
        outcome.exit()
    rows = payload["rows"]
    for row in rows:  # a model the user named that could not be benchmarked: exit code 2
        if "missing" in row:
            outcome.fail(None, InvalidParameter(row["missing"]))
    if as_json:
        print_json(rows)
        outcome.exit()
    table = Table("model", *[f"{s}\nSRCC / PLCC / RMSE" for s in TABLE_SUBSETS],
                  title=f"Quality assessment on the held-out test split (plan "
                        f"{payload['bench_key']}, {payload['items']} items)")
    for row in rows:
        if "missing" in row:
            continue
        table.add_row(row["model"], *[" / ".join(_cell(row["metrics"], s))
                                      for s in TABLE_SUBSETS])
    out.print(table)
    margin_table(rows)
    lossy_notes(rows)
    for row in rows:
        if row.get("score_scale") == "user":
            out.print(f"{row['model']} was fine-tuned on your raters' scores: this table ranks it "
                      "against medq's physics-derived reference score, not those ratings (its "
                      "card scores it on the held-out rows of its scores file).", highlight=False)
    out.print(f"JSON: {results / 'iqa.json'}", highlight=False)
    outcome.exit()


def scoring_plan(record: dict[str, Any]) -> Any:
    """The benchmark plan whose test split scores a model: its training record's plan (its
    training-only settings at their defaults, `bench.test_split_plan`), else the default plan
    at its input size."""
    from medq.data.bench import BenchPlan, test_split_plan

    stated = record.get("bench_plan")
    return test_split_plan(BenchPlan(**stated)) if stated else BenchPlan(
        size=int(record.get("image_size", 224)))

