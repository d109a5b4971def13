"""How the command line words what it found: the sweep's focus order with its evidence."""

from __future__ import annotations

from postfocus.cli.output import order_text

LEANS = {"pieces": 12, "leans_near_to_far": True, "confidence": 0.86, "agreement": 0.905}


def test_a_stated_order_is_named_alone():
    assert order_text(True) == "near to far"
    assert order_text(False, {"pieces": 0}) == "far to near"


def test_an_order_kept_for_want_of_evidence_says_the_evidence_did_not_decide():
    text = order_text(True, {**LEANS, "source": "assumed"})
    assert text.startswith("near to far (assumed: ") and "too weakly to decide" in text
    assert "confidence 0.860, 90% agreeing" in text and "--order" in text


def test_a_measured_order_gives_its_evidence():
    text = order_text(False, {**LEANS, "source": "measured", "leans_near_to_far": False, "confidence": 0.995})
    assert text == "far to near (measured; the occlusion edges lean far to near, confidence 0.995, 90% agreeing)"
