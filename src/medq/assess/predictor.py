"""The Assessor: load a quality model once, then assess many images in batches.

For each image: prompts from its tags (gaps filled by the shipped prompt classifier), model
inputs (`preprocess`; 3D volumes give 7 salient slices) and their evidence rows
(`evidence.evidence_rows`: the measure input of models that take measures, and the input of the
evidence score), one batched forward pass for all 2D inputs of a chunk and one per volume
(`Q = Σ w̄_i q_i`), the score (`combined_score` of the model's score and the evidence score),
findings from the evidence detector (the same decision as the evidence score), the finding
heads' raw outputs (`finding_scores`), and the classical measures
(`measures.compute_measures`; on the salient slices for volumes).
Paths that fail to load or assess become typed errors in place; the batch goes on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medq.assess.acquisition import report as acquisition_report
from medq.assess.assessment import (
    Assessment,
    combined_score,
    finding_scores_from,
    findings_from,
    grade_for,
    suspected_from,
)
from medq.assess.detector import assessed_evidence, load_detector
from medq.assess.loading import (
    POOL_MIN_ITEMS,
    Item,
    Loaded,
    captured,
    load_many,
    resolve,
)
from medq.assess.precision import model_precision, resolve_device, resolve_precision
from medq.assess.preprocess import image_inputs
from medq.assess.prompt_classifier import load_classifier
from medq.assess.prompts import encode
from medq.assess.weights import (
    DEFAULT_MODEL,
    check_evidence_size,
    load_weights,
    model_id,
    row_extras,
)
from medq.errors import InvalidParameter, MedqError, ModelError
from medq.image import MedImage
from medq.workers import pool_of


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `Assessor.assess_many`: `done` holds the results of the inputs assessed
    before it, in input order (the first `len(done)` inputs)."""

    def __init__(self, done: list[Any]) -> None:
        super().__init__(f"interrupted after {len(done)} inputs")
        self.done = done

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        """Pickle with what was done."""
        return type(self), (self.done,)


