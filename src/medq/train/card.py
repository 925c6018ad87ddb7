"""Model cards: what a shipped model was trained on, how, and how well it does."""

from __future__ import annotations

import math
from shlex import quote
from typing import Any

from medq.assess.evidence import FEATURES_VERSION
from medq.assess.precision import resolve_precision
from medq.data.bench import LADDER_WEIGHT
from medq.data.items import LADDER_RUNGS
from medq.data.sources import TEST_ZONE, sources
from medq.train.config import TrainConfig, config_path
from medq.wording import first_of, joined, plural


def number(value: float | None, spec: str = ".3f") -> str:
    """`value` formatted by `spec`, or `–` when it is missing or not finite."""
    return format(value, spec) if value is not None and math.isfinite(value) else "–"


def _rmse_cell(m: dict[str, Any]) -> str:
    """The RMSE after the logistic map, else the raw RMSE (marked) where the map is undefined."""
    if m.get("rmse") is None or not math.isfinite(m["rmse"]):
        raw = number(m.get("rmse_raw"))
        return raw if raw == "–" else f"{raw} (raw)"
    return number(m["rmse"])


def metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    """Markdown table of subset → n, SRCC, PLCC, RMSE, then why any correlation is missing."""
    lines = ["| subset | n | SRCC | PLCC | RMSE |", "|---|---|---|---|---|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | {m['n']} | {number(m['srcc'])} | {number(m['plcc'])} | "
                     f"{_rmse_cell(m)} |")
    notes = [f"- {name}: SRCC and PLCC not computed: {m['not_computed']}; RMSE (raw) without "
             "the logistic map." for name, m in metrics.items() if m.get("not_computed")]
    return "\n".join(lines + ([""] + notes if notes else []))


def _device_type(record: dict[str, Any]) -> str:
    """`cpu` or `cuda`: where a run's steps ran (runs recorded before devices were: `cpu`)."""
    return str(record.get("device", "cpu")).split(" ")[0]


def where_trained(record: dict[str, Any]) -> str:
    """Where a run trained, as a card says it: CPU threads, or the GPU beside them."""
    threads = f"{record['threads']} CPU threads"
    device = record.get("device", "cpu")
    return threads if device == "cpu" else f"on {device} with {threads}"


def resumed_text(record: dict[str, Any]) -> str:
    """" (interrupted, resumed at …)" for a run `medq.train.resume` continued, else ""."""
    at = record.get("resumed")
    if not at:
        return ""
    return (f" (interrupted and resumed at step {at['step']} of stage {at['stage']!r}; the "
            f"{at['trained_before_s']:.0f} s trained before it included)")


def _seed_text(record: dict[str, Any]) -> str:
    """"seed 0", or the seeds of a seed ensemble."""
    seeds = record.get("ensemble_seeds")
    if not seeds:
        return f"seed {record['seed']}"
    return (f"a **seed ensemble** of {len(seeds)} runs (seeds {', '.join(map(str, seeds))}) whose "
            "outputs are averaged")


