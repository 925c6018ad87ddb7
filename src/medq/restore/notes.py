"""The notes `medq restore` writes: what was restored and how, or why the image is returned as
it was."""

from __future__ import annotations

from typing import Any

from medq.describe.text import named
from medq.restore import condition
from medq.restore.gate import gate_reason
from medq.wording import joined

METHOD_WORDS = {"auto": "the network, conditioned on the description (auto)",
                "net": "the network, conditioned on the description (net)", "bm3d": "BM3D",
                "nlm": "non-local means",
                "tv": "total variation"}
"""How a restoration note names each `--method`."""


def restored_note(method: str, addressed: list[str], before: float | None,
                  after: float | None, lossy: dict[str, Any] | None = None, forced: str = "",
                  kept: float | None = None, denoiser: str | None = None) -> str:
    """The note for a changed image (and, for a lossy input file, what restoring cannot do);
    `forced`: why a forced restoration that addressed no finding ran (`why_forced`); `kept`:
    the share of the network's correction SURE kept (`RestoreResult.sure_scale`); `denoiser`:
    what `auto` restored with instead of the network (`RestoreResult.denoiser`)."""
    what = ", ".join(a.replace("_", " ") for a in addressed)
    how = METHOD_WORDS.get(method, method)
    if denoiser:
        outside = "left as it was" if kept == 0.0 else "with the network"
        line = (f"Restored with {METHOD_WORDS.get(denoiser, denoiser)} for {what} inside the body "
                f"({method}: SURE read it closer to the clean image there than the network's "
                f"correction) and {outside} outside it")
    else:
        line = (f"Restored with {how} for {what}" if addressed else
                f"Restored with {how} (forced: {forced or 'nothing was found to repair'})")
    if kept is not None and kept < 1.0 and not (denoiser and kept == 0.0):  # BM3D: none
        whose = "the network's correction there" if denoiser else "its correction"
        line += f", keeping {kept:.0%} of {whose} (the share SURE reads as noise)"
    if before is None or after is None:
        line += "."
    elif round(after, 2) > round(before, 2):
        line += f"; the re-assessed score rose from {before:.2f} to {after:.2f}."
    else:
        line += (f"; the re-assessed score did not rise ({before:.2f} → {after:.2f}): "
                 "compare with the input before relying on it.")
    if lossy:
        from medq.describe.text import ratio_text

        at = f" at {ratio_text(lossy)}" if ratio_text(lossy) else ""
        line += (f" The input file is lossy compressed{at}: detail the compression discarded is "
                 "not recovered, only made to look sharper or smoother.")
    return line


def why_forced(report: Any, method: str, found: set[str]) -> str:
    """Why a forced restoration addressed none of the description's findings (`gate_reason`;
    "" when the description found nothing, whatever the network's prior found)."""
    if not report.findings:
        return ""
    reason = gate_reason(report, method, found)
    words = joined(named(report.findings))
    if reason == "method":
        return f"the description found {words}, which {METHOD_WORDS[method]} does not repair"
    if reason == "mild":
        return f"the description found {words}; the gate leaves mild detail findings alone"
    return f"the description found {words}, which medq does not restore"


def unchanged_note(report: Any, method: str, found: set[str]) -> str:
    """Why the quality gate returned the image as it was (`gate_reason`)."""
    reason = gate_reason(report, method, found)
    if reason == "method":
        what = ", ".join(sorted(t.replace("_", " ") for t in found))
        return (f"{METHOD_WORDS[method]} removes noise, and the description reports {what}, "
                "which it does not address: the image is returned unchanged (--method auto "
                "restores it).")
    if reason == "mild":
        return ("Only mild blur, low resolution or motion was found: sharpening risks "
                "inventing detail that is not there, so the image is returned unchanged "
                "(--force restores it anyway).")
    other = named([f for f in report.findings if f.type not in condition.RESTORABLE])
    if reason == "other" and other:
        listed = joined(other)
        return (f"{listed[0].upper()}{listed[1:]} {'was' if len(other) == 1 else 'were'} found, "
                "which medq does not restore; the image is returned unchanged.")
    return ("No noise, blur, aliasing, motion or streaks to repair were found; the image is "
            "returned unchanged.")