class Assessor:
    """A loaded quality model with its settings; `assess(image)` or `assess_many(inputs)`.

    `precision` (`medq.assess.precision`): `auto` runs the model in bfloat16 where the CPU has
    it natively (about 1.1× faster, scores within about 0.01), else float32.
    `batch_size`: inputs per forward pass and per chunk the loader workers prepare ahead; 16
    rather than 32 halves the forward's buffers at the same 2-core throughput
    (`benchmarks/assess_speed.py`).
    `device` (`cpu`, `cuda` or `auto`): where the model runs; loading, evidence and measures
    stay on the CPU workers. The CPU is the default so that a QA store's scores do not depend
    on which machine took them (a GPU's arithmetic moves them slightly: `tests/test_device.py`
    bounds the float32 difference by 0.02).
    `describe`: the loader workers also take each input's full-plane detector features
    (`Assessment.detector_features`), which `medq.describe.report_from` then reads instead of
    computing them after the batch on one core; they reuse the classical measures they share,
    and the evidence pass's features of a plane no larger than its view (`evidence_pass`).
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, batch_size: int = 16,
                 measures: bool = True, threads: int | None = None,
                 modality: str | None = None, precision: str = "auto",
                 device: str = "cpu", describe: bool = False) -> None:
        from medq.workers import set_threads

        set_threads(threads)
        self.model, self.record = load_weights(model)
        check_evidence_size(self.record, model)
        self.extras = row_extras(self.record, model)
        self.name = model_id(model, self.record)
        self.size = int(self.record.get("image_size", 224))
        self.use_prompts = bool(self.record.get("use_prompts", True))
        self.score_scale = str(self.record.get("score_scale", "reference"))
        self.native = bool((self.record.get("bench_plan") or {}).get("native_crop", False))
        tagged = self.record.get("tagged") or {}  # the targets its training images stated
        self.acquisition = tuple(tagged.get("per_target_train", ()))
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise InvalidParameter(f"batch_size must be a whole number ≥ 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.measures = measures
        self.modality = modality
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.precision = resolve_precision(precision, self.device.type)
        load_classifier()  # loaded (and cached) here, before the loader workers fork
        self.features = load_detector().extras if describe else None
        self.workers = torch.get_num_threads()

    def with_settings(self, *, measures: bool | None = None,
                      describe: bool | None = None) -> Assessor:
        """This Assessor, on the same loaded model, taking the classical measures or the
        detector's features or not (`measures`, `describe`; None: as this one does)."""
        other = copy.copy(self)
        if measures is not None:
            other.measures = bool(measures)
        if describe is not None:
            other.features = load_detector().extras if describe else None
        return other

    def assess(self, image: Item) -> Assessment:
        """Assess one image (MedImage or path); raises typed errors."""
        result = self.assess_many([image])[0]
        if isinstance(result, MedqError):
            raise result
        return result

    def assess_many(self, items: Sequence[Item], progress: Callable[[int], None] | None = None
                    ) -> list[Assessment | MedqError]:
        """Assess many inputs in chunks; failures are returned in place as MedqError.

        Loading, evidence and measures of the next chunk run in worker processes forked for this
        call (batches of `POOL_MIN_ITEMS` or more, more than one thread) while the model runs on
        this one: on one thread while the workers hold the other cores (a multi-threaded model
        waits on its own preempted threads: 18 → 26 slices/s on 2 cores), on all of them for
        the last chunk.
        """
        if isinstance(items, (str, Path, np.ndarray, torch.Tensor, MedImage)) \
                or not isinstance(items, Iterable):
            raise InvalidParameter(f"assess_many takes a sequence of inputs (a list of paths, "
                                   f"arrays or images), got one {type(items).__name__}; "
                                   "wrap it in a list, or call assess()")
        items = list(items)
        chunks = [items[s:s + self.batch_size] for s in range(0, len(items), self.batch_size)]
        workers = self.workers if len(items) >= POOL_MIN_ITEMS and self.workers > 1 else None
        results: list[Assessment | MedqError] = []
        callers = torch.get_num_threads()  # given back after the call, whatever it ran on
        # the workers live for one call (nothing lingers until interpreter exit); a Ctrl-C
        # stops them at once
        with pool_of(workers) as pool:
            try:
                pending = self._load(chunks[0], pool) if chunks else []
                for k, chunk in enumerate(chunks):
                    loaded = resolve(pending)
                    pending = self._load(chunks[k + 1], pool) if k + 1 < len(chunks) else []
                    torch.set_num_threads(1 if pool is not None and pending else self.workers)
                    results += self._chunk(loaded)
                    if progress:
                        progress(len(chunk))
            except KeyboardInterrupt as stop:
                raise Interrupted(results) from stop
            finally:
                torch.set_num_threads(callers)
        return results

    def _load(self, items: list[Item], pool: Executor | None) -> list[Any]:
        """Start loading and measuring `items` (futures with a pool, results without)."""
        return load_many(items, self.modality, self.measures, pool, self.extras, self.features)

    def _prepare(self, loaded: Loaded) -> dict[str, Any]:
        """Model inputs of one loaded input (a volume's planes are those at its indices);
        raises typed errors."""
        image = loaded.image
        prompts = loaded.prompts
        planes = list(range(len(loaded.indices))) if image.is_volume else loaded.indices
        x, _ = image_inputs(image, self.size, prompts.type, indices=planes,
                            native=self.native)
        m = torch.from_numpy(loaded.rows) if self.model.uses_measures else None
        return {"image": image, "prompts": prompts, "x": torch.from_numpy(x), "m": m,
                "rows": loaded.rows, "shape": loaded.shape,
                "indices": loaded.indices, "p": torch.from_numpy(encode(prompts)),
                "measures": loaded.measures, "features": loaded.features,
                "noisy_slices": loaded.noisy_slices, "noise_weight": loaded.noise_weight}

    def _try_prepare(self, loaded: Loaded | MedqError) -> dict[str, Any] | MedqError:
        """`_prepare`, with a failure returned as a typed error instead of raised."""
        if isinstance(loaded, MedqError):
            return loaded
        return captured(lambda: self._prepare(loaded), loaded.image.source)

    @torch.no_grad()
    def _chunk(self, chunk: list[Loaded | MedqError]) -> list[Assessment | MedqError]:
        """Prepare, forward (2D inputs batched together) and describe one loaded chunk."""
        prepared = [self._try_prepare(item) for item in chunk]
        flat = [p for p in prepared if isinstance(p, dict) and not p["image"].is_volume]
        with model_precision(self.precision, self.device.type):
            if flat:
                m = torch.cat([p["m"] for p in flat]) if self.model.uses_measures else None
                out = self._forward(torch.cat([p["x"] for p in flat]),
                                    torch.stack([p["p"] for p in flat]), m)
                for j, p in enumerate(flat):
                    p["out"] = {k: v[j:j + 1] for k, v in out.items()}
            for p in prepared:
                if isinstance(p, dict) and p["image"].is_volume:
                    p["out"] = self._forward_volume(p["x"], p["p"], p["m"])
        return [p if isinstance(p, MedqError) else self._describe(p) for p in prepared]

    def _forward(self, x: torch.Tensor, p: torch.Tensor, m: torch.Tensor | None
                 ) -> dict[str, torch.Tensor]:
        """Batched forward of 2D inputs → score and finding probabilities."""
        x, p, m = self._on_device(x, p, m)
        out = self.model.run(x, p if self.use_prompts else None, m)
        found = self.model.findings(out)
        if found is None:
            raise ModelError(f"model {self.name} has no finding heads")
        return {"score": out.score.float().cpu(), "presence": found["presence"].float().cpu(),
                "expected": found["expected_severity"].float().cpu(),
                **({} if out.acquisition is None else
                   {"acquisition": out.acquisition.float().cpu()})}

    def _on_device(self, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
        """`tensors` on the model's device (None stays None)."""
        return [t if t is None else t.to(self.device) for t in tensors]

    def _forward_volume(self, x: torch.Tensor, p: torch.Tensor, m: torch.Tensor | None
                        ) -> dict[str, torch.Tensor]:
        """Forward of one volume's slices → volume score, slice scores/weights, findings."""
        x, p, m = self._on_device(x, p, m)
        vol = self.model.forward_volume(x, p if self.use_prompts else None, m)
        found = self.model.findings(vol.slices)
        w = vol.slice_weights.float()[:, None]
        out = {"score": vol.score.float()[None],
               "presence": (found["presence"].float() * w).sum(0)[None],
               "expected": (found["expected_severity"].float() * w).sum(0)[None],
               "slice_scores": vol.slice_scores.float(), "slice_weights": w[:, 0]}
        if vol.slices.acquisition is not None:  # weighted over the slices as the score is
            out["acquisition"] = (vol.slices.acquisition.float() * w).sum(0)[None]
        return {k: v.cpu() for k, v in out.items()}

    def _describe(self, p: dict[str, Any]) -> Assessment:
        """Turn one prepared input with model outputs into an Assessment."""
        image: MedImage = p["image"]
        out = p["out"]
        measures = p["measures"]
        model_score = float(out["score"][0])
        evidence = assessed_evidence(p["rows"], p["features"], image, p["noise_weight"])
        score = combined_score(model_score, evidence.score, self.score_scale)
        presence, expected = out["presence"][0].numpy(), out["expected"][0].numpy()
        slices = None
        if image.is_volume:
            slices = [{"index": int(i), "score": round(float(s), 3), "weight": round(float(w), 4)}
                      for i, s, w in zip(p["indices"], out["slice_scores"],
                                         out["slice_weights"], strict=True)]
        return Assessment(
            score=round(score, 3), grade=grade_for(score), recall=score < 2.5,
            findings=findings_from(evidence, measures),
            measures=measures, prompts=p["prompts"].to_dict(), slices=slices, model=self.name,
            path=str(image.source) if image.source else None, modality=image.modality,
            shape=list(p["shape"]), finding_scores=finding_scores_from(presence, expected),
            model_score=round(model_score, 3), evidence_score=round(evidence.score, 3),
            suspected=suspected_from(evidence),
            lossy_compression=image.meta.get("lossy_compression"),
            slice_gaps=image.meta.get("slice_gaps"), noisy_slices=p["noisy_slices"],
            nonfinite_fraction=image.meta.get("nonfinite_fraction") or None,
            detector_features=None if p["features"] is None else p["features"].tolist(),
            spacing=[float(v) for v in image.spacing],
            acquisition=None if "acquisition" not in out else
            acquisition_report(image, out["acquisition"][0].numpy(), self.acquisition))

