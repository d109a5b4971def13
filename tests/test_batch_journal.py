"""The results journal of a batch (``postfocus.batch.journal``)."""

from __future__ import annotations

import csv
import json

import pytest

from postfocus.batch import RESULTS_CSV, RESULTS_JSONL, BatchSummary, ResultsLog, StackRecord, read_results
from postfocus.io.lock import LockHeldError


def test_results_journal_survives_a_torn_last_line(tmp_path):
    rec = StackRecord("/in/a", str(tmp_path / "a.jpg"), "ok", 4, 4, 1.5)
    later = StackRecord("/in/a", str(tmp_path / "a.jpg"), "failed", error="boom")
    (tmp_path / RESULTS_JSONL).write_text(
        json.dumps(rec.to_dict()) + "\n" + json.dumps(later.to_dict()) + "\n" + '{"input": "/in/b", "outp'
    )
    records = read_results(tmp_path)
    assert list(records) == [str(tmp_path / "a.jpg")] and records[str(tmp_path / "a.jpg")].status == "failed"


def test_a_damaged_journal_line_is_left_out_not_an_internal_error(tmp_path):
    # A line that is not UTF-8 (UnicodeDecodeError) or nests 100,000 brackets deep (RecursionError) stopped
    # the whole batch with an internal error before any stack ran.
    good = {"input": "/in/a", "output": "/out/a.jpg", "status": "ok"}
    (tmp_path / RESULTS_JSONL).write_bytes(json.dumps(good).encode() + b"\n\xff\xfe garbage\n"
                                           + b"[" * 100_000 + b"\n" + json.dumps({**good, "output": "/out/b.jpg"}).encode())
    records = read_results(tmp_path)
    assert list(records) == ["/out/a.jpg", "/out/b.jpg"] and records["/out/a.jpg"].status == "ok"


def test_the_log_appends_compacts_and_writes_csv(tmp_path):
    (tmp_path / ".results.abcdefgh.jsonl.part").write_text("cut short")
    a = StackRecord("/in/a", str(tmp_path / "a.jpg"), "failed", error="boom", options={"method": "pyramid"})
    log = ResultsLog(tmp_path).open()
    try:
        assert not list(tmp_path.glob(".results.*.part"))  # a compaction cut short is cleared
        log.append(a)
        log.append(StackRecord("/in/b", str(tmp_path / "b.jpg"), "ok", 4, 5, 2.0, warnings=["x", "y"]))
        log.append(StackRecord("/in/a", str(tmp_path / "a.jpg"), "ok", 4, 4, 1.0))
        assert len((tmp_path / RESULTS_JSONL).read_text().splitlines()) == 3  # appended as they came
    finally:
        log.close()
    lines = [json.loads(line) for line in (tmp_path / RESULTS_JSONL).read_text().splitlines()]
    assert [(line["output"][-5:], line["status"]) for line in lines] == [("b.jpg", "ok"), ("a.jpg", "ok")]
    rows = list(csv.DictReader((tmp_path / RESULTS_CSV).open()))
    assert [(r["input"], r["status"], r["warnings"], r["error"]) for r in rows] == [
        ("/in/b", "ok", "x | y", ""), ("/in/a", "ok", "", ""),
    ]
    again = ResultsLog(tmp_path).open()
    again.close()
    assert again.records == read_results(tmp_path) and len(again.records) == 2


def test_one_batch_per_folder(tmp_path):
    first = ResultsLog(tmp_path).open()
    try:
        with pytest.raises(LockHeldError, match="another postfocus batch is writing to this folder"):
            ResultsLog(tmp_path).open()
    finally:
        first.close()
    ResultsLog(tmp_path).open().close()


def test_summary_counts_and_line():
    summary = BatchSummary(records=[], seconds=30.0)
    for status in ("skipped", "ok", "ok", "failed"):
        summary.add(StackRecord("/in", "/out.jpg", status))
    assert (summary.ok, summary.failed, summary.skipped, summary.total, len(summary.records)) == (2, 1, 1, 4, 4)
    summary.not_run, summary.interrupted = 2, True
    assert summary.line() == (
        "4 stacks: 2 ok, 1 failed, 1 skipped in 30.0 s (6.0 stacks/min); 2 not run (no earlier failure); interrupted"
    )


@pytest.mark.parametrize("field, value", [
    ("output", ["/out/x.jpg"]), ("output", {"a": 1}), ("output", 5), ("input", None), ("status", "done"),
    ("warnings", 5), ("warnings", [1, None]), ("error", 3), ("options", [1]), ("frames_used", "4"),
    ("frames_total", True), ("seconds", "1.5"), ("worker", 7), ("finished", None),
])
def test_a_journal_record_with_a_field_of_another_type_is_left_out(tmp_path, field, value):
    """An output that was a list was "TypeError: unhashable type" as the journal was read, warnings that were a
    number "can only join an iterable" as results.csv was written: an internal error in every later run of the
    batch, before any stack (or after all of them), until someone mended the file by hand."""
    good = {"input": "/in/a", "output": "/out/a.jpg", "status": "ok", "warnings": ["w"], "seconds": 1.5}
    lines = [good, {**good, "output": "/out/b.jpg", field: value}, {**good, "output": "/out/c.jpg"}]
    (tmp_path / RESULTS_JSONL).write_text("".join(json.dumps(line) + "\n" for line in lines))
    log = ResultsLog(tmp_path).open()
    log.close()
    assert list(read_results(tmp_path)) == ["/out/a.jpg", "/out/c.jpg"]
    rows = list(csv.DictReader((tmp_path / RESULTS_CSV).open()))
    assert [(r["output"], r["warnings"]) for r in rows] == [("/out/a.jpg", "w"), ("/out/c.jpg", "w")]


def test_a_journal_that_is_no_file_or_holds_a_line_too_long_is_never_read_whole(tmp_path):
    """A FIFO named results.jsonl blocked the batch for good and a link to /dev/zero was read until memory ran out;
    a line longer than any record is skipped a block at a time, the records around it kept."""
    import os
    import tracemalloc

    from postfocus.batch.journal import MAX_LINE
    from postfocus.errors import OutputError

    os.mkfifo(tmp_path / RESULTS_JSONL)
    with pytest.raises(OutputError, match=r"results.jsonl: is not a file; move it away"):
        read_results(tmp_path)
    (tmp_path / RESULTS_JSONL).unlink()
    (tmp_path / RESULTS_JSONL).symlink_to("/dev/zero")
    with pytest.raises(OutputError, match=r"is not a file"):
        ResultsLog(tmp_path).open()
    ResultsLog(tmp_path)._lock.acquire()  # the failed open let the folder go (LockHeldError if not)
    (tmp_path / RESULTS_JSONL).unlink()
    good = {"input": "/in/a", "output": "/out/a.jpg", "status": "ok"}
    long = b'{"input": "/in/z", "output": "/out/z.jpg", "status": "ok", "error": "' + b"x" * (10 * MAX_LINE) + b'"}\n'
    (tmp_path / RESULTS_JSONL).write_bytes(json.dumps(good).encode() + b"\n" + long
                                           + json.dumps({**good, "output": "/out/b.jpg"}).encode() + b"\n")
    tracemalloc.start()
    try:
        records = read_results(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert list(records) == ["/out/a.jpg", "/out/b.jpg"]
    assert peak < len(long) / 3, peak  # the 40 MB line was never held whole (read whole: more than 40 MB)
