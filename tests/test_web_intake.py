"""Taking uploads in (web/intake.py): uploads at once, a stalled body, a full disk at the job's creation (web23)."""

from __future__ import annotations

import errno
import json
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

import anyio  # noqa: E402
from test_web_api import Server, job_count, make_stack_files, multipart  # noqa: E402
from test_web_hardening import multipart_body  # noqa: E402

from postfocus.errors import OptionError  # noqa: E402
from postfocus.web.app import create_app  # noqa: E402
from postfocus.web.upload import NO_SPACE  # noqa: E402

HEADERS = [(b"host", b"127.0.0.1:8000"), (b"x-postfocus", b"1"),
           (b"content-type", b"multipart/form-data; boundary=XyZ")]


async def _post(app, chunks: list[bytes], *, stall: bool = False, started: anyio.Event | None = None) -> dict:
    """POST /api/jobs straight to the ASGI app, the body in ``chunks``; with ``stall`` the client then sends nothing
    (for 30 s: the app must give up first). Returns the status and the JSON answer."""
    pending = list(chunks)
    answer: dict = {"body": b""}

    async def receive() -> dict:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending) or stall}
        if started is not None:
            started.set()
        await anyio.sleep(30)  # a client that sends nothing more, nor hangs up
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/jobs", "raw_path": b"/api/jobs", "root_path": "", "query_string": b"",
             "headers": HEADERS, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    await app(scope, receive, send)
    return {"status": answer["status"], "json": json.loads(answer["body"])}


def test_a_stalled_upload_is_dropped_and_uploads_at_once_are_bounded(tmp_path, caplog):
    """A body that stalled held its connection, an open file and a hidden job folder for as long as the client
    liked, and any number of them could be under way (review20). Past ``max_uploads`` an upload is a 503 at once,
    with no folder made; a body that sends nothing for ``upload_timeout`` seconds is dropped (408), its folder
    removed and its slot freed."""
    data = tmp_path / "data"
    app = create_app(data, max_uploads=1, upload_timeout=0.5)
    body = multipart_body(make_stack_files(2))
    jobs = data / "jobs"
    caplog.set_level("WARNING", logger="postfocus.web")
    results: dict = {}

    async def main() -> None:
        started = anyio.Event()

        async def stalled() -> None:
            began = time.monotonic()
            results["stalled"] = await _post(app, [body[:3000]], stall=True, started=started)
            results["took"] = time.monotonic() - began

        async with anyio.create_task_group() as tg:
            tg.start_soon(stalled)
            await started.wait()  # the first upload is under way, its folder made, and sends nothing more
            assert len(list(jobs.iterdir())) == 1
            results["second"] = await _post(app, [body])  # one upload at once: refused before any folder
            assert len(list(jobs.iterdir())) == 1
        # The slot is free again: a whole upload is read and judged (one photo is not a stack), not a 503.
        one = multipart_body(make_stack_files(1))
        results["third"] = await _post(app, [one[:len(one) // 2], one[len(one) // 2:]])

    anyio.run(main)
    assert results["second"]["status"] == 503, results
    assert "Too many uploads at once" in results["second"]["json"]["error"]
    assert results["stalled"]["status"] == 408, results
    assert "nothing arrived for 0.5 seconds" in results["stalled"]["json"]["error"]
    assert results["took"] < 5
    assert results["third"]["status"] == 400 and "at least two photos" in results["third"]["json"]["error"], results
    assert not any(jobs.iterdir())  # nothing kept of any of them
    assert any("upload dropped" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)


def test_the_slot_of_an_upload_that_was_taken_is_freed(tmp_path):
    """An upload taken (201) frees its slot too: with ``max_uploads=1`` two uploads one after another are both
    taken, each through the whole path."""
    srv = Server(tmp_path / "data", max_uploads=1)
    try:
        for _ in range(2):
            r = srv.client.post("/api/jobs", files=multipart(make_stack_files(2)))
            assert r.status_code == 201, r.text
    finally:
        srv.stop()


@pytest.mark.parametrize("where", ["creation", "job.json"])
def test_a_full_disk_at_the_jobs_creation_or_its_job_json_is_a_507_keeping_nothing(tmp_path, monkeypatch, caplog,
                                                                                   where):
    """A disk full when the job folder was made (an upload without Content-Length skips the free-space check) or
    when ``job.json`` was written after the upload was a 500 "could not read or write this job's files" with a
    traceback in the log, and the second left the hidden folder until the next start (review20). Both are the
    upload's own 507, and no folder is left."""
    from postfocus.web import store as store_module

    real = store_module.atomic_write_json

    def full(path, value, *args, **kwargs):
        if where == "creation" or value.get("state") == "queued":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, value, *args, **kwargs)

    srv = Server(tmp_path / "data")
    try:
        monkeypatch.setattr(store_module, "atomic_write_json", full)
        caplog.set_level("WARNING", logger="postfocus.web")
        body = multipart_body(make_stack_files(2))
        r = srv.client.post("/api/jobs", content=iter([body]),  # sent chunked: no Content-Length
                            headers={"content-type": "multipart/form-data; boundary=XyZ"})
        assert r.status_code == 507, r.text
        assert r.json()["error"] == NO_SPACE
        assert job_count(srv) == 0
        assert not any(record.exc_info for record in caplog.records)
    finally:
        srv.stop()


@pytest.mark.parametrize("options", [{"max_uploads": 0}, {"max_uploads": 2.5}, {"max_uploads": True},
                                     {"upload_timeout": 0}, {"upload_timeout": float("nan")},
                                     {"upload_timeout": "60"}])
def test_upload_limits_that_mean_nothing_are_refused_by_name(tmp_path, options):
    with pytest.raises(OptionError, match=next(iter(options))):
        create_app(tmp_path / "data", **options)
