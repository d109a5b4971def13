"""Pass 1 (pipeline/analyse.py): its hooks come in order, and how far ahead frames are measured changes nothing."""

from __future__ import annotations

import numpy as np

from postfocus.io.open import open_source
from postfocus.pipeline import analyse as pass1


def test_on_measured_comes_once_after_the_alignment_and_the_maps_do_not_depend_on_the_look_ahead(
        tiny_stack, monkeypatch):
    calls: list[str] = []
    first = pass1.analyse(open_source(tiny_stack.folder), on_alignment=lambda report, used: calls.append("aligned"),
                          on_measured=lambda: calls.append("measured"))
    assert calls == ["aligned", "measured"]
    monkeypatch.setattr(pass1, "MEASURED_AHEAD", 1)
    second = pass1.analyse(open_source(tiny_stack.folder))
    for name in ("focus_index", "confidence", "volume"):
        assert np.array_equal(getattr(first.maps, name), getattr(second.maps, name)), name
    assert np.array_equal(first.guide, second.guide)
