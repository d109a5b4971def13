"""The depth bench's choice of renders (bench/bench_depth.py): a pure helper, no stack rendered."""

import pytest
from conftest import bench_module


@pytest.fixture(scope="module")
def bench():
    yield from bench_module("bench_depth.py")


def test_both_renders_run_in_one_go_with_the_layered_rows_named_apart(bench):
    assert bench.renders("plain,hidden") == [("", {}), (" hidden", {"hidden": True})]
    assert bench.renders("hidden, plain") == [(" hidden", {"hidden": True}), ("", {})]


def test_one_render_keeps_the_rows_named_as_before(bench):
    assert bench.renders(None) == [("", {})]
    assert bench.renders(None, hidden=True) == [("", {"hidden": True})]
    assert bench.renders("hidden") == [("", {"hidden": True})]
    assert bench.renders("plain", hidden=True) == [("", {})]  # (--renders overrides --hidden)


def test_an_unknown_render_is_refused(bench):
    with pytest.raises(ValueError, match="unknown render layered"):
        bench.renders("plain,layered")
    with pytest.raises(ValueError, match="none"):
        bench.renders(" , ")
    with pytest.raises(SystemExit):  # the command line says it in one line (argparse's error), exit 2
        bench.main(["--renders", "flat"])
