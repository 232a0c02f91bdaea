"""The one sliding window behind every rate budget (request weight, 429s, connection attempts)."""

from __future__ import annotations

import pytest

from cockpit.core.window import SlidingWindow


def test_weights_count_until_the_span_has_passed_since_each_was_added() -> None:
    minute = SlidingWindow(60.0)
    minute.add(0.0, 5)
    minute.add(30.0, 10)
    assert minute.total(59.9) == 15
    assert minute.total(60.0) == 10  # the first leaves exactly one span after it came
    assert minute.total(90.0) == 0


def test_fits_and_wait_say_when_room_opens_up() -> None:
    minute = SlidingWindow(60.0)
    minute.add(0.0, 2300)
    minute.add(10.0, 90)
    assert minute.fits(20.0, 10, 2400)
    assert not minute.fits(20.0, 11, 2400)
    assert minute.wait(20.0) == pytest.approx(40.0)  # the 2300 leaves at t=60
    assert minute.fits(60.0, 2000, 2400)
    assert SlidingWindow(60.0).wait(5.0) == 0.0  # empty: nothing to wait for


def test_a_span_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive span"):
        SlidingWindow(0.0)
