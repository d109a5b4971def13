"""``postfocus serve`` at the API level: Starlette's TestClient over a real data folder.

The stack is made here: a textured photo (astronaut, 240x320) whose left half is
sharp in the first frame and blurs frame by frame, the right half the reverse,
5 JPEG frames. A tap on the left must find frame 0, on the right frame 4.

One server (with its worker processes) processes the good stack, a stack that
fails, and a video at the same time; the other tests read its results, try bad
input against it, and finally a second app instance on the same data folder
checks that results survive a restart and that a job that was running is marked
interrupted while a queued one is processed.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import shutil
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")
with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its test client; httpx still works
    warnings.filterwarnings("ignore", message=".*httpx.*", category=UserWarning)
    from starlette.testclient import TestClient  # noqa: E402

from postfocus.web.app import create_app  # noqa: E402
from postfocus.web.store import INTERRUPTED_MESSAGE, Store  # noqa: E402
from postfocus.web.upload import UploadError, UploadReceiver  # noqa: E402

H, W, N = 240, 320, 5
BLUR_STEP = 0.9
BASE = "http://127.0.0.1:8000"
MAX_UPLOAD_MB = 2
TIMEOUT = 60
CHANGE = {"X-Postfocus": "1"}  # what the app's page sends with every change


def make_stack_files(n: int = N, size: tuple[int, int] = (H, W)) -> list[tuple[str, bytes]]:
    """JPEG frames (name, bytes): left half sharp in frame 0, right half sharp in the last frame."""
    from skimage.data import astronaut

    h, w = size
    scene = cv2.resize(astronaut(), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    files = []
    for k in range(n):
        sl, sr = BLUR_STEP * k, BLUR_STEP * (n - 1 - k)
        left = scene if sl == 0 else cv2.GaussianBlur(scene, (0, 0), sl)
        right = scene if sr == 0 else cv2.GaussianBlur(scene, (0, 0), sr)
        frame = np.where(np.arange(w)[None, :, None] < w // 2, left, right)
        pixels = (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=92)
        files.append((f"IMG_{k + 1:04d}.jpg", buf.getvalue()))
    return files


def multipart(files: list[tuple[str, bytes]], mime: str = "image/jpeg") -> list:
    return [("files", (name, data, mime)) for name, data in files]


def wait_for(client: TestClient, job_id: str, states=("done", "failed"), timeout: float = TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        seen.append((job["state"], (job.get("progress") or {}).get("fraction")))
        if job["state"] in states:
            job["_seen"] = seen
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {seen[-5:]}")


def tree(folder: Path, skip: Path | None = None) -> set[str]:
    """Every path under ``folder`` (except under ``skip``)."""
    out = set()
    for p in folder.rglob("*"):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        out.add(str(p.relative_to(folder)))
    return out


def is_jpeg(data: bytes) -> bool:
    if not data.startswith(b"\xff\xd8\xff"):
        return False
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.format == "JPEG"


class Server:
    """One app instance with its TestClient; ``stop()`` ends its lifespan (and worker pool)."""

    def __init__(self, data: Path, **options):
        self.data = data
        self.app = create_app(data, max_upload_mb=options.pop("max_upload_mb", MAX_UPLOAD_MB), workers=2, **options)
        self.client = TestClient(self.app, base_url=BASE, headers=CHANGE)
        self.client.__enter__()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def stack_files() -> list[tuple[str, bytes]]:
    return make_stack_files()


@pytest.fixture(scope="module")
def server(tmp_path_factory, stack_files):
    """A server that has processed the good stack, a failing stack and a video, all at once."""
    root = tmp_path_factory.mktemp("web_api")
    srv = Server(root / "data")
    c = srv.client
    # A stack whose frames differ in size passes the upload checks but fails in processing.
    small = make_stack_files(2, size=(120, 160))[1]
    bad = [("good_first.jpg", stack_files[0][1]), ("tiny_second.jpg", small[1])]
    from postfocus.io.video_write import write_video

    frames = [np.asarray(Image.open(io.BytesIO(d)), np.float32) / 255 for _, d in stack_files]
    video_path = write_video(frames, root / "sweep.mp4", fps=10)

    r_good = c.post("/api/jobs", files=multipart(stack_files))
    r_bad = c.post("/api/jobs", files=multipart(bad))
    r_video = c.post("/api/jobs", files=multipart([("My sweep.mp4", video_path.read_bytes())], "video/mp4"))
    assert r_good.status_code == 201, r_good.text
    assert r_bad.status_code == 201, r_bad.text
    assert r_video.status_code == 201, r_video.text
    srv.good = wait_for(c, r_good.json()["id"])
    srv.bad = wait_for(c, r_bad.json()["id"])
    srv.video = wait_for(c, r_video.json()["id"])
    srv.root = root
    yield srv
    srv.stop()


def test_jobs_run_side_by_side_and_one_failure_stays_with_its_job(server):
    good, bad, video = server.good, server.bad, server.video
    assert good["state"] == "done", good
    assert good["result"]["used"] == list(range(N))
    assert (good["result"]["width"], good["result"]["height"]) <= (W, H)
    assert [i["name"] for i in good["inputs"]] == [f"IMG_{k + 1:04d}.jpg" for k in range(N)]
    assert video["state"] == "done", video
    assert video["result"]["kind"] == "video"
    assert bad["state"] == "failed"
    # The message names the files as uploaded, not as stored.
    assert "tiny_second.jpg" in bad["error"] and "same size" in bad["error"]
    assert "/in/" not in bad["error"] and "001.jpg" not in bad["error"]
    # Progress was reported while the good job ran, and never went backwards.
    fractions = [f for s, f in good["_seen"] if s == "running" and f is not None]
    assert fractions == sorted(fractions)
    listed = server.client.get("/api/jobs").json()["jobs"]
    assert {j["id"] for j in listed} == {good["id"], bad["id"], video["id"]}


def test_job_folder_layout(server):
    folder = server.data / "jobs" / server.good["id"]
    assert sorted(p.name for p in (folder / "in").iterdir()) == [f"{k:03d}.jpg" for k in range(N)]
    assert (folder / "stack" / "manifest.json").is_file()
    assert (folder / "out" / "all_in_focus.jpg").is_file()
    data = json.loads((folder / "job.json").read_text())
    assert data["state"] == "done" and data["attempts"] == 1
    assert not (folder / "work").exists()
    video_in = list((server.data / "jobs" / server.video["id"] / "in").iterdir())
    assert [p.name for p in video_in] == ["000.mp4"]


def test_tap_finds_the_sharp_half(server):
    c, job = server.client, server.good
    w, h = job["result"]["width"], job["result"]["height"]
    left = c.post(f"/api/jobs/{job['id']}/tap", json={"x": w * 0.2, "y": h * 0.5}).json()
    right = c.post(f"/api/jobs/{job['id']}/tap", json={"x": w * 0.8, "y": h * 0.5}).json()
    assert left["frame"] == 0 and right["frame"] == N - 1
    r = c.post(f"/api/jobs/{job['id']}/tap", json={"x": w + 5, "y": 1})
    assert r.status_code == 400 and "outside the image" in r.json()["error"]
    r = c.post(f"/api/jobs/{job['id']}/tap", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "x" in r.json()["error"]


def test_tap_answers_as_the_library_does(server):
    """The app's tap is :func:`postfocus.products.refocus.tap` on the job's stack folder (as ``refocus --at`` is,
    ``test_cli_refocus_pop_info_on_the_video``): the same frame, position, confidence, fallback, fill and message
    at every point of a grid. Its message counts frames from 1, as the page and the command line do ("frame 25"
    where the page said "Frame 26"; review14 noticed); ``frame`` stays the API's number, counted from 0."""
    from postfocus.products.refocus import tap
    from postfocus.store import ProcessedStack

    c, job = server.client, server.good
    stack = next(p for p in server.data.rglob("stack") if p.parent.name == job["id"])
    ps = ProcessedStack.open(stack)
    w, h = job["result"]["width"], job["result"]["height"]
    for fx in (0.05, 0.3, 0.5, 0.7, 0.95):
        for fy in (0.05, 0.5, 0.95):
            x, y = w * fx, h * fy
            said = c.post(f"/api/jobs/{job['id']}/tap", json={"x": x, "y": y}).json()
            answer = tap(ps, x, y)
            assert (said["frame"], said["fallback"], said["filled_from"], said["message"]) == (
                answer.frame, answer.fallback, answer.filled_from, answer.describe(lambda i: f"frame {i + 1}")), (fx, fy)
            assert said["message"].startswith(f"frame {answer.frame + 1} ")
            assert said["position"] == round(answer.position, 3) and said["confidence"] == round(answer.confidence, 3)


