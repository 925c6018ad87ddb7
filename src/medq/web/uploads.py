"""Ad-hoc uploads: a size limit on the request body, a type check by content, assess and record.

An upload is written under the server's uploads folder as `<random id>/<file name>`: the
client's file name sanitised (`upload_name`: no folders, only letters, digits, `.`, `_` and
`-`, and an ending that names the format found), so the item shows the user's name but no
client string ever chooses a folder. It is checked with `medq.io.sniff` and `medq.io.load`,
assessed with the server's Assessor and recorded in the store like any QC item, so it can be
viewed and reviewed like the others. Anything that is not an image medq reads is deleted and
answered with 400; a body over the limit with 413, before it is read in full.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from medq.errors import InputError, InvalidParameter, UnsupportedImage
from medq.qc.database import READ_ONLY

SUFFIXES = (".dcm", ".dicom", ".ima", ".nii", ".nii.gz", ".mha", ".nrrd", ".mgh", ".mgz", ".mnc",
            ".v", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
"""File name endings kept from the client's name (they help `sniff` with headerless DICOM, and
name MGH, MINC and ECAT files, which have no signature medq reads)."""

FORMAT_SUFFIX = {"dicom": ".dcm", "metaimage": ".mha", "nrrd": ".nrrd", "png": ".png",
                 "jpeg": ".jpg", "tiff": ".tif", "npy": ".npy", "minc": ".mnc",
                 "ecat": ".v"}
"""File name ending of a stored upload, by sniffed format (NIfTI: .nii or .nii.gz; MGH: .mgh or
.mgz; formats of two files cannot be uploaded)."""

SAME_FORMAT = {".dicom": ".dcm", ".ima": ".dcm", ".jpeg": ".jpg", ".tiff": ".tif"}
"""Client file name endings that mean the format of a stored ending."""

NAME_LENGTH = 120
"""Longest stored upload name, in characters."""

CHUNK = 1 << 20


class BodyTooLarge(Exception):
    """The request body went over the upload limit."""


def uploads_folder(store: Any, folder: str | Path | None = None) -> Path:
    """Where uploads go: `folder`, else `medq-uploads/` beside a SQLite file, else the cache."""
    if folder is not None:
        return Path(folder).expanduser().resolve()
    import sqlalchemy as sa

    url = sa.engine.make_url(store.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "medq-uploads"
    from medq.data.cache import cache_dir

    return cache_dir() / "uploads"


def _too_large(exc: BaseException) -> bool:
    """True when `exc` is BodyTooLarge or an exception group holding only such errors."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(exc, BodyTooLarge):
        return True
    return bool(inner) and all(_too_large(e) for e in inner)


OTHER_BODY_LIMIT = 1_000_000
"""Largest body of a request other than an upload (a review: its texts are at most 10,000
characters), in bytes."""


class BodyLimit:
    """ASGI middleware: a request to one of `paths` with a body over `limit` bytes gets 413, and
    one to any other path with a body over `OTHER_BODY_LIMIT` (a review read whole before its
    check: a 150 MB one took 0.5 GB).

    The body may exceed the file limit by `slack` bytes (multipart headers and form fields).
    """

    def __init__(self, app: Any, limit: int, paths: tuple[str, ...], slack: int = 64_000) -> None:
        self.app, self.file_limit, self.paths = app, int(limit), paths
        self.upload_limit = self.file_limit + int(slack)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Pass the request on, counting its body bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope.get("path") in self.paths
        limit = self.upload_limit if upload else OTHER_BODY_LIMIT
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._reject(scope, send, upload)
            return
        seen = 0
        started = False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
            return message

        async def watched(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception as e:  # may arrive wrapped in an exception group by other middleware
            if not _too_large(e):
                raise
            if not started:
                await self._reject(scope, send, upload)

    async def _reject(self, scope: dict, send: Any, upload: bool) -> None:
        from fastapi.responses import HTMLResponse, JSONResponse

        mb = (self.file_limit if upload else OTHER_BODY_LIMIT) / 1e6
        detail = f"{'upload' if upload else 'request'} larger than the limit of {mb:g} MB"
        if str(scope.get("path", "")).startswith("/api/"):
            response: Any = JSONResponse({"detail": detail}, status_code=413)
        else:
            response = HTMLResponse(f"<!doctype html><meta charset='utf-8'><title>medq</title>"
                                    f"<h1>Upload refused</h1><p>{detail}.</p>"
                                    "<p><a href='/upload'>Back</a></p>", status_code=413)
        response.headers["Connection"] = "close"

        async def empty() -> dict:
            return {"type": "http.disconnect"}

        await response(scope, empty, send)


def client_suffix(name: str) -> str:
    """The allowed ending of the client's file name, or '' (never a path component)."""
    lower = client_base(name).lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if lower.endswith(s)), "")


def client_base(name: str) -> str:
    """The last component of the client's file name (`/` or `\\` separated), or 'upload'."""
    return os.path.basename((name or "").replace("\\", "/")) or "upload"


def upload_name(name: str, suffix: str) -> str:
    """The stored name of an upload: the client's base name with anything but letters, digits,
    `.`, `_` and `-` replaced by `_`, no leading dot, and `suffix` (the format found) as its
    ending, replacing an ending that names another format."""
    ending = client_suffix(name)
    base = client_base(name)
    stem = base[:len(base) - len(ending)] if ending else base
    if SAME_FORMAT.get(ending.lower(), ending.lower()) == suffix:
        suffix = ending.lower()  # the client's own ending (`.jpeg`, `.IMA` as `.ima`) is kept
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".")[:NAME_LENGTH] or "upload"
    return stem + suffix


