"""The JSON API of the review app: items with filters, one item, reviews, uploads.

`GET /api/items` (the list filters, sorting and pagination), `GET /api/items/{id}` (the item and
its reviews), `POST /api/items/{id}/review`, `GET /api/items/{id}/reviews` and `POST /api/upload`.
Reviews are appended to an audit table and never change the model's result. Documented by
FastAPI's OpenAPI schema at `/docs`.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field, model_validator

from medq.errors import InputError
from medq.qc.rows import COMMENT_MAX, COMMENT_NEEDED, REVIEWER_MAX, review_text_problem

Verdict = Literal["good", "usable", "reject"]
Decision = Literal["accept", "reject", "comment"]
Sort = Literal["score", "id", "path", "modality", "region", "verdict", "grade", "updated_at"]

router = APIRouter(prefix="/api", tags=["items"],
                   dependencies=[Depends(HTTPBearer(auto_error=False,
                                                    description="the server's --token"))])


class ReviewFields(BaseModel):
    """A reviewer's decision on an item."""

    reviewer: str = Field(..., min_length=1, max_length=REVIEWER_MAX,
                          description="reviewer's name")
    decision: Decision
    comment: str = Field("", max_length=COMMENT_MAX)


class ReviewIn(ReviewFields):
    """A new review: a `comment` decision must carry a comment, and its texts must be valid
    (`Store.add_review`'s rules; 422 otherwise)."""

    @model_validator(mode="after")
    def _comment_has_text(self) -> ReviewIn:
        if not self.reviewer.strip():  # as an empty name (a 400 from the store before)
            raise ValueError("a review needs the reviewer's name")
        if self.decision == "comment" and not self.comment.strip():
            raise ValueError(COMMENT_NEEDED)
        reason = review_text_problem(self.reviewer, self.comment)
        if reason:
            raise ValueError(reason)
        return self


class Review(ReviewFields):
    """A stored review (audit row; one stored before comments were required may lack one)."""

    id: int
    item_id: int
    created_at: str
    fingerprint: str | None = None
    """The content the review was made on (None: a review stored before medq recorded it)."""


class Item(BaseModel):
    """One assessed item: the model's result as recorded, plus its review state."""

    id: int
    path: str
    fingerprint: str
    model: str
    run_id: int | None = None
    dimension: str | None = None
    modality: str | None = None
    named_modality: str | None = None
    """The modality it was read as by the user's word (`qc run --modality`, an upload's
    modality field); None when its file's own was read."""
    modality_source: str | None = None
    """Where the graded modality came from (`tags`, `values`, `predicted`, `user`, `default`;
    None: stored by an older medq)."""
    nonfinite_fraction: float | None = None
    """The share of its pixels that are NaN or infinite (None: all finite, or not recorded)."""
    noisy_slices: dict[str, Any] | None = None
    """A volume's slices noisier than those around them (`slices` empty when none is; None: not
    compared, as for a 2D image, or stored by an earlier medq)."""
    suspected: list[dict[str, Any]] | None = None
    """Doubtful finding types that pull the score down without being reported."""
    slice_gaps: dict[str, Any] | None = None
    """A series' missing slices or uneven spacing (`missing_slices`, the steps in mm; None: even,
    not a series, or stored by an earlier medq)."""
    region: str | None = None
    shape: list[int] | None = None
    score: float | None = None
    grade: str | None = None
    verdict: str | None = None
    recall: bool | None = None
    findings: list[dict[str, Any]] | None = None
    measures: dict[str, float | None] | None = None
    description: str | None = None
    lossy_compression: dict[str, Any] | None = None
    """What the file states about lossy compression ({} when not lossy; None: not recorded)."""
    status: str
    error: str | None = None
    created_at: str
    updated_at: str
    reviewed: bool
    last_review: Review | None = None


class ItemDetail(Item):
    """An item with every review, oldest first."""

    reviews: list[Review]


