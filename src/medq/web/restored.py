"""The on-demand restored preview of an item: one plane restored by `medq.restore`, as PNG.

Only the plane on screen is restored (a volume's current slice), and it is shown through the
same window as the original so the two can be compared, with the restoration's one-line note
(e.g. that nothing needed repair). When restoration is not installed or fails, the caller gets
a status code and a one-line reason instead of an image: 501 when `medq.restore` cannot be
imported, 503 when it fails on this image, 404 when the image is gone.
"""

from __future__ import annotations

from typing import Any

from medq.errors import InputError, MedqError
from medq.image import MedImage
from medq.report.render import png_bytes
from medq.web.images import item_image, plane, plane_pixels, window_for


def _restorer() -> Any:
    """`medq.restore.restore`, or ImportError when restoration is not available."""
    from medq.restore import restore

    return restore


def _image_of(result: Any) -> tuple[MedImage, str]:
    """(restored image, note) from what `restore` returned (a result holding an image, or one)."""
    if isinstance(result, MedImage):
        return result, ""
    found = getattr(result, "image", None)
    if isinstance(found, MedImage):
        return found, str(getattr(result, "note", "") or "")
    raise TypeError(f"restore returned {type(result).__name__}, not an image")


def restored_png(item: dict[str, Any], index: int | None = None) -> tuple[int, bytes | str, str]:
    """(200, PNG bytes, restoration note) of the restored plane, or (status, reason, '')."""
    try:
        restore = _restorer()
    except ImportError as e:
        return 501, f"restoration is not available in this medq installation ({e})", ""
    try:
        image = item_image(item)
    except InputError as e:
        return 404, e.reason, ""  # the page names the item; no server path
    shown = plane(image, index)
    try:
        restored, note = _image_of(restore(shown, reassess=False))
    except MedqError as e:
        return 503, f"restoration failed: {e.reason}", ""
    except Exception as e:  # noqa: BLE001 - the page shows the reason; the server goes on
        return 503, f"restoration failed: {type(e).__name__}: {e}", ""
    return 200, png_bytes(plane_pixels(restored, None, None, window_for(image))), note
