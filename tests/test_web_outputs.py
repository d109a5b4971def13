"""A job's derived pictures in ``out/`` are recorded (postfocus.web.outputs): one cut short or replaced since it
was made is made again from the stack, not served as it is."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from test_web_api import Server, is_jpeg, make_stack_files, multipart, wait_for  # noqa: E402

from postfocus.web.outputs import RECORDS  # noqa: E402


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A server that has processed a photo stack: (server, job id, the job's out/ folder)."""
    srv = Server(tmp_path_factory.mktemp("web_outputs") / "data")
    r = srv.client.post("/api/jobs", files=multipart(make_stack_files()))
    assert r.status_code == 201, r.text
    job = wait_for(srv.client, r.json()["id"])
    assert job["state"] == "done", job
    yield srv, job["id"], srv.data / "jobs" / job["id"] / "out"
    srv.stop()


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "cut short":
        path.write_bytes(data[: len(data) // 2])
    elif how == "same size":  # other bytes in place, the size kept: only the CRC-32 tells
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0x55 for b in data[middle:middle + 64]) + data[middle + 64:])
    else:  # replaced by another file
        path.write_bytes(b"<html>not a picture</html>")


def _whole_picture(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # a picture cut short fails here
    return True


@pytest.mark.parametrize("how", ["cut short", "same size", "replaced"])
def test_a_damaged_thumbnail_is_made_again_not_served(done, how):
    srv, job_id, out = done
    first = srv.client.get(f"/api/jobs/{job_id}/thumb.jpg")
    assert first.status_code == 200 and is_jpeg(first.content)
    _damage(out / "thumb.jpg", how)
    again = srv.client.get(f"/api/jobs/{job_id}/thumb.jpg")
    assert again.status_code == 200 and is_jpeg(again.content) and _whole_picture(again.content)
    assert again.content == first.content  # the thumbnail again, as the worker made it
    assert (out / "thumb.jpg").read_bytes() == again.content


@pytest.mark.parametrize("how", ["cut short", "same size", "replaced"])
def test_a_damaged_viewer_picture_is_made_again_not_served(done, how):
    srv, job_id, out = done
    data = srv.client.get(f"/api/jobs/{job_id}/viewer").json()
    url = data["frames"][1]["src"]
    first = srv.client.get(url)
    assert first.status_code == 200 and _whole_picture(first.content)
    _damage(out / "viewer" / url.rsplit("/", 1)[1], how)
    again = srv.client.get(url)
    assert again.status_code == 200 and _whole_picture(again.content)
    assert again.content == first.content  # made again from the stack, as it was
    assert srv.client.get(f"/api/jobs/{job_id}/viewer/nosuch.jpg").status_code == 404  # no picture of that name


def test_damaged_viewer_data_is_made_again(done):
    srv, job_id, out = done
    first = srv.client.get(f"/api/jobs/{job_id}/viewer")
    _damage(out / "viewer" / "data.json", "cut short")
    again = srv.client.get(f"/api/jobs/{job_id}/viewer")
    assert again.status_code == 200
    made, remade = first.json(), again.json()
    # The same viewer data; only its 'created' stamp is the rebuild's own (it may fall in the next second).
    assert remade.pop("created") >= made.pop("created")
    assert remade == made


def test_a_damaged_preview_is_made_again_and_files_without_records_are_made_once(done):
    srv, job_id, out = done
    url = f"/api/jobs/{job_id}/merge.jpg?start=0&end=1"
    first = srv.client.get(url)
    assert first.status_code == 200 and _whole_picture(first.content)
    merged = next(out.glob("merge_*.jpg"))
    _damage(merged, "cut short")
    assert srv.client.get(url).content == first.content
    # Files made before records were kept (or the records lost): made again once, then recorded.
    (out / RECORDS).unlink()
    _damage(out / "thumb.jpg", "same size")
    assert _whole_picture(srv.client.get(f"/api/jobs/{job_id}/thumb.jpg").content)
    assert "thumb.jpg" in json.loads((out / RECORDS).read_text())["files"]
    (out / RECORDS).write_text("{not json")
    assert srv.client.get(url).content == first.content


@pytest.mark.parametrize("damage", ['{"files": {"thumb.jpg": ["x", 1]}, ', "\udcff", "[" * 100_000],
                         ids=["cut short", "not UTF-8", "nested too deep"])
def test_damaged_records_are_no_records_and_are_written_again(done, damage):
    """A ``records.json`` garbled into 100,000 nested brackets was a RecursionError: a 500 on every picture of the
    job, for good (the records were read before they could be written again; review13). Damaged records are none:
    the pictures are made again, once, and the records written again."""
    srv, job_id, out = done
    first = srv.client.get(f"/api/jobs/{job_id}/thumb.jpg")
    assert first.status_code == 200
    (out / RECORDS).write_text(damage, encoding="utf-8", errors="surrogateescape")
    again = srv.client.get(f"/api/jobs/{job_id}/thumb.jpg")
    assert again.status_code == 200 and again.content == first.content
    assert "thumb.jpg" in json.loads((out / RECORDS).read_text(encoding="utf-8"))["files"]


def test_a_folder_in_the_records_place_is_replaced_by_the_records(done):
    """A folder where ``records.json`` belongs (a stray ``mkdir``, a tool's unpacking) made every request a 507,
    for good: the records could never be written again (review13 noticed). It is removed and the records written."""
    srv, job_id, out = done
    first = srv.client.get(f"/api/jobs/{job_id}/thumb.jpg")
    (out / RECORDS).unlink()
    (out / RECORDS).mkdir()
    (out / RECORDS / "stray.txt").write_text("x")
    again = srv.client.get(f"/api/jobs/{job_id}/thumb.jpg")
    assert again.status_code == 200 and again.content == first.content
    assert "thumb.jpg" in json.loads((out / RECORDS).read_text(encoding="utf-8"))["files"]
