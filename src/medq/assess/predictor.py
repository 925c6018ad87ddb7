"""The Assessor: load a quality model once, then assess many images in batches.

For each image: prompts from its tags (gaps filled by the shipped prompt classifier), model
inputs (`preprocess`; 3D volumes give 7 salient slices) with their evidence rows when the
model takes measures (`evidence.evidence_rows`), one batched forward pass for all 2D
inputs of a chunk and one per volume (`Q = Σ w̄_i q_i`), findings from the finding heads, and
the classical measures (`measures.compute_measures`; on the salient slices for volumes).
Paths that fail to load or assess become typed errors in place; the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medq.assess.assessment import (
    Assessment,
    clean_number,
    finding_scores_from,
    findings_from,
    grade_for,
)
from medq.assess.evidence import evidence_rows
from medq.assess.preprocess import image_inputs
from medq.assess.prompt_classifier import load_classifier
from medq.assess.prompts import Prompts, encode, prompts_from_image
from medq.assess.weights import DEFAULT_MODEL, load_weights
from medq.errors import InputError, MedqError, ModelError
from medq.image import MedImage

Item = MedImage | str | Path


class Assessor:
    """A loaded quality model with its settings; `assess(image)` or `assess_many(inputs)`."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, batch_size: int = 32,
                 measures: bool = True, threads: int | None = None,
                 modality: str | None = None) -> None:
        from medq.train.loop import set_threads

        set_threads(threads)
        self.model, self.record = load_weights(model)
        self.name = str(self.record.get("name") or Path(str(model)).stem)
        self.size = int(self.record.get("image_size", 224))
        self.use_prompts = bool(self.record.get("use_prompts", True))
        self.batch_size = max(1, int(batch_size))
        self.measures = measures
        self.modality = modality
        self._predict_prompts = load_classifier()

    def prompts(self, image: MedImage) -> Prompts:
        """The four prompts of an image (tags first, then the prompt classifier)."""
        return prompts_from_image(image, self._predict_prompts)

    def assess(self, image: Item) -> Assessment:
        """Assess one image (MedImage or path); raises typed errors."""
        result = self.assess_many([image])[0]
        if isinstance(result, MedqError):
            raise result
        return result

    def assess_many(self, items: Sequence[Item], progress: Callable[[int], None] | None = None
                    ) -> list[Assessment | MedqError]:
        """Assess many inputs in chunks; failures are returned in place as MedqError."""
        results: list[Assessment | MedqError] = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start:start + self.batch_size]
            results += self._chunk(chunk)
            if progress:
                progress(len(chunk))
        return results

    def _prepare(self, item: Item) -> dict[str, Any]:
        """Load (if a path) and prepare one input; raises typed errors."""
        from medq.io import load

        image = item if isinstance(item, MedImage) else load(item, modality=self.modality)
        prompts = self.prompts(image)
        x, indices = image_inputs(image, self.size, prompts.type)
        m = (torch.from_numpy(evidence_rows(image, indices if image.is_volume else None))
             if self.model.uses_measures else None)
        return {"image": image, "prompts": prompts, "x": torch.from_numpy(x), "m": m,
                "indices": indices, "p": torch.from_numpy(encode(prompts))}

    def _try_prepare(self, item: Item) -> dict[str, Any] | MedqError:
        """`_prepare`, with a failure returned as a typed error instead of raised."""
        try:
            return self._prepare(item)
        except MedqError as e:
            return e
        except (ValueError, OSError) as e:  # a reader's own error: still the input's fault
            path = None if isinstance(item, MedImage) else item
            return InputError(f"cannot assess ({type(e).__name__}: {e})", path)

    @torch.no_grad()
    def _chunk(self, chunk: Iterable[Item]) -> list[Assessment | MedqError]:
        """Prepare, forward (2D inputs batched together) and describe one chunk."""
        items = list(chunk)
        workers = min(torch.get_num_threads(), len(items))
        if workers > 1:  # loading and evidence are numpy/scipy work that releases the GIL
            with ThreadPoolExecutor(workers) as pool:
                prepared = list(pool.map(self._try_prepare, items))
        else:
            prepared = [self._try_prepare(item) for item in items]
        flat = [p for p in prepared if isinstance(p, dict) and not p["image"].is_volume]
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
        out = self.model.run(x, p if self.use_prompts else None, m)
        found = self.model.findings(out)
        if found is None:
            raise ModelError(f"model {self.name} has no finding heads")
        return {"score": out.score, "presence": found["presence"],
                "expected": found["expected_severity"]}

    def _forward_volume(self, x: torch.Tensor, p: torch.Tensor, m: torch.Tensor | None
                        ) -> dict[str, torch.Tensor]:
        """Forward of one volume's slices → volume score, slice scores/weights, findings."""
        vol = self.model.forward_volume(x, p if self.use_prompts else None, m)
        found = self.model.findings(vol.slices)
        w = vol.slice_weights[:, None]
        return {"score": vol.score[None], "presence": (found["presence"] * w).sum(0)[None],
                "expected": (found["expected_severity"] * w).sum(0)[None],
                "slice_scores": vol.slice_scores, "slice_weights": vol.slice_weights}

    def _describe(self, p: dict[str, Any]) -> Assessment:
        """Turn one prepared input with model outputs into an Assessment."""
        image: MedImage = p["image"]
        out = p["out"]
        measures = _measures(image, p["indices"]) if self.measures else {}
        score = float(out["score"][0])
        presence, expected = out["presence"][0].numpy(), out["expected"][0].numpy()
        slices = None
        if image.is_volume:
            slices = [{"index": int(i), "score": round(float(s), 3), "weight": round(float(w), 4)}
                      for i, s, w in zip(p["indices"], out["slice_scores"],
                                         out["slice_weights"], strict=True)]
        return Assessment(
            score=round(score, 3), grade=grade_for(score), recall=score < 2.5,
            findings=findings_from(presence, expected, image.modality, measures),
            measures=measures, prompts=p["prompts"].to_dict(), slices=slices, model=self.name,
            path=str(image.source) if image.source else None, modality=image.modality,
            shape=list(image.shape), finding_scores=finding_scores_from(presence, expected))


def _measures(image: MedImage, indices: list[int]) -> dict[str, float | None]:
    """Classical measures of a 2D image, or the mean over a volume's salient slices."""
    from medq.assess.measures import compute_measures

    arrays = [image.array[i] for i in indices] if image.is_volume else [image.array]
    values = [compute_measures(a, image.modality) for a in arrays]
    merged = {}
    for key in values[0]:
        finite = [v[key] for v in values if np.isfinite(v[key])]
        merged[key] = clean_number(np.mean(finite)) if finite else None
    return merged
