"""``postfocus serve`` under attack and under faults (issue 17, the web app's part).

Each test is a case that once failed:

* changes from other web sites: a request without ``X-Postfocus: 1``, with
  ``Origin: null`` or a cross-site ``Sec-Fetch-Site``, and, in real Chromium, a
  sandboxed frame on another site that POSTs an upload with a no-cors fetch;
* a worker process killed while two jobs run: only its job is affected, and it
  is processed once more (a second death fails it with a message);
* the server killed outright: its workers die with it, and the next server
  marks the job interrupted and can retry it;
* an upload cut off before its closing boundary, and a client that disconnects
  in the middle of one;
* numbers that are not finite, and JSON bodies too large or nested too deep.

The API cases run against Starlette's TestClient (``test_web_api.Server``);
the cases about processes and connections against a real ``postfocus serve``
(``test_web_ui.ServeProcess``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from test_web_api import (BASE, CHANGE, Server, TestClient, UploadError, UploadReceiver, job_count, make_stack_files,
                          multipart, wait_for)
from test_web_ui import ServeProcess

from postfocus.web.store import INTERRUPTED_MESSAGE

# A stack that takes a worker a few seconds: time enough to kill it while it runs.
SLOW = {"n": 12, "size": (600, 800)}


@pytest.fixture(scope="module")
def slow_files() -> list[tuple[str, bytes]]:
    return make_stack_files(**SLOW)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A TestClient server (sending X-Postfocus: 1) that has processed one small stack."""
    srv = Server(tmp_path_factory.mktemp("web_hardening") / "data")
    r = srv.client.post("/api/jobs", files=multipart(make_stack_files()))
    assert r.status_code == 201, r.text
    srv.good = wait_for(srv.client, r.json()["id"])
    assert srv.good["state"] == "done", srv.good
    yield srv
    srv.stop()


def bare_client(server) -> TestClient:
    """A client of the same app that sends no X-Postfocus header (lifespan not run again)."""
    return TestClient(server.app, base_url=BASE)


# ------------------------------------------------------------- other sites


def test_change_without_the_header_is_refused(server):
    c, job_id = bare_client(server), server.good["id"]
    n = job_count(server)
    r = c.post("/api/jobs", files=multipart(make_stack_files(2)))
    assert r.status_code == 403
    assert "X-Postfocus: 1" in r.json()["error"]
    assert job_count(server) == n
    for method, url in (("DELETE", f"/api/jobs/{job_id}"), ("POST", f"/api/jobs/{job_id}/retry"),
                        ("POST", f"/api/jobs/{job_id}/tap"), ("PUT", "/api/jobs"), ("PATCH", "/api/jobs")):
        r = c.request(method, url, json={"x": 1, "y": 1})
        assert r.status_code == 403, (method, url)
        assert "X-Postfocus" in r.json()["error"]
    r = c.post(f"/api/jobs/{job_id}/tap", json={"x": 1, "y": 1}, headers={"X-Postfocus": "yes"})
    assert r.status_code == 403
    assert server.client.get(f"/api/jobs/{job_id}").json()["state"] == "done"  # not deleted
    # Reading needs no header.
    assert c.get(f"/api/jobs/{job_id}").status_code == 200


