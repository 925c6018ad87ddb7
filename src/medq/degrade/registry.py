"""Registry of physics degradations and `simulate()`, the one way to apply them.

A degradation is a pure function `(image, level, rng) -> (image, params)` registered with a
`DegradationSpec`: its physical unit, which direction is worse, and the level boundaries that map a
level to severity none/mild/moderate/severe. `simulate` wraps it: it draws the rng from the seed,
records a `Degradation` (the ground truth for training) and appends it to the image's provenance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medq.errors import InvalidParameter, UnsupportedImage
from medq.image import MedImage
from medq.severity import SEVERITIES

DegradeFn = Callable[[MedImage, float, np.random.Generator], tuple[MedImage, dict[str, Any]]]


@dataclass(frozen=True)
class DegradationSpec:
    """How one degradation is parameterised and graded.

    `bounds` are the three level boundaries none|mild, mild|moderate, moderate|severe, listed in the
    order severity grows (so decreasing for `worse="lower"`, e.g. photon counts). `levels` are the
    representative levels used for `--severity`. `domain` is the closed range of levels the
    degradation is defined on (a fraction below 1, a factor of at least 1, at least 2 views…);
    `simulate` refuses a level outside it.
    """

    name: str
    fn: DegradeFn
    unit: str
    worse: str  # "higher" or "lower"
    bounds: tuple[float, float, float]
    levels: dict[str, float]
    modalities: tuple[str, ...]
    finding: str
    description: str
    domain: tuple[float, float]

    def severity(self, level: float) -> str:
        """Map a physical level to none/mild/moderate/severe using `bounds`."""
        sign = 1.0 if self.worse == "higher" else -1.0
        n = sum(sign * float(level) >= sign * b for b in self.bounds)
        return SEVERITIES[n]

    def _axis(self, level: float) -> float:
        """Level on the grading axis: log for positive levels, oriented so larger is worse."""
        sign = 1.0 if self.worse == "higher" else -1.0
        return sign * float(np.log(max(float(level), 1e-12)))

    def severity_value(self, level: float) -> float:
        """Continuous severity in [0, 3.5]: 0.5 / 1.5 / 2.5 at the bounds, linear in log level.

        Between and beyond the bounds the value is interpolated (extrapolated with the nearest
        segment's slope) on the log-level axis, then clipped: 0 is "no degradation", 3 is the
        worst severe the engine is meant to make. This is the continuous form of `severity`.
        """
        u = self._axis(level)
        b = [self._axis(x) for x in self.bounds]
        seg = 0 if u < b[1] else 1
        t = 0.5 + seg + (u - b[seg]) / (b[seg + 1] - b[seg])
        return float(np.clip(t, 0.0, 3.5))

    def level_at(self, value: float) -> float:
        """Inverse of `severity_value`: the level whose continuous severity is `value`."""
        b = [self._axis(x) for x in self.bounds]
        seg = 0 if value < 1.5 else 1
        u = b[seg] + (value - 0.5 - seg) * (b[seg + 1] - b[seg])
        sign = 1.0 if self.worse == "higher" else -1.0
        return float(np.exp(sign * u))

    def domain_text(self) -> str:
        """The levels `simulate` takes, as the table and its errors say it: "0 – 200" is written
        "> 0 – 200", since a level is a positive quantity."""
        low, high = self.domain
        return f"{'> ' if low <= 0 else ''}{max(low, 0):g} – {high:g}"

    def level_for(self, severity: str) -> float:
        """Representative level of a severity (`mild`, `moderate`, `severe`; any case, as
        `--modality` takes any)."""
        named = str(severity).strip().lower()
        if named not in self.levels:
            raise InvalidParameter(
                f"severity {severity!r} unknown for {self.name}; choose from "
                f"{', '.join(self.levels)}")
        return self.levels[named]


@dataclass
class Degradation:
    """Record of one applied degradation: name, level (+unit), severity, seed, every parameter."""

    name: str
    level: float
    unit: str
    severity: str
    seed: int | None
    finding: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (numpy scalars converted)."""
        return json.loads(json.dumps(asdict(self), default=_jsonable))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Degradation:
        """Inverse of `to_dict`."""
        return cls(**data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_REGISTRY: dict[str, DegradationSpec] = {}


def register(name: str, *, unit: str, worse: str, bounds: tuple[float, float, float],
             levels: dict[str, float], modalities: tuple[str, ...], finding: str,
             domain: tuple[float, float]) -> Callable[[DegradeFn], DegradeFn]:
    """Decorator registering a degradation function under `name` (docstring = description)."""
    if worse not in ("higher", "lower"):
        raise ValueError("worse must be 'higher' or 'lower'")

    def wrap(fn: DegradeFn) -> DegradeFn:
        doc = (fn.__doc__ or name).strip().splitlines()[0]
        spec = DegradationSpec(name, fn, unit, worse, tuple(bounds), dict(levels),
                               tuple(modalities), finding, doc, tuple(domain))
        for sev, lev in levels.items():
            if spec.severity(lev) != sev:
                raise ValueError(f"{name}: level {lev} of {sev!r} grades as {spec.severity(lev)!r}")
        _REGISTRY[name] = spec
        return fn

    return wrap


def get_spec(name: str) -> DegradationSpec:
    """The spec registered under `name`; InvalidParameter naming the choices when unknown."""
    try:
        return _REGISTRY[str(name).strip().lower()]  # "CT_LOW_DOSE" as ct_low_dose
    except KeyError:
        raise InvalidParameter(
            f"unknown degradation {name!r}; choose from {', '.join(sorted(_REGISTRY))}") from None


def available(modality: str | None = None) -> list[str]:
    """Names of the registered degradations, optionally only those that apply to `modality`."""
    return sorted(n for n, s in _REGISTRY.items() if modality is None or modality in s.modalities)


def _level(level: Any, unit: str) -> float:
    """A level given as a number (a NumPy scalar too); InvalidParameter for text, a list or
    True (float() gave bare errors for the first two and read True as 1)."""
    if not isinstance(level, (bool, str, bytes)):
        try:
            return float(level)
        except (TypeError, ValueError):
            pass
    raise InvalidParameter(f"level must be a positive number ({unit}), got {level!r}")


def simulate(image: MedImage | np.ndarray | str | Path, kind: str, level: float | None = None,
             severity: str | None = None, seed: int | None = 0, *, modality: str | None = None,
             region: str | None = None, spacing: float | Sequence[float] | None = None
             ) -> tuple[MedImage, Degradation]:
    """Apply degradation `kind` at a physical `level` (or a named `severity`), reproducibly.

    `image` is a MedImage, a path or a NumPy array (`medq.io.as_image`, with the caller's
    `modality`, `region` and `spacing` in mm: the engine's levels are physical); the degraded
    pixels are the result's `.array`. The result is a MedImage like `medq.load`'s: a colour
    picture on MedImage's 0–1 scale (`medq.io.arrays.on_given_scale(result)` gives the
    caller's 0–255), an array given as `(1, y, x)` or `(1, z, y, x)` without that axis, and
    pixels that were NaN or infinite read as `medq.io.arrays.finite_pixels` reads them
    (`medq.save` writes them back as they were)."""
    from medq.io.arrays import as_image

    image = as_image(image, modality=modality, region=region, spacing=spacing)
    spec = get_spec(kind)
    kind = spec.name  # as registered, whatever its case
    if image.modality not in spec.modalities:
        hint = (" (the input does not say: pass --modality, or modality= in Python)"
                if image.modality == "OT" else "")
        raise UnsupportedImage(
            f"{kind} applies to {'/'.join(spec.modalities)} images, not {image.modality}{hint}",
            image.source)
    if (level is None) == (severity is None):
        raise InvalidParameter("give exactly one of level or severity (--level or --severity "
                               "on the command line)")
    lev = float(spec.level_for(severity)) if severity is not None else _level(level, spec.unit)
    if not np.isfinite(lev) or lev <= 0:  # every level is a positive physical quantity
        raise InvalidParameter(f"level must be a positive number ({spec.unit}), got {level}")
    low, high = spec.domain
    if not low <= lev <= high:
        raise InvalidParameter(f"{kind} is defined for levels {spec.domain_text()} "
                               f"({spec.unit}), got {lev:g}")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InvalidParameter(f"seed must be a whole number ≥ 0, got {seed}")
    rng = np.random.default_rng(seed)
    out, params = spec.fn(image, lev, rng)
    record = Degradation(kind, lev, spec.unit, spec.severity(lev), seed, spec.finding, dict(params))
    meta = dict(out.meta)
    meta["degradations"] = [*image.meta.get("degradations", []), record.to_dict()]
    meta.setdefault("history", list(image.meta.get("history", [])))
    meta["history"].append({"step": "simulate", "kind": kind, "level": lev, "seed": seed})
    return out.evolve(meta=meta), record