def _members_text(record: dict[str, Any]) -> str:
    """Per-member SRCC table of a seed ensemble ('' for a single run)."""
    members = record.get("members")
    if not members:
        return ""
    subsets = [k for k in record["metrics"] if k != "overall"]
    lines = ["", "Each member alone (SRCC; same split):", "",
             "| seed | overall | " + " | ".join(subsets) + " |",
             "|---" * (len(subsets) + 2) + "|"]
    for m in members:
        cells = [number(m["metrics"].get(k, {}).get("srcc")) for k in ("overall", *subsets)]
        lines.append(f"| {m['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _start_text(cfg: TrainConfig) -> str:
    """The card's lines on the starting weights and the severity ladders (when used)."""
    text = f"\nStarting weights: `{cfg.init}`." if cfg.init else ""
    if cfg.ladders:
        text += (f"\nSeverity ladders for the rank loss: {cfg.ladders} of the 2D training "
                 f"sources (an image clean, then one engine kind at {LADDER_RUNGS} rising "
                 f"severities; MR sources ×{LADDER_WEIGHT['MR']}), {cfg.ladder_batch} per step; "
                 f"each rung must score lower than the one before by {cfg.rank_margin:g} of its "
                 "reference score's fall.")
    return text


def train_command(cfg: TrainConfig, record: dict[str, Any]) -> str:
    """The `medq train` command that reproduces a run: its config, `--tagged` and `--scores`
    data, run folder and a device other than auto."""
    import os

    scores, tagged = record.get("scores"), record.get("tagged")
    # the user's data by absolute path (a relative one named nothing outside the folder it was
    # typed in); the config and run folder as the run was given them
    return (f"medq train {quote(config_path(cfg))}"
            + (f" --tagged {quote(os.path.abspath(tagged['archive']))}" if tagged else "")
            + (f" --scores {quote(os.path.abspath(scores['file']))}" if scores else "")
            + f" -o {quote(str(cfg.output_dir()))}"
            + (f" --device {cfg.device}" if cfg.device != "auto" else ""))


def _build_text(record: dict[str, Any]) -> str:
    """" (+ N s building the cached benchmark)" when the run built it (0 s: it was cached)."""
    seconds = record.get("build_time_s") or 0.0
    return f" (+ {seconds:.0f} s building the benchmark)" if seconds >= 1 else ""


def _slice_text(cfg: TrainConfig, record: dict[str, Any]) -> str:
    """What the card says of the slice weights: fitted, or not (no training volumes, or 0
    steps: the sentence claimed a fit that never ran)."""
    if record.get("slice_loss") is None:
        return "no slice weights fitted (no training volumes, or slice_steps 0)."
    return (f"slice weights fitted for {cfg.slice_steps} steps on frozen features of the "
            "training volumes.")


def card_text(cfg: TrainConfig, record: dict[str, Any]) -> str:
    """The model card as Markdown."""
    summed = " (summed over the members)" if record.get("members") else ""
    stages = "; ".join(f"{s.name}: {s.steps} steps, lr {s.lr:g}, losses {s.losses}"
                       for s in cfg.stages)
    view = cfg.bench.evidence_size
    precision = resolve_precision(cfg.precision, _device_type(record))
    scores = record.get("scores")
    command = train_command(cfg, record)
    split = f"held-out rows of `{scores['file']}`" if scores else "held-out split"
    then = "" if scores else (" then `medq bench iqa --models "
                              f"{quote(str(cfg.output_dir() / 'model.pt'))}`")
    sizes = record.get("model_args", cfg.model_args)
    return f"""# {cfg.name}

Model `{cfg.model}` ({sizes or 'preset sizes'}), trained by `{command}`,
{_seed_text(record)}, {where_trained(record)},
wall time {record['wall_time_s']:.0f} s of training{summed}{_build_text(record)}\
{resumed_text(record)}.

{_scores_data(cfg, record) if scores else _bench_data(cfg, record)}
## Training
Stages: {stages}. Batch {cfg.batch_size}, AdamW (weight decay {cfg.weight_decay}), warm-up then
cosine decay, gradient clipping {cfg.grad_clip}, steps in {precision};
{_slice_text(cfg, record)}
Prompts used: {cfg.use_prompts}.{_start_text(cfg)}
Classical measures per slice (`medq.assess.evidence`, on a view of at most {view} px):
{sizes.get('n_measures', 0) or 'not used'} (evidence features version {FEATURES_VERSION}).
Physics head targets (normalised log level per kind): {', '.join(record['physics_targets'])}.
{_tagged_text(record)}
## Test metrics ({split}, {plural(record['test_items'], 'item')})
{metrics_table(record['metrics'])}
{_members_text(record)}
Reproduce: `{command}`{then}.
"""


def _tagged_text(record: dict[str, Any]) -> str:
    """The card's section on the images whose headers state their acquisition ('' without)."""
    t = record.get("tagged")
    if not t:
        return ""
    trained = t["per_target_train"]
    counts = ", ".join(f"{k} {n} ({trained.get(k, 0)} in training)"
                       for k, n in t["per_target"].items())
    skipped = ", ".join(f"{t[k]} {what}" for k, what in (
        ("unreadable", "unreadable"), ("duplicates", "copies of another file"),
        ("excluded", "held out by --scores, or of its held-out patients"),
        ("implausible", "with a value out of range (not taken)")) if t.get(k))
    held = first_of([f"`{p}`" for p in t["held_out_items"]], 20)
    lines = ["| target | n | SRCC | MAE (doublings) |", "|---|---|---|---|"]
    lines += [f"| {k} | {m['n']} | {number(m['srcc'])} | {number(m['mae_doublings'], '.2f')} |"
              for k, m in t["metrics"].items()]
    return f"""
## Acquisition pretraining (what your scans' headers state)
Acquisition head targets (`medq.train.acquisition`: log2 of the header's value over a
reference, per target): {', '.join(t['targets'])}. Archive `{t['archive']}`: {t['items']} images,
{t['tagged']} stating an acquisition: {counts}{'; skipped: ' + skipped if skipped else ''}.
{t['train']} trained on, {t['held_out']} held out ({_split_words(t)}, seeded): {held}.
Held-out estimates against the headers' values
(SRCC needs ≥ 3 images with different values):

{chr(10).join(lines)}
"""


def _split_words(tagged: dict[str, Any]) -> str:
    """How a tagged archive's held-out images were chosen, in the card's words."""
    n = tagged.get("subjects", 0)
    if tagged.get("split") == "image":
        were = "patient was" if n == 1 else "patients were"
        return (f"by image: its {n} named {were} too few to hold whole patients out, so "
                "held-out images' patients are also trained on: the held-out numbers flatter "
                "new patients")
    if n:
        return f"whole patients: {n} named by PatientID or BIDS subject, the rest one per image"
    return "by image: no file names a patient"


def _scores_data(cfg: TrainConfig, record: dict[str, Any]) -> str:
    """The card's score meaning and data sections for a fine-tune on the user's scores."""
    s = record["scores"]
    held = ", ".join(f"`{p}`" for p in s["held_out"])
    start = f"`{cfg.init}`" if cfg.init else f"a fresh `{cfg.model}`"
    digest = f" (SHA-256 {s['sha256'][:16]}…)" if s.get("sha256") else ""
    return f"""## Score meaning
The score is **your ratings**: starting from {start}, the model was fine-tuned on the 1–5
scores of `{s['file']}`, so it scores as those ratings do (not medq's physics-derived reference
score).

## Data
Scores file `{s['file']}`{digest}: {s['rows']} scored lines, \
{s.get('images', s['rows'])} images, {s['train'] + len(s['held_out'])} of them usable; \
{s['train']} trained on, {len(s['held_out'])} held out for the test ({_split_words(s)}, \
seeded): {held}.{_skipped_lines(s)}
"""


def _skipped_lines(scores: dict[str, Any]) -> str:
    """The card's line naming the scores file's lines whose images could not be used."""
    lines = scores.get("skipped_lines") or []
    if not lines:
        return ""
    return (f"\nNot used (the image could not be read; the training log says why): line"
            f"{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}.")


def _bench_data(cfg: TrainConfig, record: dict[str, Any]) -> str:
    """The card's score meaning and data sections for a run on medq's benchmark."""
    train = ", ".join(s.name for s in sources("train"))
    test = ", ".join(s.name for s in sources("test"))
    return f"""## Score meaning
The score is the **physics-derived reference score**: `1 + 4·Π(1 − min(s,3)/3)` over the
continuous severities `s` (0 none … 3 severe) of the degradations medq's physics engine applied.
It is **not** radiologists' opinion. Fine-tune on your own expert scores with
`medq train configs/mediqa_s_finetune.yaml --scores my_scores.csv`.

## Data
Benchmark plan {record.get('bench_key', '')}: {cfg.bench.train_2d} 2D + {cfg.bench.train_3d} 3D
training items at {cfg.bench.size}² ({record['train_items']} items), each a clean base image with
0–2 engine degradations at severities drawn uniformly from 0.2–3.2. Training images first get
sub-threshold acquisition noise (for MR also a faint coil field; part of the clean image: the
score stays 5) and, for 40 % of grey 2D images, a zoomed field of view (25–75 % per side,
anywhere in the image, half of them at a 48–160 px matrix), because real scans are never
noise-free and often show only part of the body.
- Training sources: {train}.
- Held-out test sources (never trained on): {test}.
- The MNI152-derived sources are one subject split by z-zone: {TEST_ZONE[0]:.0%}–{TEST_ZONE[1]:.0%}
  of the head's height is test only.
"""


def prompt_card_text(cfg: TrainConfig, record: dict[str, Any], net: Any) -> str:
    """The prompt classifier's model card as Markdown."""
    from medq.assess.prompt_classifier import VOLUME_PLANES

    n_params = sum(p.numel() for p in net.parameters())

    def rows(*checks: dict[str, Any]) -> str:
        def cell(c: dict[str, Any], name: str) -> str:
            return f"{c['per_source'][name]:.3f}" if name in c["per_source"] else "–"

        names = dict.fromkeys(n for c in checks for n in c["per_source"])
        return "\n".join(f"| {n} | " + " | ".join(cell(c, n) for c in checks) + " |"
                         for n in names)

    def line(label: str, c: dict[str, Any]) -> str:
        return (f"| {label} | {c['modality_accuracy']:.3f} | {c['confident_share']:.3f} | "
                f"{c['confident_accuracy']} | {c['region_accuracy']:.3f} | "
                f"{c['region_confident_share']:.3f} | {c['region_confident_accuracy']} |")

    native, export, found = record["test"], record["test_8bit"], record["test_as_found"]
    depths = joined([f"{at * 100:.0f} %" for at in VOLUME_PLANES])
    return f"""# {cfg.name}

Prompt classifier (`PromptNet`, {n_params} parameters) trained by
`medq train configs/prompt_classifier.yaml`: seed {cfg.seed}, {record['steps']} steps of batch
64, {record['n_train']} examples drawn from the benchmark's training sources, each clean or with
one of the engine's degradations of its modality at any severity, laid out as files lay planes
out (any of the eight orientations; half of them centred on a padded canvas), in the units
files hold them in (arbitrary scanner scales, CT as HU or HU + 1024, a quarter as 8-bit display
exports); wall time {record['wall_time_s']:.0f} s. It fills the modality prompt of images whose
files do not state it, when its probability reaches {record['confidence']} (else it stays
`other`), and the assessment then reads an MR, PET or radiograph it names as that modality (a
CT it names fills the prompt only); a volume is read at {depths} of its depth and the
probabilities averaged. The bar was set with these
held-out checks in view (`CONFIDENCE` in `medq.assess.prompt_classifier`), so they measure a
chosen bar. Its region head is trained and measured below but fills nothing (too often wrong).

## Held-out test sources ({record['n_test']} examples each check)

| check | modality: accuracy | filled (≥ {record['confidence']}) | accuracy of filled | \
region: accuracy | ≥ {record['confidence']} (with the modality) | accuracy there |
|---|---|---|---|---|---|---|
{line("native units (DICOM / NIfTI values)", native)}
{line("8-bit display exports", export)}
{line("as found: any degradation, orientation, padding, scale", found)}

Modality accuracy per test source:

| source | native units | 8-bit exports | as found |
|---|---|---|---|
{rows(native, export, found)}

Without units (8-bit display exports) it reads pixels alone, learnt from the training
sources' pixels; the table above shows which held-out scans it then misreads. CT and MR types
are not predicted (catch-all `ct_other` / `mr_other`).
"""