def test_downloads(server):
    c, job = server.client, server.good
    base = f"/api/jobs/{job['id']}"
    w, h = job["result"]["width"], job["result"]["height"]
    r = c.get(f"{base}/image.jpg?download=1")
    assert r.status_code == 200 and is_jpeg(r.content)
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "img-0001-4-more-all-in-focus.jpg" in r.headers["content-disposition"]
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.size == (w, h)
    for url in (f"{base}/thumb.jpg", f"{base}/frames/0", f"{base}/merge.jpg?start=1&end=3",
                f"{base}/pop.jpg?x={w * 0.2}&y={h / 2}", f"{base}/pop.jpg?position=0.5&tolerance=1",
                f"{base}/aperture.jpg?x={w * 0.2}&y={h / 2}&f=2.8",
                f"{base}/aperture.jpg?x={w * 0.2}&y={h / 2}&f=2.8&full=1&download=1"):
        r = c.get(url)
        assert r.status_code == 200, (url, r.text[:200])
        assert is_jpeg(r.content), url
    # A wider aperture blurs the far (right) half more.
    def right_sharpness(f):
        data = c.get(f"{base}/aperture.jpg?x={w * 0.2}&y={h / 2}&f={f}&full=1").content
        grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        return float(cv2.Laplacian(grey[:, int(w * 0.6):], cv2.CV_32F).var())
    assert right_sharpness(1.4) < 0.7 * right_sharpness(16)
    r = c.get(f"{base}/depth.png?download=1")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.size == (w, h) and im.mode.startswith("I")
    r = c.get(f"{base}/page.html")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert b"PostfocusViewer" in r.content and b"IMG_0001.jpg" in r.content
    assert b"000.jpg" not in r.content
    r = c.get(f"{base}/merge.jpg?start=x&end=2")
    assert r.status_code == 400 and "number" in r.json()["error"]
    r = c.get(f"{base}/frames/17")
    assert r.status_code == 404


