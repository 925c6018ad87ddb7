"""Access control and safety headers of the review app.

Without a token every route is open (the server binds to 127.0.0.1 unless told otherwise). With
a token, `/api/...` needs `Authorization: Bearer <token>`; the HTML pages accept the token once
as `?token=...`, answer with a redirect to the same address without it and keep it in an
HttpOnly, SameSite=Strict cookie. The API documentation (`/docs`, `/openapi.json`) stays open: it
holds no data. Every response gets a content security policy that allows nothing from outside.

Two checks guard a server without a token from the web pages its user opens (`same_site`): a
request whose Host names another site is refused (a site that rebinds its name to 127.0.0.1 could
read and review otherwise), and so is a POST whose Origin or Referer names another site, or the
`null` origin of a page that hides its own (a page elsewhere could submit the review form in the
reviewer's name). A client that states neither (curl, a script) is not a browser page: it passes.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

COOKIE = "medq_token"
"""Name of the cookie that keeps the token for the HTML pages."""

OPEN_PREFIXES = ("/docs", "/openapi.json", "/static-offline-docs", "/redoc")
"""Paths served without a token."""

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                               "style-src 'self' 'unsafe-inline'; "
                               "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer made the pages' own POSTs Origin: null
}

Next = Callable[[Request], Awaitable[Response]]


def same(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the server's."""
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _denied_page() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><meta charset='utf-8'><link rel='icon' href='data:,'>"
        "<title>medq: token needed</title><h1>This medq server needs a token</h1>"
        "<p>Open the address you were given, ending in <code>?token=...</code>.</p>",
        status_code=401)


def token_gate(token: str | None) -> Callable[[Request, Next], Awaitable[Response]]:
    """HTTP middleware enforcing the bearer token (API) or token cookie (pages)."""

    async def gate(request: Request, call_next: Next) -> Response:
        path = request.url.path
        if token is None or path.startswith(OPEN_PREFIXES):
            return await call_next(request)
        if path.startswith("/api/"):
            if same(bearer(request), token):
                return await call_next(request)
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        given = request.query_params.get("token")
        if given is not None and request.method == "GET":
            if not same(given, token):
                return _denied_page()
            query = urlencode([(k, v) for k, v in request.query_params.multi_items()
                               if k != "token"])
            target = path + (f"?{query}" if query else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return response
        if same(request.cookies.get(COOKIE), token):
            return await call_next(request)
        return _denied_page()

    return gate


LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
"""Host names that reach a server bound to a local address."""

WILDCARDS = ("0.0.0.0", "::", "")
"""Bind addresses that listen on every interface (then any Host name may be right)."""


def _host_name(netloc: str) -> str:
    """The host of `host[:port]` or `[v6]:port`, lower case, without the port."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def same_site(bound: str | None, token: str | None
              ) -> Callable[[Request, Next], Awaitable[Response]]:
    """HTTP middleware: 421 for a Host other than the bound address or a local name (without a
    token, on a specific address); 403 for a POST whose Origin or Referer is another site."""
    check_host = not token and bound is not None and bound.lower() not in WILDCARDS
    allowed = {*LOCAL_NAMES, (bound or "").lower().strip("[]")}

    async def gate(request: Request, call_next: Next) -> Response:
        host = request.headers.get("host", "")
        if check_host and _host_name(host) not in allowed:
            return JSONResponse({"detail": "this server answers to its own address only"},
                                status_code=421)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            source = request.headers.get("origin") or request.headers.get("referer")
            if source and (source == "null" or urlsplit(source).netloc.lower() != host.lower()):
                return JSONResponse({"detail": "a request from another site is refused"},
                                    status_code=403)
        return await call_next(request)

    return gate


LONGEST_ID = 18
"""Digits an id in a path may have (it fits 64 bits): a longer one is no id of this database."""

LONGEST_QUERY_NUMBER = 1000
"""Digits a number in a query may have (Python refuses to read one of over 4300: a 500)."""


async def bounded_numbers(request: Request, call_next: Next) -> Response:
    """HTTP middleware: 404 for a path holding a number of more than `LONGEST_ID` digits, 400
    for a query holding one of more than `LONGEST_QUERY_NUMBER` (JSON under /api/, else plain
    text)."""
    def too_long(text: str, digits: int) -> bool:
        return len(text) > digits and text.isascii() and text.lstrip("+-").isdigit()

    path = request.url.path
    status = 404 if any(too_long(s, LONGEST_ID) for s in path.split("/")) else (
        400 if any(too_long(v, LONGEST_QUERY_NUMBER)
                   for _, v in request.query_params.multi_items()) else 0)
    if not status:
        return await call_next(request)
    detail = "no such item" if status == 404 else "a number in the query is out of range"
    if path.startswith("/api/"):
        return JSONResponse({"detail": detail}, status_code=status)
    return Response(detail, status_code=status, media_type="text/plain")


async def safety_headers(request: Request, call_next: Next) -> Response:
    """HTTP middleware adding the content security policy and friends to every response."""
    response = await call_next(request)
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


def redacted(text: str) -> str:
    """`text` with the value of every `token=` query parameter written as `***`."""
    return _TOKEN_IN_QUERY.sub(r"\1***", text)


class TokenRedaction(logging.Filter):
    """A logging filter writing the `?token=` of a logged request line as `***` (uvicorn's
    access log printed the token a reviewer opened the app with)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's arguments and message; keep the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        return True

