"""``postfocus serve``: the web app, for people who would rather not use a terminal."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import webbrowser
from pathlib import Path

import click

from postfocus.cli.common import err_console, main, root_threads
from postfocus.cli.output import current_run, json_flag
from postfocus.errors import PostfocusError

__all__ = ["default_data_dir", "serve_command"]

LOCAL = ("127.0.0.1", "localhost", "::1")
DEFAULT_MAX_UPLOADS = 4  # web.intake's, not imported: the web extra may be missing (a test keeps them equal)
DEFAULT_UPLOAD_TIMEOUT = 60.0


def default_data_dir() -> Path:
    """``$POSTFOCUS_DATA``, else ``$XDG_DATA_HOME/postfocus/web``, else ``~/.local/share/postfocus/web``."""
    if os.environ.get("POSTFOCUS_DATA"):
        return Path(os.environ["POSTFOCUS_DATA"])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "postfocus" / "web"


def _listening_port(server, port: int) -> int:  # noqa: ANN001 (uvicorn.Server)
    """The port the server listens on (the one the system chose for ``--port 0``)."""
    try:
        return int(server.servers[0].sockets[0].getsockname()[1])
    except (AttributeError, IndexError, OSError, TypeError):
        return port


def _when_started(server, url: str, data_dir: Path, open_browser: bool,  # noqa: ANN001 (uvicorn.Server)
                  as_json: bool = False) -> None:
    """Say where the app runs once it listens (with --json, also one JSON object on stdout); open a browser on it."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    head, _, port = url.rstrip("/").rpartition(":")
    url = f"{head}:{_listening_port(server, int(port))}/"
    err_console.print(f"postfocus is running at [bold]{url}[/]  (data: {data_dir}; press Ctrl+C to stop)",
                      soft_wrap=True)
    if as_json:
        click.echo(json.dumps({"command": "serve", "ok": True, "url": url, "data_dir": str(data_dir)}))
        sys.stdout.flush()
    if open_browser:
        try:
            webbrowser.open(url)
        except Exception:  # noqa: BLE001 - no browser is not an error: the address is printed
            pass


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default is this computer only.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on; 0 picks a free one (--json says which).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Folder for uploads and results (default: ~/.local/share/postfocus/web).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser window.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=2048, show_default=True,
              help="Largest upload accepted, in MB.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Stacks processed at the same time.")
@click.option("--max-uploads", type=click.IntRange(min=1), default=DEFAULT_MAX_UPLOADS, show_default=True,
              help="Uploads received at the same time; one more is refused (busy) until one ends.")
@click.option("--upload-timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_UPLOAD_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="Seconds an upload may send nothing before it is dropped (and its folder removed).")
@json_flag("Once it listens, print one JSON object on stdout: its url and data folder.")
def serve_command(host, port, data_dir, no_browser, max_upload_mb, workers, max_uploads, upload_timeout):
    """Open postfocus in a browser window: drop photos or a video, then refocus, merge and share.

    Results are kept in the data folder and listed again the next time. With
    --json, one JSON object on stdout says where it listens (--port 0: a free port).
    The app's own renders take 'postfocus --threads N serve' threads each (default:
    the cores divided between the --workers and the app).
    """
    try:
        import uvicorn

        from postfocus.web.app import LOCAL_HOSTS, create_app
        from postfocus.web.store import Lock
    except ImportError as exc:
        raise PostfocusError(
            f"the web app needs the 'web' extra ({exc.name} is missing): pip install 'postfocus[web]'"
        ) from None
    data_dir = (data_dir or default_data_dir()).expanduser()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PostfocusError(f"{data_dir}: cannot create the data folder ({exc.strerror})") from None
    local = host in LOCAL
    allowed = LOCAL_HOSTS if local else None
    if not local:
        err_console.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this computer "
                          "can upload and see results", soft_wrap=True)
    lock = Lock(data_dir.resolve() / "server.lock")
    lock.acquire()  # fails with a clear message when another server uses the folder
    lock.release()
    app = create_app(data_dir, max_upload_mb=max_upload_mb, workers=workers, allowed_hosts=allowed,
                     threads=root_threads(click.get_current_context()),  # (None: web.taps.app_threads)
                     max_uploads=max_uploads, upload_timeout=upload_timeout)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
    threading.Thread(target=_when_started, args=(server, url, data_dir, not no_browser, current_run().json),
                     daemon=True).start()
    try:
        server.run()
    except SystemExit:
        if not server.started:
            raise PostfocusError(f"could not start the server on {host}:{port} (see above; is the port "
                                 "in use? try another --port)") from None
        raise
    if not server.started:
        raise PostfocusError(f"could not start the server on {host}:{port} (see above)")