def test_viewer_data_uses_served_pictures(server):
    c, job = server.client, server.good
    data = c.get(f"/api/jobs/{job['id']}/viewer").json()
    assert data["format"] == "postfocus-viewer"
    assert [f["index"] for f in data["frames"]] == list(range(N))
    assert [f["name"] for f in data["frames"]] == [f"IMG_{k + 1:04d}.jpg" for k in range(N)]
    urls = [f["src"] for f in data["frames"]] + [data["allInFocus"], data["focusMap"]["src"], data["tapMap"]["src"]]
    for url in urls:
        assert url.startswith(f"/api/jobs/{job['id']}/viewer/")
        r = c.get(url)
        assert r.status_code == 200 and len(r.content) > 100, url
    assert c.get(f"/api/jobs/{job['id']}/viewer/data.json").status_code == 404
    assert c.get("/viewer/viewer.js").status_code == 200
    assert c.get("/").headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in c.get("/").headers["content-security-policy"]


def test_viewer_data_numbers_frames_from_zero_and_counts_the_sweep(server):
    """Frame numbers in the data are 0-based; frameCount lets the viewer say 'Frame 3 of 5 (IMG_0003.jpg)'.
    A video's frames have no file name (not its generated, 0-based 'frame 0002')."""
    c = server.client
    data = c.get(f"/api/jobs/{server.good['id']}/viewer").json()
    assert data["frameCount"] == N and data["frames"][0]["index"] == 0
    video = c.get(f"/api/jobs/{server.video['id']}/viewer").json()
    assert video["frameCount"] == server.video["result"]["frames"] >= len(video["frames"]) >= 2
    assert [f["name"] for f in video["frames"]] == [""] * len(video["frames"]) == video["names"]


def test_unfinished_or_failed_job_has_no_results(server):
    r = server.client.get(f"/api/jobs/{server.bad['id']}/image.jpg")
    assert r.status_code == 409 and "failed" in r.json()["error"]


# ----------------------------------------------------------------- bad input


@pytest.fixture
def watched(server, tmp_path_factory, monkeypatch):
    """Lists the test temp tree (outside the data folder) and a private system temp dir before and after."""
    sandbox = tmp_path_factory.mktemp("systmp")
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox))
    base = tmp_path_factory.getbasetemp()
    before = tree(base, skip=server.data)
    yield server
    after = tree(base, skip=server.data)
    assert after == before, f"written outside the data folder: {sorted(after - before)}"
    assert not any(sandbox.iterdir())


