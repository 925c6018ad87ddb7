"""The review app (FastAPI + Jinja2): browse QC results, look at images, review, upload.

Pages: `/items` (filters, sorting, pages), `/items/{id}` (image with a slice scroller for
volumes, score, findings, description, measures, an on-demand restored preview, the review
form and history), `/upload` (assess one file now). Images are rendered from the paths recorded
in the store, looked up by item id; no route takes a path from the client. The JSON API lives
in `medq.web.api`, access control in `medq.web.security`, uploads in `medq.web.uploads`.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from medq.errors import DatabaseUnavailable, InputError, MedqError
from medq.web import api, images
from medq.web.filters import PAGE_SIZE, SORTS, count_filters, parse_filters, query_string
from medq.web.security import bounded_numbers, safety_headers, same_site, token_gate
from medq.web.uploads import BodyLimit, Uploader, uploads_folder

UPLOAD_LIMIT_MB = 200.0
"""Default largest upload, in MB."""

THUMB_SIDE = 72
"""Longest side of the list page's thumbnails, in pixels."""

PNG_CACHE = {"Cache-Control": "private, max-age=60"}


def _templates() -> Jinja2Templates:
    from medq import __version__
    from medq.errors import printable
    from medq.report.qc_report import VERDICT_COLOURS, short_time

    env = Environment(loader=PackageLoader("medq.web", "templates"),
                      autoescape=select_autoescape(["html"]))
    env.globals.update(colours=VERDICT_COLOURS, medq_version=__version__)
    env.filters["when"] = short_time
    env.filters["printable"] = printable  # a newline in a path shown as \n, not as a space
    return Jinja2Templates(env=env)


def _slices(item: dict[str, Any]) -> int:
    """Number of axial slices of an item, from its recorded shape (1 for 2D and RGB)."""
    shape = item.get("shape") or []
    rgb = len(shape) == 3 and shape[-1] == 3 and item.get("dimension") != "3D"
    return int(shape[0]) if len(shape) == 3 and not rgb else 1


