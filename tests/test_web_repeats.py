"""A photo uploaded twice to the web app is left out with a warning, as the command line leaves out a photo named
twice (New user, tenth session)."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from test_web_api import Server, make_stack_files, multipart, wait_for  # noqa: E402


def test_a_photo_uploaded_twice_is_left_out_with_a_warning(tmp_path):
    """Uploading IMG_0001.jpg twice (and IMG_0002.jpg again as z_copy.jpg) stacked 5 frames, "5 of 5 frames used",
    without a word, where ``postfocus stack`` leaves a repeat out and says so."""
    files = make_stack_files(3)
    srv = Server(tmp_path / "data")
    try:
        c = srv.client
        r = c.post("/api/jobs", files=multipart(files + [files[0], ("z_copy.jpg", files[1][1])]))
        assert r.status_code == 201, r.text
        assert [item["name"] for item in r.json()["inputs"]] == ["IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg"]
        job = wait_for(c, r.json()["id"])
        assert job["state"] == "done", job
        assert job["result"]["frames"] == 3
        assert "left out 2 photo(s) uploaded twice: IMG_0001.jpg, z_copy.jpg (= IMG_0002.jpg)" in job["result"]["warnings"]
        assert len(list((tmp_path / "data").rglob("in/*"))) == 3  # the repeats' stored files are deleted

        r = c.post("/api/jobs", files=multipart([files[0], ("again.jpg", files[0][1])]))  # one photo, twice
        assert r.status_code == 400 and "at least two photos" in r.json()["error"], r.text
    finally:
        srv.stop()


def test_photos_compared_for_repeats_are_read_a_block_at_a_time(tmp_path):
    """``drop_repeats`` read each photo that shares its size with another whole into the server's memory to hash it
    (a 1 GB upload within the default 2 GB limit: 1 GB more; review13). Two 24 MB files of one size, the second
    the first again, are told apart reading a block at a time: Python's peak allocation stays under 2 MB."""
    import tracemalloc

    from postfocus.web.store import JobFolder
    from postfocus.web.upload import drop_repeats

    job = JobFolder(tmp_path / "job")
    (job.folder / "in").mkdir(parents=True)
    body = b"\xff\xd8\xff" + bytes(24 << 20)
    files = []
    for i, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        (job.folder / f"in/{i:03d}.jpg").write_bytes(body if name != "c.jpg" else body[:-1] + b"\x01")
        files.append({"name": name, "file": f"in/{i:03d}.jpg", "size": len(body), "kind": "image", "format": "JPEG"})
    tracemalloc.start()
    try:
        kept, warnings = drop_repeats(job, files)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [item["name"] for item in kept] == ["a.jpg", "c.jpg"] and warnings == [
        "left out 1 photo(s) uploaded twice: b.jpg (= a.jpg)"]
    assert not (job.folder / "in/001.jpg").exists()
    assert peak < 2 << 20, peak
