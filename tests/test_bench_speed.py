"""The speed bench's run order (bench/bench_speed.py): pure helpers only, nothing timed."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "bench_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_speed_under_test", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_the_tools_take_turns_to_go_first_and_the_pair_stays_back_to_back(bench):
    orders = bench.turn_order(["focus-stack", "postfocus", "postfocus --no-cache"], 5)
    assert [order[0] for order in orders] == ["focus-stack", "postfocus --no-cache"] * 2 + ["focus-stack"]
    for order in orders:
        assert sorted(order) == ["focus-stack", "postfocus", "postfocus --no-cache"]
        assert abs(order.index("focus-stack") - order.index("postfocus")) == 1
    two = bench.turn_order(["focus-stack", "postfocus depth"], 4)
    assert two == [["focus-stack", "postfocus depth"], ["postfocus depth", "focus-stack"]] * 2
    # each tool of the pair runs first in as many repetitions as the other (one more for an odd count)
    firsts = [order.index("postfocus depth") < order.index("focus-stack") for order in two]
    assert firsts.count(True) == firsts.count(False) == 2


def test_the_paired_ratio_is_the_median_of_each_repetitions_own_ratio(bench):
    mine, theirs = bench.Measured(), bench.Measured()
    mine.runs = [(4.0, 6.0, 300.0), (5.0, 9.0, 300.0), (4.2, 6.3, 290.0)]
    theirs.runs = [(8.0, 12.0, 1000.0), (12.5, 15.0, 1100.0), (7.0, 10.5, 1000.0)]
    # per repetition: wall 0.5, 0.4, 0.6; CPU 0.5, 0.6, 0.6
    assert bench.paired_ratio(mine, theirs, 0) == pytest.approx(0.5)
    assert bench.paired_ratio(mine, theirs, 1) == pytest.approx(0.6)
    # the ratio of the medians differs: 4.2 / 8.0 wall
    assert mine.median(0) / theirs.median(0) == pytest.approx(0.525)


def test_the_24_mp_rows_growth_line_compares_the_most_frames_peak_with_the_fewests(bench):
    def measured(wall, cpu, peak):
        m = bench.Measured()
        m.runs = [(wall, cpu, peak)]
        return m

    rows = [(100, {"postfocus": measured(90.0, 150.0, 1650.0), "postfocus --no-cache": measured(80.0, 130.0, 1500.0)}),
            (30, {"focus-stack": measured(100.0, 110.0, 7800.0), "postfocus": measured(30.0, 45.0, 1500.0),
                  "postfocus --no-cache": measured(25.0, 39.0, 1200.0)})]
    default, streaming = bench.growth(rows)
    assert default.startswith("| 24 MP, postfocus: peak 100 / 30 frames | 30: 1500 MB, 100: 1650 MB |")
    assert "CPU a frame 30: 1.50 s, 100: 1.50 s" in default and "1.10x (target 1.1x) | met |" in default
    assert "1.25x (target 1.1x) | NOT met |" in streaming  # 1500 / 1200
    assert bench.growth(rows[:1]) == []  # one count: nothing to compare


def test_the_24_mp_rows_frames_go_through_focus_once(bench):
    for count in (20, 41, 50, 100):
        order = bench.through_focus_order(41, count)
        assert len(order) == count and order == sorted(order)  # never back through focus
        assert set(order) == set(range(min(count, 41)))  # every source frame, none skipped
    runs = [bench.through_focus_order(41, 100).count(i) for i in range(41)]
    assert min(runs) == 2 and max(runs) == 3
