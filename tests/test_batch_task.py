"""One stack of a batch: the task a worker runs and its outputs (``postfocus.batch.task``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("skimage.data")

from batch_stacks import decoded, make_stack  # noqa: E402

from postfocus.batch import StackJob, is_valid_image, part_files, process_stack, remove_part_files  # noqa: E402
from postfocus.batch.task import stack_arguments  # noqa: E402
from postfocus.pipeline.run import stack  # noqa: E402


def test_options_become_the_library_call():
    from postfocus.options import StackOptions

    assert stack_arguments({}) == (StackOptions(), {})  # unset options take the library's defaults
    assert stack_arguments(
        {"align": "none", "crop": False, "method": "pyramid", "quality": 80, "range": "1:3", "reference": 2}
    ) == (
        StackOptions(align="none", crop=False, method="pyramid", frame_range=(1, 3), reference=2),
        {"quality": 80},
    )


def test_process_stack_writes_what_stack_would(tmp_path):
    folder = make_stack(tmp_path / "beetle")
    (tmp_path / "out").mkdir()
    options = (("method", "pyramid"), ("quality", 80))
    job = StackJob("beetle", str(folder), str(tmp_path / "out" / "beetle.jpg"), options)
    rec = process_stack(job)
    assert (rec["status"], rec["frames_used"], rec["frames_total"], rec["error"]) == ("ok", 4, 4, None)
    assert rec["options"] == {"method": "pyramid", "quality": 80} and rec["worker"] is None and rec["finished"]
    single = stack(folder, method="pyramid").save(tmp_path / "single.jpg", quality=80)
    assert np.array_equal(decoded(Path(job.output)), decoded(single))


def test_a_bad_stack_is_a_failed_record_not_an_exception(tmp_path):
    folder = make_stack(tmp_path / "corrupt")
    (folder / "frame02.jpg").write_bytes(b"\x00garbage, not a JPEG" * 40)
    rec = process_stack(StackJob("corrupt", str(folder), str(tmp_path / "corrupt.jpg")))
    assert rec["status"] == "failed" and "frame02.jpg" in rec["error"] and rec["seconds"] >= 0
    assert not (tmp_path / "corrupt.jpg").exists()


@pytest.mark.parametrize("where", ["missing folder", "an input frame"])
def test_an_output_that_cannot_be_written_fails_before_the_merge(tmp_path, monkeypatch, where):
    # A manifest row whose output folder is missing (or whose output is one of the stack's frames) merged
    # the whole stack first and only then failed.
    folder = make_stack(tmp_path / "beetle")
    output = tmp_path / "no-such-folder" / "b.jpg" if where == "missing folder" else sorted(folder.glob("*.jpg"))[0]
    before = output.read_bytes() if output.exists() else None

    def must_not_merge(*args, **kwargs):
        raise AssertionError("the stack was merged before its output was checked")

    monkeypatch.setattr("postfocus.pipeline.run.stack", must_not_merge)
    rec = process_stack(StackJob("beetle", str(folder), str(output)))
    assert rec["status"] == "failed", rec
    assert ("does not exist" if where == "missing folder" else "is one of the input frames") in rec["error"]
    assert (output.read_bytes() if output.exists() else None) == before


def test_outputs_are_checked_and_part_files_cleared(tmp_path):
    good = tmp_path / "a.png"
    Image.new("RGB", (32, 24), "red").save(good)
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:-20])
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert is_valid_image(good)
    assert not is_valid_image(tmp_path / "cut.png") and not is_valid_image(tmp_path / "empty.jpg")
    assert not is_valid_image(tmp_path / "missing.jpg")

    job = StackJob("a", "/in/a", str(tmp_path / "a.jpg"))
    for name in (".a.k2j3h4g5.jpg.part", ".a.short.jpg.part", ".b.k2j3h4g5.jpg.part", "a.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in part_files(job)] == [".a.k2j3h4g5.jpg.part"]
    assert remove_part_files([job]) == 1 and part_files(job) == []
    assert (tmp_path / ".b.k2j3h4g5.jpg.part").exists() and (tmp_path / "a.jpg").exists()


def test_the_focus_order_is_a_batch_option():
    """A far-to-near stack is fused differently (halo handling follows the order): a batch must be able to say so,
    on the command line (--order) and in a manifest's order column, as `postfocus stack --order` does."""
    from postfocus.batch.discover import _clean_options
    from postfocus.errors import PostfocusError

    opts, _ = stack_arguments({"order": "far-to-near"})
    assert opts.order == "far-to-near"
    assert _clean_options({"order": " auto "}) == (("order", "auto"),)
    with pytest.raises(PostfocusError, match="order 'sideways'"):
        _clean_options({"order": "sideways"}, "drawer.csv row 2: ")


def test_batch_command_passes_the_order_on(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import postfocus.batch
    from postfocus.cli import main
    from postfocus.errors import InputError

    seen = {}

    def find_stacks(inputs, out_dir, *, fmt, options):
        seen.update(options)
        raise InputError("stop here")

    monkeypatch.setattr(postfocus.batch, "find_stacks", find_stacks)
    run = CliRunner().invoke(main, ["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--order", "far-to-near"])
    assert "stop here" in run.output and run.exit_code == 2, run.output
    assert seen == {"order": "far-to-near"}


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_a_result_over_pillows_size_limit_is_a_valid_output(tmp_path, monkeypatch, suffix):
    # Pillow's limit (179 MP refused, 89 MP warned) made small enough that this result passes it, as a
    # 16000x12500 stack's result does: on main is_valid_image was False (the batch made it again on every run)
    # and, between the two limits, Pillow's DecompressionBombWarning reached the terminal.
    import warnings

    path = tmp_path / f"result.{suffix}"
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60 * 80 // 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert is_valid_image(path)
    assert not caught, [str(w.message) for w in caught]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60 * 80 - 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert is_valid_image(path)
    assert not caught, [str(w.message) for w in caught]