class ItemPage(BaseModel):
    """One page of matching items."""

    total: int = Field(..., description="items matching the filters")
    limit: int
    offset: int
    items: list[Item]


def store_of(request: Request) -> Any:
    """The app's results store."""
    return request.app.state.store


def item_or_404(store: Any, item_id: int) -> dict[str, Any]:
    """The stored item, or HTTP 404."""
    item = store.item(item_id)
    if item is None:
        raise HTTPException(404, f"no item with id {item_id}")
    return item


@router.get("/items", response_model=ItemPage, summary="List items")
def list_items(request: Request, modality: str | None = None, verdict: Verdict | None = None,
               status: Literal["ok", "error"] | None = None,
               min_score: float | None = Query(None, ge=0, le=6),
               max_score: float | None = Query(None, ge=0, le=6),
               reviewed: bool | None = None, model: str | None = None, sort: Sort = "score",
               order: Literal["asc", "desc"] = "asc",
               limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)) -> Any:
    """Items matching every given filter, sorted, one page at a time."""
    store = store_of(request)
    filters = {"modality": modality, "verdict": verdict, "status": status,
               "min_score": min_score, "max_score": max_score, "reviewed": reviewed,
               "model": model}
    items = store.items(**filters, sort=sort, descending=order == "desc", limit=limit,
                        offset=offset)
    return {"total": store.count(**filters), "limit": limit, "offset": offset, "items": items}


@router.get("/items/{item_id:int}", response_model=ItemDetail, summary="One item")
def get_item(request: Request, item_id: int) -> Any:
    """One item with all its reviews (404 when the id is not in the database)."""
    store = store_of(request)
    return dict(item_or_404(store, item_id), reviews=store.reviews(item_id))


@router.get("/items/{item_id:int}/reviews", response_model=list[Review], summary="Reviews")
def get_reviews(request: Request, item_id: int) -> Any:
    """Every review of an item, oldest first."""
    store = store_of(request)
    item_or_404(store, item_id)
    return store.reviews(item_id)


@router.post("/items/{item_id:int}/review", response_model=Review, status_code=201,
             summary="Review an item")
def post_review(request: Request, item_id: int, review: ReviewIn) -> Any:
    """Append a review (accept / reject / comment); the model's result is never changed."""
    store = store_of(request)
    item_or_404(store, item_id)
    try:
        return store.add_review(item_id, review.reviewer, review.decision, review.comment)
    except InputError as e:
        raise HTTPException(400, e.reason) from e


UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "DICOM, NIfTI, MetaImage, NRRD, PNG, JPEG, TIFF or .npy"},
        "modality": {"type": "string",
                     "description": "modality to read the file as, over what it says"},
    }}}}}}


async def read_upload(request: Request) -> tuple[Any, str, str | None]:
    """(file object, client file name, modality) of a multipart upload; 400 when malformed."""
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not getattr(upload, "filename", None):
        raise HTTPException(400, "no file in the upload (multipart field 'file')")
    modality = form.get("modality")
    return upload, upload.filename, (modality.strip().upper() or None
                                     if isinstance(modality, str) else None)


async def assess_upload(request: Request) -> int:
    """Store, type-check, assess and record an upload; returns the item id (HTTP 400 if bad)."""
    upload, name, modality = await read_upload(request)
    try:
        return await run_in_threadpool(request.app.state.uploader.assess_and_record,
                                       upload.file, name, modality)
    except InputError as e:
        raise HTTPException(400, e.message) from e
    finally:
        await upload.close()


@router.post("/upload", response_model=ItemDetail, status_code=201, summary="Assess an upload",
             openapi_extra=UPLOAD_SCHEMA)
async def post_upload(request: Request) -> Any:
    """Assess one uploaded image now and record it (413 over the limit, 400 if not an image)."""
    item_id = await assess_upload(request)
    store = store_of(request)
    return dict(store.item(item_id), reviews=[])