def _discard(path: Path) -> None:
    """Delete a stored upload and its own folder."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty or already gone
        path.parent.rmdir()


def store_upload(stream: Any, name: str, folder: Path, limit: int) -> Path:
    """Copy an uploaded file object into `folder/<random id>/`, check its type, return the stored
    path (`upload_name`).

    Raises BodyTooLarge over `limit` bytes and InputError (message naming the client's file
    name) when it is not an image medq can read; nothing is left behind in either case.
    """
    from medq.io import sniff

    folder.mkdir(parents=True, exist_ok=True)
    key = uuid.uuid4().hex
    tmp = folder / f".{key}.upload{client_suffix(name)}"
    shown = client_base(name)
    try:
        size = 0
        with open(tmp, "wb") as fh:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                fh.write(chunk)
        try:
            fmt = sniff(tmp)
        except InputError as e:
            raise type(e)(e.reason, shown) from e
        if fmt in ("nifti", "mgh"):
            with open(tmp, "rb") as fh:
                gzipped = fh.read(2) == b"\x1f\x8b"
            suffix = {"nifti": (".nii", ".nii.gz"), "mgh": (".mgh", ".mgz")}[fmt][gzipped]
        elif fmt in FORMAT_SUFFIX:
            suffix = FORMAT_SUFFIX[fmt]
        else:
            raise UnsupportedImage(f"not an image file medq reads ({fmt})", shown)
        final = folder / key / upload_name(name, suffix)
        final.parent.mkdir()
        os.replace(tmp, final)
        return final
    finally:
        tmp.unlink(missing_ok=True)


UPLOAD_VALUES = 1 << 29
"""Most pixel values (voxels × samples) an upload's header may state: 2 GB as float32, a whole
body CT; a small file stating more (a compressed bomb: 1 MB of zeros saying 1024³) is refused
before it is read."""


def declared_values(path: Path) -> int | None:
    """How many pixel values the upload's header states (NIfTI/MGH, DICOM, PNG/JPEG/TIFF,
    MetaImage/NRRD), read without its pixels; None where it cannot be told this way."""
    from medq.io import sniff

    fmt = sniff(path)
    if fmt in ("nifti", "mgh"):
        import nibabel as nib

        from medq.io.nifti import quiet_header_checks

        with quiet_header_checks():  # a header read: nibabel's notes stay off stderr
            return math.prod(int(n) for n in nib.load(str(path)).shape)
    if fmt == "dicom":
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return int(ds.get("Rows", 0)) * int(ds.get("Columns", 0)) * int(
            ds.get("NumberOfFrames", 1) or 1) * int(ds.get("SamplesPerPixel", 1) or 1)
    if fmt in ("png", "jpeg", "tiff"):
        from PIL import Image

        with Image.open(path) as im:
            return im.width * im.height * len(im.getbands()) * getattr(im, "n_frames", 1)
    if fmt in ("metaimage", "nrrd"):
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return math.prod(reader.GetSize()) * reader.GetNumberOfComponents()
    return None


def check_declared_size(path: Path) -> None:
    """UnsupportedImage when the upload's header states more than `UPLOAD_VALUES` values; a
    header that cannot be read is left to the loader, which names its reason."""
    try:
        stated = declared_values(path)
    except Exception:  # noqa: BLE001 - a damaged header: the loader reports it
        return
    if stated is not None and stated > UPLOAD_VALUES:
        raise UnsupportedImage(f"its header states {stated:,} pixel values, more than the "
                               f"review app reads ({UPLOAD_VALUES:,}); assess it with medq "
                               "assess")


def load_upload(path: Path, name: str, modality: str | None) -> Any:
    """Load a stored upload (the type check by content, its stated size first); delete it and
    re-raise on failure."""
    from medq.io import load

    try:
        check_declared_size(path)
        return load(path, modality=modality or None)
    except InputError as e:
        _discard(path)
        raise type(e)(e.reason, client_base(name)) from e
    except Exception:
        _discard(path)
        raise


class Uploader:
    """The server's assessor (loaded on first use) plus where and how uploads are recorded."""

    def __init__(self, store: Any, folder: Path, limit: int, model: str = "mediqa-s") -> None:
        self.store, self.folder, self.limit, self.model = store, folder, int(limit), model
        self._assessor: Any = None
        self._lock = threading.Lock()

    def assess_and_record(self, stream: Any, name: str, modality: str | None = None) -> int:
        """Store, check, assess and record one uploaded file; returns the new item's id."""
        from medq.image import graded_modality
        from medq.io.archive import archive_name
        from medq.qc.discover import Item
        from medq.qc.fingerprint import fingerprint
        from medq.qc.rows import ok_result
        from medq.qc.runner import model_key

        if self.store.read_only:  # refused before the file is kept
            raise InvalidParameter(READ_ONLY, self.store.display_url)
        modality = graded_modality(modality or None)  # "US" was graded and stored as US
        if archive_name(name or ""):
            raise UnsupportedImage("a zip or tar archive: the review app assesses one image per "
                                   "upload; `medq assess <archive>` reads every image in it",
                                   client_base(name))
        path = store_upload(stream, name, self.folder, self.limit)
        image = load_upload(path, name, modality)
        try:  # whatever fails from here (the model, the database), no patient file is kept
            with self._lock:
                if self._assessor is None:
                    from medq.assess.predictor import Assessor

                    self._assessor = Assessor(self.model)
                try:
                    assessment = self._assessor.assess(image)
                except InputError as e:  # a blank or tiny image: as a load failure
                    raise type(e)(e.reason, client_base(name)) from e
            item = Item(str(path), (str(path),))
            return self.store.record({**ok_result(item, assessment, image), "model": model_key(
                self.model), "fingerprint": fingerprint(item.files), "named_modality": modality})
        except BaseException:
            _discard(path)
            raise
