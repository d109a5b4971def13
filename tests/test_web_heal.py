"""A done job whose stack folder is damaged heals (postfocus.web.heal): the request that finds the damage
is told the stack is being rebuilt, the job is processed again from its kept photos, then served.

A genuinely absent frame stays a 404, and no answer names a path on the server.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from test_web_api import Server, is_jpeg, make_stack_files, multipart, wait_for  # noqa: E402

from postfocus.web.heal import REBUILD_MESSAGE  # noqa: E402


@pytest.fixture(scope="module")
def healing(tmp_path_factory):
    """A server that has processed a photo stack and a video of it."""
    from postfocus.io.video_write import write_video

    root = tmp_path_factory.mktemp("web_heal")
    srv = Server(root / "data")
    files = make_stack_files()
    frames = [np.asarray(Image.open(io.BytesIO(d)), np.float32) / 255 for _, d in files]
    video = write_video(frames, root / "sweep.mp4", fps=10)
    r_photos = srv.client.post("/api/jobs", files=multipart(files))
    r_video = srv.client.post("/api/jobs", files=multipart([("sweep.mp4", video.read_bytes())], "video/mp4"))
    assert r_photos.status_code == 201 and r_video.status_code == 201, (r_photos.text, r_video.text)
    srv.photos = wait_for(srv.client, r_photos.json()["id"])
    srv.video = wait_for(srv.client, r_video.json()["id"])
    assert srv.photos["state"] == "done" and srv.video["state"] == "done", (srv.photos, srv.video)
    yield srv
    srv.stop()


def _kept_frame(srv: Server, job_id: str, index: int):
    stack = srv.data / "jobs" / job_id / "stack"
    manifest = json.loads((stack / "manifest.json").read_text())
    return stack / manifest["frame_files"][str(index)]


def _rebuilt(srv: Server, job_id: str, response, *, root: str) -> None:
    """``response`` says the stack is being rebuilt (no server path); the job runs again and is done."""
    assert response.status_code == 503, response.text
    assert response.json()["error"] == REBUILD_MESSAGE
    assert root not in response.text
    assert srv.client.get(f"/api/jobs/{job_id}").json()["state"] in ("queued", "running", "done")
    job = wait_for(srv.client, job_id)
    assert job["state"] == "done", job
    assert job["attempts"] >= 2


@pytest.mark.parametrize("kind", ["photos", "video"])
def test_a_deleted_frame_is_rebuilt_then_served(healing, kind):
    srv, job_id = healing, getattr(healing, kind)["id"]
    first = srv.client.get(f"/api/jobs/{job_id}/frames/3")
    assert first.status_code == 200 and (is_jpeg(first.content) or first.content.startswith(b"\x89PNG"))
    absent = srv.client.get(f"/api/jobs/{job_id}/frames/99")
    assert absent.status_code == 404 and absent.json()["error"] == "Frame 99 is not in this stack."

    _kept_frame(srv, job_id, 3).unlink()
    srv.client.get(f"/api/jobs/{job_id}/viewer")  # an answer from files already made: no damage seen
    for name in list((srv.data / "jobs" / job_id / "out").glob("frame_0003.*")):
        name.unlink()  # a frame made from the kept one (TIFF or video) would be served from out/
    _rebuilt(srv, job_id, srv.client.get(f"/api/jobs/{job_id}/frames/3"), root=str(srv.data))

    again = srv.client.get(f"/api/jobs/{job_id}/frames/3")
    assert again.status_code == 200, again.text
    assert len(again.content) > 1000
    assert _kept_frame(srv, job_id, 3).is_file()


def test_a_truncated_frame_heals_a_range_merge_and_keeps_the_retouching(healing):
    srv, job_id = healing, healing.photos["id"]
    stroke = {"kind": "stroke", "source": 0, "radius": 20, "hardness": 0.5, "points": [[60, 60], [90, 80]]}
    put = srv.client.put(f"/api/jobs/{job_id}/edits", json={"edits": [stroke]})
    assert put.status_code == 200, put.text
    path = _kept_frame(srv, job_id, 1)
    path.write_bytes(path.read_bytes()[: 200])
    _rebuilt(srv, job_id, srv.client.get(f"/api/jobs/{job_id}/merge.jpg?start=0&end=2"), root=str(srv.data))
    merged = srv.client.get(f"/api/jobs/{job_id}/merge.jpg?start=0&end=2")
    assert merged.status_code == 200 and is_jpeg(merged.content), merged.text
    edits = srv.client.get(f"/api/jobs/{job_id}/edits").json()["edits"]
    assert [e["points"] for e in edits] == [stroke["points"]], edits


def test_a_frame_cut_short_after_it_was_served_is_not_served_cut_short(healing):
    srv, job_id = healing, healing.photos["id"]
    assert srv.client.get(f"/api/jobs/{job_id}/frames/4").status_code == 200  # the stack is open
    stack = srv.data / "jobs" / job_id / "stack"
    unwarped = json.loads((stack / "manifest.json").read_text()).get("frames_unwarped")
    index = 3 if unwarped else 4  # a copied photo (format 7) is served aligned from out/: one not served yet
    path = _kept_frame(srv, job_id, index)
    if path.suffix != ".jpg":
        pytest.skip("frames of this stack are served from out/")
    path.write_bytes(path.read_bytes()[:300])
    _rebuilt(srv, job_id, srv.client.get(f"/api/jobs/{job_id}/frames/{index}"), root=str(srv.data))
    again = srv.client.get(f"/api/jobs/{job_id}/frames/{index}")
    assert again.status_code == 200 and is_jpeg(again.content), again.text


def test_an_unreadable_manifest_or_a_missing_folder_heals(healing):
    srv, job_id = healing, healing.photos["id"]
    stack = srv.data / "jobs" / job_id / "stack"
    srv.app.state.results.forget(job_id)  # as after a restart: the stack is opened from its folder
    (stack / "manifest.json").write_text("{not json")
    _rebuilt(srv, job_id, srv.client.post(f"/api/jobs/{job_id}/tap", json={"x": 40, "y": 120}),
             root=str(srv.data))
    tap = srv.client.post(f"/api/jobs/{job_id}/tap", json={"x": 40, "y": 120})
    assert tap.status_code == 200 and tap.json()["frame"] == 0, tap.text

    import shutil

    shutil.rmtree(stack)
    _rebuilt(srv, job_id, srv.client.get(f"/api/jobs/{job_id}/frames/2"), root=str(srv.data))
    assert srv.client.get(f"/api/jobs/{job_id}/frames/2").status_code == 200


def test_a_bad_request_on_a_sound_stack_is_not_a_rebuild(healing):
    srv, job_id = healing, healing.photos["id"]
    r = srv.client.get(f"/api/jobs/{job_id}/merge.jpg?start=50&end=60")
    assert r.status_code == 400 and str(srv.data) not in r.text, r.text
    assert srv.client.get(f"/api/jobs/{job_id}").json()["state"] == "done"


@pytest.mark.parametrize("opened", [True, False], ids=["stack_open", "after_restart"])
def test_a_kept_frame_replaced_by_one_of_the_same_size_is_rebuilt(healing, opened):
    """A kept photo overwritten by other bytes of the same length (a size check cannot see it) is found by
    its CRC-32, as the command line finds it: the file changed after the manifest was written."""
    srv, job_id = healing, healing.photos["id"]
    assert srv.client.get(f"/api/jobs/{job_id}/frames/2").status_code == 200  # the stack is open
    if not opened:
        srv.app.state.results.forget(job_id)
    path = _kept_frame(srv, job_id, 2)
    for name in list((srv.data / "jobs" / job_id / "out").glob("frame_0002.*")):
        name.unlink()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))  # in place: the folder itself does not change
    _rebuilt(srv, job_id, srv.client.get(f"/api/jobs/{job_id}/frames/2"), root=str(srv.data))
    again = srv.client.get(f"/api/jobs/{job_id}/frames/2")
    assert again.status_code == 200, again.text
    assert _kept_frame(srv, job_id, 2).read_bytes() != bytes(data)


def test_a_range_merge_on_an_open_stack_does_not_use_a_photo_overwritten_at_the_same_size(healing):
    srv, job_id = healing, healing.photos["id"]
    assert srv.client.get(f"/api/jobs/{job_id}/merge.jpg?start=0&end=1").status_code == 200  # the stack is open
    path = _kept_frame(srv, job_id, 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _rebuilt(srv, job_id, srv.client.get(f"/api/jobs/{job_id}/merge.jpg?start=0&end=2"), root=str(srv.data))
    merged = srv.client.get(f"/api/jobs/{job_id}/merge.jpg?start=0&end=2")
    assert merged.status_code == 200 and is_jpeg(merged.content), merged.text
    assert _kept_frame(srv, job_id, 1).read_bytes() != bytes(data)


@pytest.mark.parametrize("damage", ["cut short", "not numpy", "another size"])
def test_a_damaged_kept_depth_map_is_made_again_not_an_internal_error(healing, damage):
    """The job's ``out/depth.npy`` (made by the worker, read by aperture and pop) cut short was a ValueError
    ("mmap length is greater than file size") on every later aperture and colour pop: a 500, never healed."""
    srv, job_id = healing, healing.photos["id"]
    base = f"/api/jobs/{job_id}"
    path = srv.data / "jobs" / job_id / "out" / "depth.npy"
    assert srv.client.get(f"{base}/aperture.jpg?x=10&y=10&f=2.8").status_code == 200
    good = np.load(path)
    if damage == "cut short":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "not numpy":
        path.write_bytes(b"not a NumPy file")
    else:
        np.save(path, good[:-1])
    y = 20 + 10 * ["cut short", "not numpy", "another size"].index(damage)  # (not a picture already made)
    for query in (f"aperture.jpg?x=11&y={y}&f=2.8", f"pop.jpg?x=150&y={y}&tolerance=0.{y}"):
        r = srv.client.get(f"{base}/{query}")
        assert r.status_code == 200 and is_jpeg(r.content), r.text
    assert np.array_equal(np.load(path), good)  # made again, as it was
