"""`medq serve`: the review app (FastAPI + uvicorn) over a QC results database."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from medq.cli.common import Outcome, app, err
from medq.cli.qc import DB_OPTION

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_listen(host: str, port: int) -> None:
    """InvalidParameter naming `host:port` unless a server can listen there now (each address
    the host resolves to is bound, as uvicorn will, and released at once)."""
    import errno
    import os
    import socket

    from medq.errors import InvalidParameter

    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
            with socket.socket(family, kind, proto) as sock:
                if os.name != "nt":  # on Windows it would let the bind pass a listener
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise InvalidParameter("the port is in use (another server?); choose another "
                                   "--port", where) from e
        raise InvalidParameter(f"cannot listen on this address ({e.strerror or e})",
                               where) from e


@app.command()
def serve(
    db: str = DB_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (local only by "
                                                         "default)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    token: str | None = typer.Option(None, "--token", envvar="MEDQ_TOKEN",
                                     help="Require this bearer token (API) or ?token= once "
                                          "(pages). Also read from $MEDQ_TOKEN."),
    upload_limit_mb: float = typer.Option(200.0, "--upload-limit-mb", min=0.001,
                                          help="Largest upload accepted, in MB."),
    uploads_dir: Path | None = typer.Option(None, "--uploads-dir",
                                            help="Where uploads are kept (default: "
                                                 "medq-uploads/ beside a SQLite database)."),
    model: str = typer.Option("mediqa-s", "--model", "-m", help="Model that assesses uploads."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the review app: browse, view and review QC results, assess uploads, JSON API."""
    from medq.web.app import create_app

    outcome = Outcome()
    web_app = outcome.run(db, lambda: create_app(db, token=token,
                                                 upload_limit_mb=upload_limit_mb,
                                                 uploads_dir=uploads_dir, model=model,
                                                 host=host))
    if isinstance(web_app, BaseException) or isinstance(
            outcome.run(None, lambda: check_listen(host, port)), BaseException):
        outcome.exit()
    import uvicorn

    if host not in LOCAL_HOSTS and not token:
        err.print(f"medq: warning: serving on {host} without --token: anyone who can reach "
                  "this address can read and review the results", markup=False)
    from medq.qc.database import is_snapshot

    store = web_app.state.store
    if store.read_only and is_snapshot(store.url):
        err.print(f"medq: note: {store.display_url}: read-only for this user and no run has it "
                  "open, so the app shows it as it is now; restart the app to see later runs "
                  "and reviews", markup=False, highlight=False)
    shown = f"[{host}]" if ":" in host else host
    hint = " (open it once with ?token=<your token>)" if token else ""
    err.print(f"medq review app for {web_app.state.store.display_url} at "
              f"http://{shown}:{port}/{hint}; API docs at /docs", markup=False,
              highlight=False)
    from medq.web.security import TokenRedaction

    logging.getLogger("uvicorn.access").addFilter(TokenRedaction())  # no token in the log
    uvicorn.run(web_app, host=host, port=port, log_level=log_level.lower())
