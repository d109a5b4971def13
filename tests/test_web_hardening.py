"""``postfocus serve`` under attack and under faults (issue 17, the web app's part).

Each test is a case that once failed:

* changes from other web sites: a request without ``X-Postfocus: 1``, with
  ``Origin: null`` or a cross-site ``Sec-Fetch-Site``, and, in real Chromium, a
  sandboxed frame on another site that POSTs an upload with a no-cors fetch.

The API cases run against Starlette's TestClient (``test_web_api.Server``),
the browser's against a real ``postfocus serve`` (``test_web_ui.ServeProcess``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import threading
from pathlib import Path

import httpx
import pytest
from test_web_api import BASE, Server, TestClient, job_count, make_stack_files, multipart, wait_for
from test_web_ui import ServeProcess


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
