"""StackOptions (``postfocus.options``): what it accepts, and what it refuses by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from postfocus.errors import OptionError
from postfocus.options import StackOptions


def test_numpy_integers_are_whole_numbers_and_become_plain_ints():
    # reference=np.argmax(sharpness) was refused: "must be a whole number of at least 0".
    opts = StackOptions(reference=np.argmax([0, 3, 9, 1]), frame_range=(np.int32(1), np.uint8(3)),
                        analysis_size=np.int64(400), align_size=np.int16(800), threads=np.int64(2),
                        memory_mb=np.float32(900))
    assert (opts.reference, opts.frame_range, opts.analysis_size, opts.align_size, opts.threads) == (2, (1, 3), 400,
                                                                                                     800, 2)
    for value in (opts.reference, *opts.frame_range, opts.analysis_size, opts.align_size, opts.threads):
        assert type(value) is int
    assert type(opts.memory_mb) is float and opts.memory_mb == 900.0
    json.dumps(opts.processing())  # into the manifest as plain numbers
    plain = StackOptions(reference=2, frame_range=(1, 3), analysis_size=400, align_size=800)
    assert opts.cache_key([("a.jpg", 1, 2)], 7) == plain.cache_key([("a.jpg", 1, 2)], 7)


@pytest.mark.parametrize("field, value", [("reference", True), ("reference", np.bool_(True)),
                                          ("reference", np.float64(2.0)), ("frame_range", (np.float32(1), 3)),
                                          ("memory_mb", True), ("memory_mb", float("nan")), ("threads", np.int64(0))])
def test_what_is_not_a_whole_or_positive_number_is_still_refused(field, value):
    with pytest.raises(OptionError, match=f"^{field}="):
        StackOptions(**{field: value})


def test_an_unknown_option_or_options_of_another_type_are_refused_by_name():
    """``stack(folder, colour="red")`` was "TypeError: StackOptions.__init__() got an unexpected keyword argument";
    ``stack(folder, options={"align": "none"})`` an AttributeError ('dict' object has no attribute 'threads')."""
    from postfocus.errors import OptionError
    from postfocus.options import StackOptions, resolve

    with pytest.raises(OptionError, match=r"^colour='red': not an option; the options are method, align"):
        resolve(None, {"colour": "red"})
    with pytest.raises(OptionError, match=r"^colour='red': not an option"):
        StackOptions().replace(colour="red")
    with pytest.raises(OptionError, match=r"^options='dict': must be a StackOptions; or give its fields as keywords"):
        resolve({"align": "none"}, {})
    assert resolve(StackOptions(align="none"), {"method": "pyramid"}) == StackOptions(align="none", method="pyramid")


@pytest.mark.parametrize("threads", [257, 10**6, 10**12])
def test_a_thread_budget_beyond_the_command_lines_is_refused(threads):
    """``stack(frames, threads=10**6)`` had OpenCV spawn threads until the system refused (an error line each);
    ``10**12`` was "ValueError: integer won't fit into a C int". The library takes what ``--threads`` takes."""
    from postfocus.options import MAX_THREADS, check_threads

    with pytest.raises(OptionError, match=rf"^threads={threads}: must be a whole number from 1 to {MAX_THREADS}"):
        StackOptions(threads=threads)
    with pytest.raises(OptionError, match=rf"^threads={threads}:"):
        check_threads(threads)
    assert StackOptions(threads=MAX_THREADS).threads == MAX_THREADS


@pytest.mark.parametrize("field, value", [("analysis_size", 10**400), ("align_size", 10**400), ("memory_mb", 10**400),
                                          ("reference", 10**5000), ("frame_range", (0, 10**400))],
                         ids=["analysis_size", "align_size", "memory_mb", "reference", "frame_range"])
def test_a_number_no_float_can_hold_is_refused_by_name_in_a_short_line(field, value):
    """``stack(frames, analysis_size=10**400)`` was "OverflowError: integer division result too large for a float"
    (review13); an OptionError said 10**400 back in 401 digits, and 10**5000 had no text at all (a ValueError
    while the message was made)."""
    with pytest.raises(OptionError) as refused:
        StackOptions(**{field: value})
    message = str(refused.value)
    assert message.startswith(f"{field}=") and len(message) < 160 and "\n" not in message, message
