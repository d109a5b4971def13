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