def job_count(server) -> int:
    return len(list((server.data / "jobs").iterdir()))


def test_text_named_jpg_is_refused(watched, stack_files):
    n = job_count(watched)
    files = multipart(stack_files[:2]) + [("files", ("notes.jpg", b"just some text, not a photo\n" * 40, "image/jpeg"))]
    r = watched.client.post("/api/jobs", files=files)
    assert r.status_code == 415
    assert "notes.jpg" in r.json()["error"] and "not a photo or video" in r.json()["error"]
    assert job_count(watched) == n  # nothing kept


def test_fake_video_and_lone_photo_are_refused(watched, stack_files):
    fake = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2000)
    r = watched.client.post("/api/jobs", files=multipart([("clip.mp4", fake)], "video/mp4"))
    assert r.status_code == 415 and "clip.mp4" in r.json()["error"]
    r = watched.client.post("/api/jobs", files=multipart(stack_files[:1]))
    assert r.status_code == 400 and "at least two photos" in r.json()["error"]
    r = watched.client.post("/api/jobs", files=[("title", (None, "x"))])
    assert r.status_code == 400 and "No files" in r.json()["error"]
    r = watched.client.post("/api/jobs", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "multipart" in r.json()["error"]


def test_oversized_upload_is_refused_while_streaming(watched, stack_files):
    n = job_count(watched)
    big = stack_files[0][1] + bytes(MAX_UPLOAD_MB * 1024 * 1024)  # a JPEG head, then too many bytes
    r = watched.client.post("/api/jobs", files=multipart([stack_files[1], ("huge.jpg", big)]))
    assert r.status_code == 413 and "larger than this server accepts" in r.json()["error"]
    assert job_count(watched) == n

    # Without a Content-Length (chunked), the body is counted as it arrives.
    def chunks():
        yield b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n\r\n"
        yield stack_files[0][1]
        for _ in range(3 * MAX_UPLOAD_MB):
            yield bytes(1024 * 1024)
        yield b"\r\n--XyZ--\r\n"

    r = watched.client.post("/api/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 413 and "larger than this server accepts" in r.json()["error"]
    assert job_count(watched) == n


def test_upload_stops_writing_at_the_limit(tmp_path, stack_files):
    """The receiver stops reading the body, and writing the file, as soon as the limit is passed."""
    store = Store(tmp_path / "data")
    job = store.create()
    limit = 1024 * 1024
    receiver = UploadReceiver(job, limit, "1 MB")
    on_disk = []

    async def body():
        yield b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n\r\n"
        yield stack_files[0][1]
        for _ in range(8):
            on_disk.append(sum(p.stat().st_size for p in job.inputs_dir.iterdir()))
            yield bytes(256 * 1024)
        yield b"\r\n--XyZ--\r\n"

    with pytest.raises(UploadError) as info:
        asyncio.run(receiver.receive("multipart/form-data; boundary=XyZ", body()))
    assert info.value.status == 413
    assert len(on_disk) < 8  # the rest of the body was never read
    final = sum(p.stat().st_size for p in job.inputs_dir.iterdir())
    assert max(on_disk + [final]) <= limit


def test_file_name_with_path_is_stored_under_a_generated_name(watched, stack_files):
    files = [("../../x.jpg", stack_files[0][1]), ("..\\..\\y.jpg", stack_files[N - 1][1])]
    r = watched.client.post("/api/jobs", files=multipart(files))
    assert r.status_code == 201, r.text
    job = r.json()
    folder = watched.data / "jobs" / job["id"]
    assert sorted(p.name for p in (folder / "in").iterdir()) == ["000.jpg", "001.jpg"]
    assert [i["name"] for i in job["inputs"]] == ["x.jpg", "y.jpg"]
    assert not (watched.data / "x.jpg").exists() and not (watched.data.parent / "x.jpg").exists()
    assert wait_for(watched.client, job["id"])["state"] == "done"
    assert watched.client.delete(f"/api/jobs/{job['id']}").status_code == 200
    assert not folder.exists()


def test_forged_ids_and_paths_get_404(watched):
    c, job_id = watched.client, watched.good["id"]
    other = str(uuid.uuid4())
    for url in (f"/api/jobs/{other}", f"/api/jobs/{other}/image.jpg", f"/api/jobs/{job_id.upper()}/image.jpg",
                f"/api/jobs/{job_id[:-1]}/image.jpg", "/api/jobs/..%2F..%2Fetc%2Fpasswd/image.jpg",
                f"/api/jobs/{job_id}/viewer/..%2Fjob.json", f"/api/jobs/{job_id}/viewer/..%2F..%2Fjob.json",
                f"/api/jobs/{job_id}/..%2F{watched.bad['id']}/image.jpg", "/api/jobs/%2E%2E/image.jpg",
                "/static/..%2F..%2Fapp.py", "/viewer/..%2Fexport.py", "/viewer/export.py"):
        r = c.get(url)
        assert r.status_code == 404, url
        assert b"No such" in r.content or b"Not" in r.content
    assert c.delete(f"/api/jobs/{other}").status_code == 404
    assert c.post(f"/api/jobs/{other}/tap", json={"x": 1, "y": 1}).status_code == 404


def test_other_hosts_and_origins_are_refused(watched, stack_files):
    c = watched.client
    assert c.get("/api/jobs", headers={"host": "evil.example"}).status_code == 400
    r = c.post("/api/jobs", files=multipart(stack_files[:2]), headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    r = c.delete(f"/api/jobs/{watched.bad['id']}", headers={"origin": "http://evil.example"})
    assert r.status_code == 403


# ------------------------------------------------------------------ restart


def test_restart_lists_results_and_recovers(server, stack_files):
    """A new app on the same folder lists earlier results; running -> interrupted, queued -> processed."""
    server.stop()
    jobs = server.data / "jobs"
    good = jobs / server.good["id"]
    # Fake what a server that died mid-work leaves behind.
    running_id, queued_id = str(uuid.uuid4()), str(uuid.uuid4())
    for job_id, state in ((running_id, "running"), (queued_id, "queued")):
        folder = jobs / job_id
        shutil.copytree(good / "in", folder / "in")
        (folder / "work").mkdir()
        data = json.loads((good / "job.json").read_text())
        data.update(id=job_id, state=state, result=None, progress=None, created="2000-01-01T00:00:00+00:00")
        (folder / "job.json").write_text(json.dumps(data))
    (jobs / str(uuid.uuid4())).mkdir()  # a folder without job.json is ignored
    (jobs / "not-a-job").mkdir()
    cut_short = good / ".job.k2j3h4g5.json.part"  # a job.json write that never finished
    cut_short.write_text("{")
    again = Server(server.data)
    try:
        assert not cut_short.exists()
        c = again.client
        listed = {j["id"]: j for j in c.get("/api/jobs").json()["jobs"]}
        assert listed[server.good["id"]]["state"] == "done"
        assert listed[server.bad["id"]]["state"] == "failed"
        assert listed[running_id]["state"] == "failed" and listed[running_id]["interrupted"]
        assert listed[running_id]["error"] == INTERRUPTED_MESSAGE
        assert not (jobs / running_id / "work").exists()
        assert is_jpeg(c.get(f"/api/jobs/{server.good['id']}/image.jpg").content)
        assert wait_for(c, queued_id)["state"] == "done"
        # An interrupted job can be tried again.
        assert c.post(f"/api/jobs/{running_id}/retry").status_code == 200
        assert wait_for(c, running_id)["state"] == "done"
        # A second server on the same folder is refused while this one runs.
        with pytest.raises(Exception, match="another postfocus server"):
            Server(server.data)
    finally:
        again.stop()


def test_a_photo_kept_as_its_file_is_served_aligned(tmp_path, tiny_stack):
    """A photo stack keeps its frames as copies of the input files (format 7; a PNG here), served aligned
    from out/ as a JPEG that browsers open (a RAW stack's Zstandard TIFF frames went that way too)."""
    from postfocus.pipeline.run import process
    from postfocus.web.ops import Results
    from postfocus.web.store import JobFolder

    job = JobFolder(tmp_path / "job")
    job.folder.mkdir()
    ps = process(tiny_stack.folder, cache_dir=tmp_path / "cache")
    shutil.copytree(ps.folder, job.stack_dir)
    assert ps.frame_path(1).suffix == ".png" and ps.frames_unwarped
    served = Results().frame_path(job, 1)
    assert served.suffix == ".jpg" and served.parent == job.out_dir
    shown = cv2.cvtColor(cv2.imread(str(served)), cv2.COLOR_BGR2RGB).astype(np.float32)
    assert np.abs(shown - ps.frames().read_pixels(1)).mean() < 2.5  # aligned, to within the JPEG's loss
    assert Results().frame_path(job, 1) == served  # made once


def test_a_full_disk_is_said_as_the_servers_not_the_requests_and_names_no_server_path(server, monkeypatch, tmp_path,
                                                                                    stack_files):
    # A result the server could not write (its disk full) was a 400 naming the job folder's files; a job whose
    # stack folder could not be written failed with the server's path of its work folder in the message.
    import errno

    import postfocus.io.write

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    c, job_id = server.client, server.good["id"]
    with monkeypatch.context() as m:
        m.setattr(postfocus.io.write.tempfile, "mkstemp", full)
        r = c.get(f"/api/jobs/{job_id}/aperture.jpg?x=20&y=30&f=2.8&full=1")
    assert r.status_code == 507, r.text
    said = r.json()["error"]
    assert "No space left on device" in said and "free some disk space" in said
    assert str(server.data) not in said and "/tmp" not in said
    assert c.get(f"/api/jobs/{job_id}/aperture.jpg?x=20&y=30&f=2.8&full=1").status_code == 200  # room again
    assert c.get(f"/api/jobs/{job_id}").json()["state"] == "done"

    from postfocus.store.cache import CacheError
    from postfocus.web.jobs import run_job

    job = _queued_job(tmp_path, stack_files)

    def cannot_write(folder, *args, **kwargs):
        raise CacheError(f"{folder.parent}: cannot write the processed stack (No space left on device)")

    monkeypatch.setattr("postfocus.pipeline.run.write_maps", cannot_write)
    assert run_job(str(job.folder)) == "failed"
    error = job.read()["error"]
    assert "No space left on device" in error and "press Retry" in error, error
    assert str(tmp_path) not in error and str(job.folder) not in error, error


def test_an_internal_error_of_a_job_names_no_server_path(tmp_path, stack_files):
    """A job that fails on its own folder (here ``out`` is a file: the folder cannot be made) says what failed
    without the server's paths; the full error is in the job's error.log."""
    from postfocus.web.jobs import run_job

    job = _queued_job(tmp_path, stack_files)
    job.out_dir.write_bytes(b"not a folder")
    assert run_job(str(job.folder)) == "failed"
    error = job.read()["error"]
    assert error.startswith("Internal error: FileExistsError") and "out" in error, error
    assert str(tmp_path) not in error and str(job.folder) not in error and job.id not in error, error
    assert str(job.folder) in job.log_path.read_text()  # the operator's log keeps it


def test_an_upload_limit_must_be_a_number_of_mb_above_0(tmp_path):
    from postfocus.errors import OptionError

    for value in (math.inf, math.nan, 0, -1):
        with pytest.raises(OptionError) as refused:
            create_app(tmp_path / "data", max_upload_mb=value)
        assert refused.value.param == "max_upload_mb"


def test_a_job_file_nested_too_deep_reads_as_unreadable(tmp_path):
    # job.json garbled into 100,000 "[": json's RecursionError escaped read_json (listing jobs failed).
    from postfocus.web.store import read_json

    (tmp_path / "job.json").write_text("[" * 100_000)
    assert read_json(tmp_path / "job.json") is None


def test_progress_names_the_frames_of_photos_and_videos_alike(tmp_path):
    """A video's sweep was "Aligning and measuring the photos (12 of 41)" (ninth session walkthrough): the
    progress counts frames, which are photos or a video's frames."""
    from postfocus.web.jobs import _ProgressWriter
    from postfocus.web.store import JobFolder

    job = JobFolder(tmp_path)
    writer = _ProgressWriter(job, {})
    writer("align and measure", 12, 41)
    progress = job.read()["progress"]
    assert progress["message"] == "Aligning and measuring the frames (12 of 41)"
    assert progress["fraction"] == pytest.approx(0.5 * 12 / 41, abs=1e-4)
    writer("fuse", 41, 41)
    assert job.read()["progress"]["message"] == "Merging the sharp parts (41 of 41)"


def _queued_job(tmp_path, stack_files):
    """A job in a fresh store with the stack's photos uploaded and queued, as the upload leaves it."""
    store = Store(tmp_path / "data")
    job = store.create()
    inputs = []
    for k, (name, data) in enumerate(stack_files):
        (job.folder / "in" / f"{k:03d}.jpg").write_bytes(data)
        inputs.append({"file": f"in/{k:03d}.jpg", "name": name, "size": len(data), "kind": "image", "format": "JPEG"})
    job.update(state="queued", inputs=inputs)
    return job
