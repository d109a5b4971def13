"""Finding the stacks of a batch and planning a run (``postfocus.batch.discover``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("skimage.data")

from batch_stacks import make_collection, make_stack  # noqa: E402

from postfocus.batch import StackJob, StackRecord, find_stacks, plan_batch, read_stack_manifest  # noqa: E402
from postfocus.errors import InputError, PostfocusError  # noqa: E402


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    return make_collection(tmp_path_factory.mktemp("collection"))


def test_finding_stacks_folders_videos_and_manifests(collection, tmp_path):
    # a folder holding images is one stack; the output folder inside a collection is left out
    jobs = find_stacks([collection / "beetle"], tmp_path / "o", fmt="png")
    assert [(j.name, Path(j.output).name) for j in jobs] == [("beetle", "beetle.png")]
    out_inside = collection / "stacked"
    names = [j.name for j in find_stacks([collection], out_inside)]
    assert names == ["beetle", "corrupt", "empty", "moth", "shell"]
    # the same stack name in two collections gets a distinct output
    other = tmp_path / "drawer2"
    make_stack(other / "beetle")
    outputs = [Path(j.output).name for j in find_stacks([collection, other], tmp_path / "o")]
    assert len(set(outputs)) == len(outputs) and "drawer2_beetle.jpg" in outputs
    # keys are stable between runs and differ between stacks
    assert [j.key for j in find_stacks([collection], tmp_path / "o")] == [
        j.key for j in find_stacks([collection], tmp_path / "o")
    ]
    # a video file is one stack
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert [j.name for j in find_stacks([video], tmp_path / "o")] == ["clip"]
    # a CSV manifest: relative inputs from the CSV's folder, outputs in --out, per-row options
    manifest = collection / "drawer.csv"
    manifest.write_text(
        "input,output,method,align,reference\nbeetle,b1.tif,pyramid,,\nmoth,,,none,2\n", encoding="utf-8"
    )
    try:
        jobs = read_stack_manifest(manifest, tmp_path / "o", fmt="png", options={"method": "depthmap"})
        assert [(Path(j.input).name, Path(j.output).name, j.options_dict()) for j in jobs] == [
            ("beetle", "b1.tif", {"method": "pyramid"}),
            ("moth", "moth.png", {"method": "depthmap", "align": "none", "reference": 2}),
        ]
        manifest.write_text("input,output,method\nbeetle,b.jpg,sharpest\n")
        with pytest.raises(PostfocusError, match="line 2: method 'sharpest'"):
            find_stacks([manifest], tmp_path / "o")
        manifest.write_text("input,output\nbeetle,b.jpg\nmoth,b.jpg\n")
        with pytest.raises(PostfocusError, match="also the output of line 2"):
            find_stacks([manifest], tmp_path / "o")
    finally:
        manifest.unlink()
    with pytest.raises(PostfocusError, match="no such file"):
        find_stacks([tmp_path / "nowhere"], tmp_path / "o")


def test_a_manifest_output_of_an_unknown_format_is_refused_before_any_work(tmp_path):
    # "b.bmp" was accepted, then failed after its stack was merged (with no line number).
    manifest = tmp_path / "drawer.csv"
    manifest.write_text("input,output\nbeetle,b.jpg\nmoth,m.bmp\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3: output m\.bmp: unknown format '\.bmp'"):
        read_stack_manifest(manifest, tmp_path / "o")
    manifest.write_text("input,output\nbeetle,b.JPEG\nmoth,m.tiff\n", encoding="utf-8")  # any case, every spelling
    assert [Path(j.output).name for j in read_stack_manifest(manifest, tmp_path / "o")] == ["b.JPEG", "m.tiff"]


@pytest.mark.parametrize("content, said", [
    ("input,output\nbeetle,b.jpg\n".encode("utf-16"), "not UTF-8 text; save it as CSV"),  # a spreadsheet's "Unicode text"
    (b"input,output\nbeetle," + b"x" * 200_000 + b".jpg\n", "cannot be read as CSV (field larger"),
    (b"input,output\nbeetle,b\x00.jpg\n", "line 2: a path holds a NUL character"),
], ids=["utf-16", "a huge field", "a NUL"])
def test_a_manifest_that_is_not_readable_csv_is_one_line(tmp_path, content, said):
    # Each was an internal error (UnicodeDecodeError, _csv.Error; the NUL one per stack, as ValueError).
    manifest = tmp_path / "drawer.csv"
    manifest.write_bytes(content)
    with pytest.raises(InputError, match=said.replace("(", r"\(")):
        read_stack_manifest(manifest, tmp_path / "o")


def test_a_folder_is_a_stack_by_the_rule_postfocus_stack_uses(tmp_path):
    # frames next to other files: one stack, and io's "ignored files" warning stays quiet here
    specimen = tmp_path / "NHM-0001"
    make_stack(specimen)
    (specimen / "notes.txt").write_text("drawer 17")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [j.name for j in find_stacks([specimen], tmp_path / "o")] == ["NHM-0001"]
    # hidden image files and videos are not frames: the folder is a collection of its sub-folders and videos
    drawer = tmp_path / "drawer"
    make_stack(drawer / "a")
    Image.new("RGB", (8, 8)).save(drawer / ".thumb.jpg")
    (drawer / "b.MOV").write_bytes(b"")
    (drawer / "notes.txt").write_text("")
    (drawer / ".hidden").mkdir()
    assert [j.name for j in find_stacks([drawer], tmp_path / "o")] == ["a", "b"]
    # a single image is refused; an empty folder given directly is one (failing) stack
    with pytest.raises(InputError, match="is a single image"):
        find_stacks([drawer / "a" / "frame00.jpg"], tmp_path / "o")
    (tmp_path / "nothing").mkdir()
    assert [j.name for j in find_stacks([tmp_path / "nothing"], tmp_path / "o")] == ["nothing"]
    with pytest.raises(PostfocusError, match="fmt='gif': choose one of"):
        find_stacks([drawer], tmp_path / "o", fmt="gif")


def test_plan_skips_only_valid_outputs_made_the_same_way(tmp_path):
    def job(name: str, **options) -> StackJob:
        return StackJob(name, f"/in/{name}", str(tmp_path / f"{name}.jpg"), tuple(sorted(options.items())))

    done, missing, failed, new, other = job("done"), job("missing"), job("failed"), job("new"), job("other")
    pyramid = job("other", method="pyramid")
    for j in (done, other):
        Image.new("RGB", (16, 16)).save(j.output)
    previous = {
        j.output: StackRecord(j.input, j.output, status, 4, 4, 1.0)
        for j, status in ((done, "ok"), (missing, "ok"), (failed, "failed"), (other, "skipped"))
    }
    to_run, skipped, not_run = plan_batch([done, missing, failed, new, pyramid], previous)
    assert [j.name for j in to_run] == ["missing", "failed", "new", "other"] and not not_run
    assert [(Path(r.output).stem, r.status, r.frames_used) for r in skipped] == [("done", "skipped", 4)]
    assert previous[done.output].status == "ok"  # the earlier record is left as it was

    to_run, skipped, not_run = plan_batch([done, missing, failed, new, pyramid], previous, retry_failed=True)
    assert [j.name for j in to_run] == ["failed"] and [Path(r.output).stem for r in skipped] == ["done"]
    assert [j.name for j in not_run] == ["missing", "new", "other"]


def test_an_output_over_or_into_another_stack_is_refused_before_any_work(collection, tmp_path):
    """A manifest row ``beetle,<moth>/frame00.jpg`` wrote beetle's result over a photo of the moth stack (a run
    of ``postfocus batch`` said "2 ok" and the photo was gone); an output over another row's input file alike
    (a video a manifest names ``clip.tif``: io knows a video by its first bytes)."""
    moth = sorted((collection / "moth").iterdir())[0]
    video = tmp_path / "clip.tif"
    video.write_bytes(b"not read: the plan is refused first")
    for output, word, other in ((moth, "into", collection / "moth"), (collection / "moth" / "new.jpg", "into",
                                                                       collection / "moth"), (video, "over", video)):
        manifest = tmp_path / "m.csv"
        manifest.write_text(f"input,output\n{collection / 'beetle'},{output}\n{collection / 'moth'},m.jpg\n"
                            f"{video},v.jpg\n")
        with pytest.raises(InputError, match=rf"^{output}: the result of .*beetle would be written {word} the stack "
                                             rf"{other}; choose an output outside the stacks$"):
            find_stacks([manifest], tmp_path / "o")
    # a result inside its own stack's folder stays allowed (its task refuses only the stack's own frames)
    manifest.write_text(f"input,output\n{collection / 'beetle'},{collection / 'beetle' / 'r.jpg'}\n")
    assert [j.output for j in find_stacks([manifest], tmp_path / "o")] == [str(collection / "beetle" / "r.jpg")]


def test_outputs_in_a_sub_folder_of_another_stack_stay_allowed(collection):
    """A stack folder's frames are the files directly in it: ``postfocus batch beetle moth -o beetle/results`` (each
    result beside the first stack's photos, in a folder of its own) was refused by review17's check ("moth's result
    would be written into the stack beetle") though no result lands among any stack's frames; it ran before."""
    out = collection / "beetle" / "results"
    jobs = find_stacks([collection / "beetle", collection / "moth"], out)
    assert [j.output for j in jobs] == [str(out / "beetle.jpg"), str(out / "moth.jpg")]
    with pytest.raises(InputError, match=r"moth\.jpg: the result of .*moth would be written into the stack .*beetle;"):
        find_stacks([collection / "beetle", collection / "moth"], collection / "beetle")  # among beetle's frames


def test_an_output_folder_named_by_a_loop_of_links_is_no_internal_error(collection, tmp_path):
    """``batch --out loop`` (loop -> back -> loop) was "internal error: RuntimeError: Symlink loop from ..." (Python
    3.11's Path.resolve raises RuntimeError on a loop, as fixes24 found for -o). Fails on main."""
    (tmp_path / "loop").symlink_to(tmp_path / "back")
    (tmp_path / "back").symlink_to(tmp_path / "loop")
    names = [j.name for j in find_stacks([collection], tmp_path / "loop")]
    assert names == ["beetle", "corrupt", "empty", "moth", "shell"]