def create_app(db_url: str | Path, token: str | None = None,
               upload_limit_mb: float = UPLOAD_LIMIT_MB, uploads_dir: str | Path | None = None,
               model: str = "mediqa-s", host: str | None = None) -> FastAPI:
    """The review app for the results store at `db_url` (optional bearer `token`; `host`: the
    address it is served on, whose name requests must use, `security.same_site`); a SQLite
    file that does not exist is refused (MissingInput), as by `medq qc export`."""
    from fastapi_offline import FastAPIOffline

    from medq import __version__
    from medq.qc.store import Store

    store = Store(db_url, create=False)
    limit = int(upload_limit_mb * 1e6)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPIOffline(title="medq review", version=__version__, lifespan=lifespan,
                         redoc_url=None, description="Quality-control results of medq: "
                         "browse, review and upload. With a server token, send "
                         "`Authorization: Bearer <token>`.",
                         # every route first checks the database file is still the one opened
                         # (DatabaseGone, a 503: pages served the old file's remains with 200)
                         dependencies=[Depends(store.check_in_place)])
    app.state.store = store
    app.state.uploader = Uploader(store, uploads_folder(store, uploads_dir), limit, model)
    app.middleware("http")(token_gate(token or None))
    app.middleware("http")(same_site(host, token or None))
    app.middleware("http")(bounded_numbers)
    app.middleware("http")(safety_headers)
    app.add_middleware(BodyLimit, limit=limit, paths=("/upload", "/api/upload"))
    app.include_router(api.router)
    templates = _templates()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        summary = store.summary()
        return templates.TemplateResponse(request, name, {"summary": summary, **context},
                                          status_code=status)

    def item_or_404(item_id: int) -> dict[str, Any]:
        return api.item_or_404(store, item_id)

    @app.exception_handler(StarletteHTTPException)  # also unmatched routes (404)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(("/api/", "/docs", "/openapi")) or request.url.path.endswith(
                ".png"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=exc.headers)
        try:  # an unmatched route runs no route's check, and the page reads the database
            await run_in_threadpool(store.check_in_place)
            return await run_in_threadpool(page, request, "message.html", exc.status_code,
                                           title=f"Error {exc.status_code}",
                                           message=str(exc.detail))
        except DatabaseUnavailable as gone:  # the error page reads the database too
            return await database_gone(request, gone)

    @app.exception_handler(DatabaseUnavailable)
    async def database_gone(request: Request, exc: DatabaseUnavailable) -> Response:
        """503: the database file went away under the server, or another process held its
        write lock too long; nothing was stored."""
        detail = exc.reason
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": detail}, status_code=503)
        return HTMLResponse(f"<!doctype html><meta charset='utf-8'><title>medq</title>"
                            f"<h1>Results unavailable</h1><p>{html.escape(detail)}.</p>",
                            status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each problem, without echoing the input back (a 2 MB comment came back
        whole, and a lone surrogate in it could not be encoded at all)."""
        problems = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")}
                    for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(problems)}, status_code=422)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/items", status_code=303)

    @app.get("/items", response_class=HTMLResponse, include_in_schema=False)
    def list_page(request: Request) -> HTMLResponse:
        params = dict(request.query_params)
        kwargs, page_no, errors = parse_filters(params)
        total = store.count(**count_filters(kwargs))
        items = store.items(**kwargs, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
        return page(request, "items.html", 400 if errors else 200, items=items, total=total,
                    params=params, errors=errors, page=page_no, page_size=PAGE_SIZE,
                    sorts=SORTS, query=lambda **c: query_string(params, **c))

    @app.get("/items/{item_id:int}", response_class=HTMLResponse, include_in_schema=False)
    def item_page(request: Request, item_id: int, seen: int | None = None,
                  mine: int | None = None) -> HTMLResponse:
        """The item; after a review (`mine`, posted from a page that showed reviews up to
        `seen`), who else reviewed it meanwhile: the last write still wins, but two decisions
        no longer cross in silence."""
        item = item_or_404(item_id)
        reviews = store.reviews(item_id)
        saved = next((r for r in reviews if r["id"] == mine), None)
        meanwhile = [] if saved is None or seen is None else sorted({
            r["reviewer"] for r in reviews
            if seen < r["id"] < saved["id"] and r["reviewer"] != saved["reviewer"]})
        return page(request, "item.html", item=item, reviews=reviews, slices=_slices(item),
                    changed=images.changed_since(item), meanwhile=meanwhile)

    def clamped(item: dict[str, Any], index: int | None) -> int | None:
        """A slice index within the item's slices (the scroller's ends past them)."""
        return None if index is None else min(max(index, 0), _slices(item) - 1)

    def png(item_id: int, index: int | None, side: int | None) -> Response:
        item = item_or_404(item_id)
        index = clamped(item, index)
        try:
            data = images.item_png(item, index, side)
        except MedqError as e:
            raise HTTPException(404 if isinstance(e, InputError) else 500, e.reason) from e
        return Response(data, media_type="image/png", headers=PNG_CACHE)

    @app.get("/items/{item_id:int}/image.png", include_in_schema=False)
    def image_png(item_id: int, slice: int | None = None,
                  size: int | None = Query(None, ge=16, le=2048)) -> Response:
        return png(item_id, slice, size)

    @app.get("/items/{item_id:int}/thumb.png", include_in_schema=False)
    def thumb_png(item_id: int) -> Response:
        return png(item_id, None, THUMB_SIDE)

    @app.get("/items/{item_id:int}/restored.png", include_in_schema=False)
    def restored_png(item_id: int, slice: int | None = None) -> Response:
        from medq.web.restored import restored_png as render

        item = item_or_404(item_id)
        status, body, note = render(item, clamped(item, slice))
        if status != 200:
            return JSONResponse({"detail": body}, status_code=status)
        return Response(body, media_type="image/png", headers={"X-Medq-Note": quote(note)})

    @app.post("/items/{item_id:int}/review", include_in_schema=False)
    def review_form(request: Request, item_id: int, reviewer: str = Form(""),
                    decision: str = Form(""), comment: str = Form(""),
                    seen: int | None = Form(None)) -> Response:
        item = item_or_404(item_id)
        try:
            saved = store.add_review(item_id, reviewer, decision, comment)
        except InputError as e:
            return page(request, "item.html", 400, item=item, reviews=store.reviews(item_id),
                        slices=_slices(item), error=f"Review not saved: {e.reason}")
        told = "" if seen is None else f"?seen={seen}&mine={saved['id']}"  # who else, meanwhile
        return RedirectResponse(f"/items/{item_id}{told}#reviews", status_code=303)

    @app.get("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload_page(request: Request) -> HTMLResponse:
        return page(request, "upload.html", limit_mb=upload_limit_mb)

    @app.post("/upload", include_in_schema=False)
    async def upload_form(request: Request) -> Response:
        try:
            item_id = await api.assess_upload(request)
        except HTTPException as e:
            return await run_in_threadpool(page, request, "upload.html", e.status_code,
                                           limit_mb=upload_limit_mb, error=str(e.detail))
        return RedirectResponse(f"/items/{item_id}", status_code=303)

    return app