def test_origin_null_and_cross_site_fetches_are_refused(server):
    c, job_id = server.client, server.good["id"]
    n = job_count(server)
    for headers in ({"origin": "null"}, {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
                    {"origin": "http://127.0.0.1:8001"}):
        r = c.post("/api/jobs", files=multipart(make_stack_files(2)), headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"] == "Requests from other web sites are refused."
        assert c.delete(f"/api/jobs/{job_id}", headers=headers).status_code == 403
    assert job_count(server) == n
    # The page's own requests pass.
    same = {"origin": BASE, "sec-fetch-site": "same-origin"}
    r = c.post(f"/api/jobs/{job_id}/tap", json={"x": 10, "y": 10}, headers=same)
    assert r.status_code == 200, r.text


def test_cors_preflight_is_never_granted(server):
    r = server.client.options("/api/jobs", headers={
        "origin": "http://evil.example", "access-control-request-method": "POST",
        "access-control-request-headers": "x-postfocus"})
    assert not any(k.lower().startswith("access-control-allow") for k in r.headers)


ATTACK_FRAME = """<!doctype html><script>
const target = %(target)s;
const photos = %(photos)s.map(b => Uint8Array.from(atob(b), c => c.charCodeAt(0)));
function form() {
  const f = new FormData();
  photos.forEach((p, i) => f.append("files", new Blob([p], {type: "image/jpeg"}), "IMG_" + i + ".jpg"));
  return f;
}
(async () => {
  const out = {};
  try { await fetch(target, {method: "POST", mode: "no-cors", body: form()}); out.nocors = "sent"; }
  catch (e) { out.nocors = "failed: " + e; }
  try { await fetch(target, {method: "POST", headers: {"X-Postfocus": "1"}, body: form()}); out.cors = "sent"; }
  catch (e) { out.cors = "failed: " + e; }
  parent.postMessage(out, "*");
})();
</script>"""

ATTACK_PAGE = """<!doctype html><script>
window.addEventListener("message", e => { window.attack = e.data; });
</script><iframe sandbox="allow-scripts" src="/frame.html"></iframe>"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@contextlib.contextmanager
def other_site(folder: Path):
    """Another web site on this computer (another origin): serves ``folder`` on a free port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, name="other-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_sandboxed_frame_on_another_site_cannot_start_a_job(browser, tmp_path):  # noqa: F811
    """The attack that once worked: a no-cors POST from a sandboxed frame (Origin: null)."""
    data, site = tmp_path / "data", tmp_path / "site"
    server = ServeProcess(data, tmp_path / "server.log")
    try:
        photos = [base64.b64encode(d).decode() for _, d in make_stack_files(2)]
        site.mkdir()
        (site / "attack.html").write_text(ATTACK_PAGE)
        (site / "frame.html").write_text(
            ATTACK_FRAME % {"target": json.dumps(server.url + "/api/jobs"), "photos": json.dumps(photos)})
        with other_site(site) as url:
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(url + "/attack.html")
            page.wait_for_function("window.attack", timeout=20000)
            result = page.evaluate("window.attack")
            ctx.close()
        assert result["nocors"] == "sent", result  # it reached the server, which refused it
        assert result["cors"].startswith("failed"), result  # the header needs a preflight, never granted
        assert httpx.get(server.url + "/api/jobs").json()["jobs"] == []
        assert not any((data / "jobs").iterdir())
    finally:
        server.stop()


# ------------------------------------------------------------ dying workers


def running(client: TestClient, queue, job_id: str, attempt: int = 1, timeout: float = 60) -> int:
    """Wait until ``job_id`` runs its ``attempt``-th time; returns its worker's pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        pid = queue.worker_pid(job_id)
        if job["state"] == "running" and job["attempts"] == attempt and pid:
            return pid
        assert job["state"] not in ("done", "failed"), f"the job ended before it could be stopped: {job}"
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never ran attempt {attempt}")


def test_killed_worker_affects_only_its_job_which_runs_again(server, slow_files):
    c, queue = server.client, server.app.state.queue
    first = c.post("/api/jobs", files=multipart(slow_files)).json()["id"]
    second = c.post("/api/jobs", files=multipart(slow_files)).json()["id"]
    victim = running(c, queue, first)
    survivor = running(c, queue, second)
    os.kill(victim, signal.SIGKILL)
    done = wait_for(c, second, timeout=120)
    assert done["state"] == "done", done
    assert done["attempts"] == 1  # never disturbed
    again = wait_for(c, first, timeout=120)
    assert again["state"] == "done", again
    assert again["attempts"] == 2 and not again["error"]
    assert survivor != victim


def test_a_second_death_fails_the_job_with_a_message(server, slow_files):
    c, queue = server.client, server.app.state.queue
    job_id = c.post("/api/jobs", files=multipart(slow_files)).json()["id"]
    os.kill(running(c, queue, job_id), signal.SIGKILL)
    os.kill(running(c, queue, job_id, attempt=2), signal.SIGKILL)
    job = wait_for(c, job_id)
    assert job["state"] == "failed"
    assert "worker process stopped unexpectedly twice" in job["error"] and "SIGKILL" in job["error"]
    assert not (server.data / "jobs" / job_id / "work").exists()
    # Retry starts afresh (two more lives) and works.
    assert c.post(f"/api/jobs/{job_id}/retry").status_code == 200
    assert wait_for(c, job_id, timeout=120)["state"] == "done"


# ------------------------------------------------------------- dying server


def process_state(pid: int) -> str | None:
    """The state letter of a process (R, S, Z ...) from /proc, None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def children(pid: int) -> dict[int, str]:
    """Child processes of ``pid``: {pid: command line}."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_server_killed_outright_takes_its_workers_and_the_job_is_interrupted(tmp_path, slow_files):
    data = tmp_path / "data"
    server = ServeProcess(data, tmp_path / "server1.log")
    workers: dict[int, str] = {}
    try:
        r = httpx.post(server.url + "/api/jobs", files=multipart(slow_files), headers=CHANGE, timeout=30)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while not any("spawn_main" in cmd for cmd in workers.values()):
            assert time.monotonic() < deadline, "no worker process started"
            job = httpx.get(f"{server.url}/api/jobs/{job_id}").json()
            assert job["state"] in ("queued", "running"), job
            workers = children(server.proc.pid) if job["state"] == "running" else {}
            time.sleep(0.02)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while any(process_state(pid) not in (None, "Z") for pid in workers):
            assert time.monotonic() < deadline, f"left running after the server died: {workers}"
            time.sleep(0.05)
    finally:
        server.stop()
        for pid in workers:  # only if the test failed
            if process_state(pid) not in (None, "Z"):
                os.kill(pid, signal.SIGKILL)
    server = ServeProcess(data, tmp_path / "server2.log")
    try:
        job = httpx.get(f"{server.url}/api/jobs/{job_id}").json()
        assert job["state"] == "failed" and job["interrupted"], job
        assert job["error"] == INTERRUPTED_MESSAGE
        assert not (data / "jobs" / job_id / "work").exists()
        assert httpx.post(f"{server.url}/api/jobs/{job_id}/retry", headers=CHANGE).status_code == 200
        deadline = time.monotonic() + 60
        while (job := httpx.get(f"{server.url}/api/jobs/{job_id}").json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["state"] == "done" and job["attempts"] == 2, job
    finally:
        server.stop()


# ------------------------------------------------------------ cut uploads


def multipart_body(files: list[tuple[str, bytes]], boundary: str = "XyZ") -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
             f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n" for name, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_upload_cut_off_before_its_end_is_refused(server):
    c, files = server.client, make_stack_files(3)
    n = job_count(server)
    whole = multipart_body(files)
    headers = {"content-type": "multipart/form-data; boundary=XyZ"}
    assert whole.endswith(b"--XyZ--\r\n")
    for cut in (whole[:-len(b"--XyZ--\r\n")],  # every file complete, no closing boundary
                whole[:len(whole) - len(files[-1][1]) // 2]):  # in the middle of the last file
        r = c.post("/api/jobs", content=cut, headers=headers)
        assert r.status_code == 400, r.text
        assert "cut off" in r.json()["error"]
        assert job_count(server) == n  # no job folder left
    r = c.post("/api/jobs", content=whole, headers=headers)
    assert r.status_code == 201, r.text
    assert wait_for(c, r.json()["id"])["state"] == "done"


def test_a_boundary_too_long_for_the_parser_is_a_400(server):
    """A multipart boundary over python-multipart's 256 bytes raised FormParserError out of the parser's
    constructor: a 500 with a traceback in the server's log, and an empty job folder until the next start."""
    n = job_count(server)
    r = server.client.post("/api/jobs", content=b"x", headers={"content-type": "multipart/form-data; boundary=" + "z" * 300})
    assert r.status_code == 400 and "could not be read" in r.json()["error"], r.text
    assert job_count(server) == n


def test_client_gone_mid_upload_logs_one_line_and_keeps_nothing(tmp_path):
    data, log = tmp_path / "data", tmp_path / "server.log"
    server = ServeProcess(data, log)
    try:
        start = multipart_body(make_stack_files(3))[:150_000]
        request = (f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Postfocus: 1\r\n"
                   f"Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {len(start) + 500_000}\r\n"
                   "\r\n").encode()
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(request + start)
            deadline = time.monotonic() + 10
            while not any((data / "jobs").iterdir()):  # the upload has begun
                assert time.monotonic() < deadline
                time.sleep(0.02)
        deadline = time.monotonic() + 10
        while "upload cancelled" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert not any((data / "jobs").iterdir())
        assert httpx.get(server.url + "/api/info").status_code == 200
    finally:
        server.stop()
    text = log.read_text()
    assert "Traceback" not in text and "Exception" not in text, text
    lines = [line for line in text.splitlines() if "upload cancelled" in line]
    assert len(lines) == 1 and "nothing was kept" in lines[0], text


# ------------------------------------------------------------ odd numbers


def test_numbers_that_are_not_finite_get_400(server):
    c, base = server.client, f"/api/jobs/{server.good['id']}"
    for query in ("merge.jpg?start=nan&end=2", "merge.jpg?start=0&end=inf", "merge.jpg?start=-inf&end=1",
                  "pop.jpg?position=nan", "pop.jpg?position=1&tolerance=inf", "pop.jpg?x=nan&y=3",
                  "aperture.jpg?x=10&y=10&f=nan", "aperture.jpg?x=inf&y=10&f=2"):
        r = c.get(f"{base}/{query}")
        assert r.status_code == 400, (query, r.text)
        assert "must be a number" in r.json()["error"], query
    r = c.post(f"{base}/tap", content=b'{"x": NaN, "y": 1}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "must be a number" in r.json()["error"]


def test_a_tap_point_is_json_numbers_as_the_python_tap_takes(server):
    """``{"x": true}`` and ``{"x": "10"}`` were taken as 1 and 10 (``float()``), which ``tap()`` refuses; a point
    is JSON numbers (review13 noticed)."""
    c, base = server.client, f"/api/jobs/{server.good['id']}"
    for body in ({"x": True, "y": 3}, {"x": "10", "y": 3}, {"x": 10, "y": [3]}, {"x": 10, "y": None}):
        r = c.post(f"{base}/tap", json=body)
        assert r.status_code == 400 and "Send the point as JSON" in r.json()["error"], (body, r.text)
    assert c.post(f"{base}/tap", json={"x": 10, "y": 3.5}).status_code == 200


def test_numbers_out_of_range_are_named_as_used(server):
    """f=0 renders at f/1 (the app's widest): the download was named "f0.jpg", f=1e-300 "f1e-300.jpg"; a point at
    x=1e300 answered with its 301 digits."""
    c, base = server.client, f"/api/jobs/{server.good['id']}"
    for f, name in (("0", "f1.jpg"), ("1e-300", "f1.jpg"), ("-3", "f1.jpg"), ("1e300", "f64.jpg"), ("2.8", "f2.8.jpg")):
        r = c.get(f"{base}/aperture.jpg?x=10&y=10&f={f}&download=1")
        assert r.status_code == 200, r.text
        assert f"-{name}" in r.headers["content-disposition"], (f, r.headers["content-disposition"])
    for query in ("aperture.jpg?x=1e300&y=10&f=2", "pop.jpg?x=5&y=-1e300"):
        r = c.get(f"{base}/{query}")
        assert r.status_code == 400 and "outside the image" in r.json()["error"] and len(r.text) < 120, r.text
    # a range merge far past the stack said its 301 digits back too (review13)
    r = c.get(f"{base}/merge.jpg?start=1e300&end=2e300")
    assert r.status_code == 400 and r.json()["error"].startswith("no aligned frames between 1e+300 and 2e+300 (frames kept: 0-")
    assert c.get(f"{base}/merge.jpg?start=50&end=60").json()["error"].startswith("no aligned frames between 50 and 60 ")



def test_a_frame_number_too_large_is_not_said_back_digit_by_digit(server):
    """``/frames/999...9`` (400 digits) answered 404 with all 400 digits in its message."""
    c, base = server.client, f"/api/jobs/{server.good['id']}"
    r = c.get(f"{base}/frames/{'9' * 400}")
    assert r.status_code == 404 and r.json()["error"] == "Frame 999999... (400 digits) is not in this stack.", r.text
    assert c.get(f"{base}/frames/99").json()["error"] == "Frame 99 is not in this stack."


def test_json_bodies_are_limited_and_parsed_defensively(server):
    c, url = server.client, f"/api/jobs/{server.good['id']}/tap"
    r = c.post(url, content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]
    r = c.post(url, content=b"[" * 60_000, headers={"content-type": "application/json"})  # under 64 KB, too deep
    assert r.status_code == 400 and "JSON" in r.json()["error"]

    def chunked():  # no Content-Length: counted as it arrives
        yield b'{"x": 1, "y": 1, "pad": "'
        for _ in range(100):
            yield b"a" * 1024
        yield b'"}'

    r = c.post(url, content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = c.post(url, json={"x": 10, "y": 10, "pad": "a" * 1000})
    assert r.status_code == 200, r.text


def test_integers_too_long_for_a_float_or_a_string_are_a_4xx_not_a_500(server):
    """A tap at ``{"x": 999...9}`` (400 digits: OverflowError from float()), an edit list with a radius or a point
    of 400 digits (OverflowError in its check), and ``/frames/999...9`` of more than 4300 digits (the route's int
    convertor raised Python's "Exceeds the limit" ValueError) were 500s with a traceback in the log (review13)."""
    c = TestClient(server.app, base_url=BASE, headers=CHANGE, raise_server_exceptions=False)  # (a 500 as a 500)
    base = f"/api/jobs/{server.good['id']}"
    r = c.post(f"{base}/tap", content='{"x": ' + "9" * 400 + ', "y": 5}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "Send the point as JSON" in r.json()["error"], r.text
    for stroke in ({"radius": int("9" * 400), "points": [[1, 1]]}, {"radius": 5, "points": [[int("9" * 400), 1]]},
                   {"radius": 5, "points": [[1, 1]], "opacity": int("9" * 400)}):
        edits = {"edits": [{"kind": "stroke", "source": 0, **stroke}]}
        r = c.put(f"{base}/edits", content=json.dumps(edits), headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"].startswith("These edits cannot be kept: edit 0: "), r.text
        assert "(400 characters) must be a finite number" in r.json()["error"], r.text
    for digits in (4301, 5000):
        r = c.get(f"{base}/frames/{'9' * digits}")
        assert r.status_code == 404 and r.json()["error"] == f"Frame 999999... ({digits} digits) is not in this stack."
    assert c.get(f"{base}/frames/0").status_code == 200
    for bad in ("-1", "1.5", "%D9%A1", "0x1"):  # (the int route matched none of these: still 404s)
        assert c.get(f"{base}/frames/{bad}").status_code == 404, bad


def test_a_host_or_origin_no_url_parser_can_read_is_refused_not_a_500():
    """``Host: [`` or ``Origin: http://[`` (an IPv6 address never closed) made the guard's ``urlsplit`` raise
    "Invalid IPv6 URL": a 500 and a traceback in the server's log for any client that sent one (review20). Each is
    refused as any other host or origin; the IPv6 loopback, written as a browser writes it, is still served."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from postfocus.web.guard import GuardMiddleware

    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"), methods=["GET", "POST"])])
    app.add_middleware(GuardMiddleware, allowed_hosts=("127.0.0.1", "localhost", "::1"))
    c = TestClient(app, base_url=BASE)
    for host in ("[", "[::1", "localhost]"):
        r = c.get("/", headers={"host": host})
        assert r.status_code == 400 and "answers only to" in r.json()["error"], host
    for origin in ("http://[", "http://[::1", "http://]"):
        r = c.post("/", headers={"origin": origin, **CHANGE})
        assert r.status_code == 403 and r.json()["error"] == "Requests from other web sites are refused.", origin
    assert c.get("/", headers={"host": "[::1]:8000"}).text == "ok"
    assert c.post("/", headers={"host": "[::1]:8000", "origin": "http://[::1]:8000", **CHANGE}).text == "ok"


def test_a_disk_that_fills_during_an_upload_is_a_507_and_keeps_nothing(tmp_path, monkeypatch, caplog):
    """The free-space check reads Content-Length once, before the upload: a disk filled meanwhile (two uploads at
    once, another program) or an upload sent without a length met ``OSError(ENOSPC)`` writing a photo, and the
    answer was a 500 "could not read or write this job's files; see its log" with a traceback there, as for a
    fault of the server (review20). It is a 507 saying to free disk space, like the check before; nothing is kept."""
    import errno
    import io as _io

    from postfocus.web import upload

    real_open = open

    class Full(_io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def opened(path, mode="r", *args, **kwargs):
        return Full(path, "xb") if mode == "xb" else real_open(path, mode, *args, **kwargs)

    srv = Server(tmp_path / "data")
    try:
        monkeypatch.setattr(upload, "open", opened, raising=False)
        caplog.set_level("WARNING", logger="postfocus.web")
        r = srv.client.post("/api/jobs", files=multipart(make_stack_files(2)))
        assert r.status_code == 507, r.text
        assert "free disk space" in r.json()["error"]
        assert job_count(srv) == 0 and not any((tmp_path / "data" / "jobs").iterdir())
        assert not any(record.exc_info for record in caplog.records)
    finally:
        srv.stop()


def test_an_upload_of_thousands_of_form_fields_is_refused_not_held_in_memory(tmp_path):
    """Each text field of an upload (up to 1 KB) was kept in the server's memory under its name, with no count
    limit: 21 MB of 20,000 fields held 22 MB, so a body of the default 2 GB limit held about 2 GB in the server
    process while files go to disk (review20). Past :data:`MAX_FIELDS` distinct names the upload is refused; a
    field sent again under one name replaces itself and is not counted twice."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from postfocus.web.store import Store
    from postfocus.web.upload import MAX_FIELDS

    job = Store(tmp_path / "data").create()

    def body(names):
        parts = [b'--XyZ\r\nContent-Disposition: form-data; name="%s"\r\n\r\n' % n.encode() + b"v" * 1000 + b"\r\n"
                 for n in names]
        return b"".join(parts) + b"--XyZ--\r\n"

    async def chunks(data):
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    def receive(names):  # (on a thread of its own: the browser fixture's event loop may run on this one)
        receiver = UploadReceiver(job, 2**40, "big")
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, receiver.receive("multipart/form-data; boundary=XyZ", chunks(body(names)))).result()
        return receiver

    with pytest.raises(UploadError) as refused:
        receive([f"f{i}" for i in range(20000)])
    assert refused.value.status == 400 and f"at most {MAX_FIELDS}" in refused.value.message
    assert receive(["title"] * 2000 + ["note"]).fields.keys() == {"title", "note"}


def test_a_file_sent_without_a_file_name_is_said_to_need_one(tmp_path):
    """A part of the files' field with no ``filename`` (a client that dropped an empty name) is a text field to
    multipart; its bytes go over the text limit, and the answer says what is missing (was "Form field 'files' is
    too long.", fixes25's probe)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from postfocus.web.store import Store

    job = Store(tmp_path / "data").create()
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8  # (a JPEG's first bytes, then 2 KB: over the text limit)
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="files"\r\nContent-Type: image/jpeg\r\n\r\n' + photo
            + b"\r\n--XyZ--\r\n")

    async def chunks():
        yield body

    receiver = UploadReceiver(job, 2**40, "big")
    with pytest.raises(UploadError) as refused, ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, receiver.receive("multipart/form-data; boundary=XyZ", chunks())).result()
    assert refused.value.status == 400 and "\n" not in refused.value.message
    assert refused.value.message.startswith("Form field 'files' is too long for a text field")
    assert "must be sent with its file name" in refused.value.message
    assert not receiver.files


def _raw_like(kind: str, seed: int) -> bytes:
    """A TIFF laid out as cameras write RAW files: IFD 0 a 160x120 preview (NewSubfileType 1; a DNG also has
    DNGVersion), the sensor's 640x480 image in a SubIFD; or, for ``"tiff"``, two full-size pages."""
    import io as _io

    import numpy as np
    import tifffile

    rng = np.random.default_rng(seed)
    sensor = (rng.random((480, 640)) * 4095).astype(np.uint16)
    buf = _io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        if kind == "tiff":
            tw.write((rng.random((120, 160, 3)) * 255).astype(np.uint8), photometric="rgb")
            tw.write((rng.random((120, 160, 3)) * 255).astype(np.uint8), photometric="rgb")
        else:
            dng = [(50706, "B", 4, (1, 4, 0, 0), True)] if kind == "dng" else []
            tw.write((rng.random((120, 160, 3)) * 255).astype(np.uint8), subfiletype=1, subifds=1,
                     photometric="rgb", extratags=dng)
            tw.write(sensor, subfiletype=0, photometric="minisblack")
    return buf.getvalue()


def test_raw_photos_uploaded_are_refused_not_stacked_as_their_previews(tmp_path):
    """A DNG or NEF starts as a TIFF does, and its first image is the camera's small preview: the upload was taken
    as TIFF photos and the job stacked the 160x120 previews, "done", without a word (review20). A TIFF whose first
    image is a reduced-resolution one (NewSubfileType bit 0), or a DNG, is refused naming the file and the way on;
    a TIFF of several full pages is still a photo."""
    from postfocus.web.upload import check_upload

    srv = Server(tmp_path / "data")
    try:
        for kind in ("dng", "nef"):
            photos = [(f"DSC_000{k}.{kind.upper()}", _raw_like(kind, k)) for k in range(2)]
            r = srv.client.post("/api/jobs", files=multipart(photos, mime="application/octet-stream"))
            assert r.status_code == 415, r.text
            said = r.json()["error"]
            assert said.startswith("DSC_0000.") and "RAW" in said and "postfocus stack" in said, said
            assert "\n" not in said and str(tmp_path) not in said
            assert job_count(srv) == 0
        job = srv.app.state.store.create()
        for k in range(2):
            job.input_path(k, ".tif").write_bytes(_raw_like("tiff", k))
        check_upload(job, [{"name": f"p{k}.tif", "file": f"in/00{k}.tif", "kind": "image", "format": "TIFF"}
                           for k in range(2)])
    finally:
        srv.stop()


def test_a_data_folder_that_cannot_hold_jobs_is_one_line_not_an_internal_error(tmp_path):
    """``serve --data-dir DIR`` whose ``DIR/jobs`` is a file was "postfocus: internal error: FileExistsError"
    (``create_app`` raised it from the Store), where a data folder that cannot be made is one line (review20)."""
    from conftest import run_postfocus

    from postfocus.errors import OutputError
    from postfocus.web.app import create_app

    data = tmp_path / "data"
    data.mkdir()
    (data / "jobs").write_text("not a folder")
    with pytest.raises(OutputError, match=r"jobs: cannot keep jobs there"):
        create_app(data)
    run = run_postfocus("serve", "--data-dir", data, "--no-browser", "--port", "0", timeout=60)
    assert run.returncode != 0 and "internal error" not in run.stderr and "Traceback" not in run.stderr
    assert run.err_lines == [f"postfocus: error: {data / 'jobs'}: cannot keep jobs there (File exists)"], run.stderr


@pytest.mark.parametrize("workers", [0, -1, 10**9, 65, 2.7, "2", True, None])
def test_a_worker_count_that_means_nothing_is_refused_by_name(tmp_path, workers):
    """``create_app(workers=...)`` took 0 (as 1), "2", 2.7 and True, and 10**9 (one process per job, unbounded),
    while the command line takes 1-64 (review20). Each is an OptionError naming ``workers``, before any folder."""
    from postfocus.errors import OptionError
    from postfocus.web.app import create_app

    with pytest.raises(OptionError, match=r"workers.*from 1 to 64"):
        create_app(tmp_path / "data", workers=workers)
    assert not (tmp_path / "data").exists()


def test_allowed_hosts_given_as_one_string_is_that_host_not_its_letters(tmp_path):
    """``allowed_hosts="localhost"`` allowed the letters l, o, c ..., so every request was a 400 (review20). A string
    is one host name; a name that is not a string is a TypeError when the app is made, not at its first request."""
    from postfocus.web.app import create_app

    app = create_app(tmp_path / "data", allowed_hosts="localhost")
    with TestClient(app, base_url="http://localhost:8000") as client:
        assert client.get("/api/info").status_code == 200
        assert client.get("/api/info", headers={"host": "l:8000"}).status_code == 400
    with pytest.raises(TypeError, match="allowed_hosts: host names are strings, not int"):
        create_app(tmp_path / "data", allowed_hosts=["localhost", 8000])


def flat_png(width: int, height: int) -> bytes:
    """An RGB PNG of ``width`` x ``height`` zeros, written a row at a time (the image is never held): a
    decompression bomb, 12000x12000 in about 0.4 MB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row, body = zlib.compressobj(9), bytes(1 + 3 * width), []
    for _ in range(height):
        body.append(packer.compress(row))
    body.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b"")


def test_canon_cr3_photos_are_refused_as_raw_photos_not_as_videos(tmp_path):
    """A CR3 (ISO BMFF, brand ``crx ``) was sniffed as an MP4 and refused "not a video file, or one FFmpeg cannot
    read" (review20): refused as the RAW photo it is, naming the file and the way on; nothing kept."""
    from test_web_sniff import CR3_HEAD

    srv = Server(tmp_path / "data")
    try:
        photos = [(f"IMG_000{k}.CR3", CR3_HEAD + bytes(4000)) for k in range(2)]
        r = srv.client.post("/api/jobs", files=multipart(photos, mime="application/octet-stream"))
        assert r.status_code == 415, r.text
        said = r.json()["error"]
        assert said.startswith("IMG_0000.CR3: a Canon CR3 RAW photo") and "video" not in said, said
        assert job_count(srv) == 0
    finally:
        srv.stop()


@pytest.mark.parametrize("side", [12000, 14000])
def test_a_photo_of_more_megapixels_than_the_app_takes_is_refused_before_it_is_decoded(tmp_path, side):
    """A PNG of 12000x12000 zeros (144 MP, 0.4 MB on disk: under Pillow's 179 MP refusal) was taken, and the job
    decoded it at full size (fixes23); 14000x14000 (196 MP) was refused by Pillow as a 415 "image too large to
    decode". Both are a 413 naming the photo and the limit, before any pixel is decoded; nothing kept."""
    from postfocus.web.upload import MAX_PHOTO_MEGAPIXELS

    bomb = flat_png(side, side)
    assert len(bomb) < 1 << 20
    srv = Server(tmp_path / "data", max_upload_mb=8)
    try:
        photos = [("small.png", flat_png(64, 64)), ("huge.png", bomb)]
        r = srv.client.post("/api/jobs", files=multipart(photos, mime="image/png"))
        assert r.status_code == 413, r.text
        said = r.json()["error"]
        assert said.startswith("huge.png: a photo of ") and f"up to {MAX_PHOTO_MEGAPIXELS} megapixels" in said, said
        assert "\n" not in said and str(tmp_path) not in said
        assert job_count(srv) == 0
    finally:
        srv.stop()


@pytest.mark.parametrize("width, height, said", [(11000, 10001, "110.01"), (10510, 10510, "110.5"),
                                                 (12000, 12000, "144.0")])
def test_a_photo_just_over_the_limit_is_said_larger_than_the_limit(tmp_path, width, height, said):
    """11000x10001 (110.011 MP) was refused as "(110 MP) ... up to 110 megapixels": a size that reads as the limit
    itself. The photo's megapixels are said with the decimals it takes to read as more (fails on main)."""
    from postfocus.web.upload import MAX_PHOTO_MEGAPIXELS

    srv = Server(tmp_path / "data", max_upload_mb=8)
    try:
        photos = [("small.png", flat_png(64, 64)), ("large.png", flat_png(width, height))]
        r = srv.client.post("/api/jobs", files=multipart(photos, mime="image/png"))
        assert r.status_code == 413, r.text
        error = r.json()["error"]
        assert error.startswith(f"large.png: a photo of {width}x{height} ({said} MP); this server takes photos of up "
                                f"to {MAX_PHOTO_MEGAPIXELS} megapixels"), error
        assert float(said) > MAX_PHOTO_MEGAPIXELS
        assert job_count(srv) == 0
    finally:
        srv.stop()
