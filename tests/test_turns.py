"""``focus/turns.py``: a loop's independent steps made by the calling thread and one helper, used in order."""

from __future__ import annotations

import threading
import time

from postfocus.focus.turns import in_turns


def _recording(made):
    def task(x):
        made.append((x, threading.get_ident(), threading.current_thread().name))
        time.sleep(0.002)  # (a step long enough that the helper's is still going when the caller's ends)
        return x * 10
    return task


def test_the_results_come_in_order_and_every_other_step_is_the_helpers():
    me = threading.get_ident()
    made = []
    assert list(in_turns(_recording(made), list(range(7)), threads=2)) == [0, 10, 20, 30, 40, 50, 60]
    by_item = {x: (ident, name) for x, ident, name in made}
    assert sorted(by_item) == list(range(7))  # each step made once
    assert all(by_item[x][0] == me for x in (0, 2, 4, 6))
    assert all(by_item[x][0] != me and by_item[x][1].startswith("postfocus-turns") for x in (1, 3, 5))
    assert not any(t.name.startswith("postfocus-turns") for t in threading.enumerate())


def test_one_thread_makes_every_step_on_the_calling_thread():
    made = []
    assert list(in_turns(_recording(made), [3, 1, 2], threads=1)) == [30, 10, 20]
    assert {ident for _, ident, _ in made} == {threading.get_ident()}
    made.clear()
    assert list(in_turns(_recording(made), [5], threads=2)) == [50]  # one step: no helper for it
    assert {ident for _, ident, _ in made} == {threading.get_ident()}


def test_a_loop_that_stops_early_leaves_at_most_one_step_made_for_nothing_and_no_thread():
    made = []
    steps = in_turns(_recording(made), list(range(10)), threads=2)
    for x in steps:
        if x == 20:  # step 2 is the caller's; step 3 was handed to the helper beside it
            break
    steps.close()
    assert sorted(x for x, _, _ in made) == [0, 1, 2, 3]
    assert not any(t.name.startswith("postfocus-turns") for t in threading.enumerate())


def test_a_step_that_fails_on_either_thread_stops_the_loop_with_its_error_and_leaves_no_thread():
    """A helper's step that raises (an error, or a KeyboardInterrupt handed over as the main thread's Ctrl+C would
    be) reaches the loop as that exception, at its turn; a failing caller's step waits for the helper's step under
    way, then raises; neither hangs nor leaves a thread (review19)."""
    import pytest

    def failing(bad, kind):
        def task(x):
            time.sleep(0.01)
            if x == bad:
                raise kind("step %d" % x)
            return x
        return task

    for bad, kind in ((3, ValueError), (3, KeyboardInterrupt), (2, ValueError), (2, KeyboardInterrupt)):
        got = []
        with pytest.raises(kind, match=f"step {bad}"):
            for x in in_turns(failing(bad, kind), list(range(6)), threads=2):
                got.append(x)
        assert got == list(range(bad))  # (the steps before it, in order)
        assert not any(t.name.startswith("postfocus-turns") for t in threading.enumerate())
