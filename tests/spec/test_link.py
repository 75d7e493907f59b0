"""The link budget (gesture_snn.spec.link): divisors and their error, the default baud rate, bytes
per step of each input encoding (and the BITMAP frames of gesture_snn.spec.protocol), real-time factors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gesture_snn.spec import link, protocol


@pytest.mark.parametrize(("clock_hz", "baud", "divisor", "error"), [
    (12e6, 115200, 104, 0.0016), (25e6, 115200, 217, 0.0001), (12e6, 1_000_000, 12, 0.0),
    (12e6, 3_000_000, 4, 0.0), (25e6, 1_000_000, 25, 0.0), (25e6, 1_500_000, 17, -0.0196),
    (25e6, 3_000_000, 8, 0.0417), (100e6, 4_000_000, 25, 0.0),
])
def test_divisor_and_error_table(clock_hz, baud, divisor, error):
    d, actual, e = link.uart_divisor_error(clock_hz, baud)
    assert d == divisor and actual == clock_hz / divisor and e == pytest.approx(error, abs=5e-5)
    if abs(error) <= link.BAUD_TOLERANCE:
        assert link.uart_divisor(clock_hz=clock_hz, baud=baud) == divisor
    else:
        with pytest.raises(ValueError, match="% off"):
            link.uart_divisor(clock_hz=clock_hz, baud=baud)


def test_divisor_refusals_and_the_hdl_uses_the_spec_rule():
    from hdl import uart

    assert uart.uart_divisor is link.uart_divisor and uart.RECEIVER_MIN_DIVISOR == link.RECEIVER_MIN_DIVISOR
    with pytest.raises(ValueError, match="at least 4"):
        link.uart_divisor(clock_hz=12e6, baud=6_000_000)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            link.uart_divisor_error(12e6, bad)
    rows = {row["baud"]: row for row in link.baud_table(25e6)}
    assert rows[1_000_000]["accepted"] and not rows[3_000_000]["accepted"]


def test_fastest_baud_at_the_boards_clocks():
    assert link.fastest_baud(12e6, bridge_max_baud=12_000_000) == 3_000_000  # iCEBreaker, FT2232H: divisor 4
    assert link.fastest_baud(25e6, bridge_max_baud=3_000_000) == 1_000_000  # ULX3S, FT231X: 1.5 M is 1.96 % off
    assert link.fastest_baud(25e6, bridge_max_baud=3_000_000, max_error=0.02) == 1_500_000
    assert link.fastest_baud(100e6, bridge_max_baud=12_000_000) == 4_000_000
    assert link.fastest_baud(12e6, bridge_max_baud=115200) == 115200
    with pytest.raises(ValueError, match="no standard baud rate"):
        link.fastest_baud(12e6, bridge_max_baud=9000)
    for clock in (12e6, 25e6, 48e6, 100e6):
        baud = link.fastest_baud(clock, bridge_max_baud=3_000_000)
        divisor, _, error = link.uart_divisor_error(clock, baud)
        assert divisor >= link.RECEIVER_MIN_DIVISOR and abs(error) <= link.DEFAULT_MAX_ERROR


def test_bytes_per_step_and_the_crossover():
    assert link.step_bytes(0, 512, "events") == 1 and link.step_bytes(36, 512, "events") == 109
    assert link.step_bytes(0, 512, "bitmap") == 65 and link.step_bytes(36, 512, "bitmap") == 65
    assert link.crossover_events(512) == 22
    assert link.step_bytes(21, 512) == 64 and link.step_bytes(22, 512) == 65
    assert protocol.choose_encoding(21, 512) == "events" and protocol.choose_encoding(22, 512) == "bitmap"
    assert link.crossover_events(1) == 1  # one input: 2-byte bitmap vs 4-byte event
    with pytest.raises(ValueError):
        link.step_bytes(513, 512)
    with pytest.raises(ValueError):
        link.step_bytes(1, 512, "zip")


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n_in=st.integers(1, 80) | st.sampled_from([512, 513, 65535, 65536]),
       last=st.booleans(), encoding=st.sampled_from(["events", "bitmap", "best"]))
def test_bitmap_round_trip_and_step_lengths(data, n_in, last, encoding):
    corner = data.draw(st.sampled_from(["empty", "all", "random", "top"]))
    if corner == "empty":
        active = []
    elif corner == "all":
        active = list(range(n_in))
    elif corner == "top":
        active = [n_in - 1]  # the last input, in a byte whose upper bits are padding when n_in % 8 != 0
    else:
        active = sorted(data.draw(st.sets(st.integers(0, n_in - 1), max_size=40)))
    frame = protocol.encode_bitmap(active, n_in=n_in, last=last)
    assert len(frame) == link.step_bytes(len(active), n_in, "bitmap") == 1 + math.ceil(n_in / 8)
    decoded, decoded_last = protocol.decode_bitmap(frame, n_in=n_in)
    assert decoded.tolist() == active and decoded_last == last
    step = protocol.encode_step(active, last=last, n_in=n_in, encoding=encoding)
    assert len(step) == link.step_bytes(len(active), n_in, encoding)
    if encoding == "best":
        assert len(step) == min(link.step_bytes(len(active), n_in, e) for e in ("events", "bitmap"))


def test_bitmap_refuses_padding_bits_and_other_frames():
    with pytest.raises(ValueError, match="at or above n_in = 12"):
        protocol.decode_bitmap(b"\x06\x00\x10", n_in=12)
    with pytest.raises(ValueError, match="not a BITMAP frame"):
        protocol.decode_bitmap(b"\x06\x00", n_in=12)
    with pytest.raises(ValueError):
        protocol.encode_bitmap([12], n_in=12, last=False)


def test_realtime_factors():
    # 10 ms bins, 3 Mbaud = 300 kB/s: 65 bytes in + 1 byte back is 0.22 ms per step: 45.45x.
    assert link.link_realtime_factor([65] * 4, 3_000_000, 0.01) == pytest.approx(0.01 / (66 * 10 / 3e6))
    assert link.link_realtime_factor([109], 115200, 0.01, reply_bytes_list=[40]) == pytest.approx(
        0.01 / (149 * 10 / 115200))
    e2e = link.end_to_end_realtime(1e-3, [65, 65], 3_000_000, 0.01)
    assert e2e == pytest.approx(0.01 / (1e-3 + 66 * 10 / 3e6))
    assert link.end_to_end_realtime([1e-3, 2e-3], [1, 1], 1_000_000, 0.01) == pytest.approx(0.02 / (3e-3 + 4e-5))
    with pytest.raises(ValueError):
        link.link_realtime_factor([], 115200, 0.01)
    assert link.reply_bytes(4) == 13 and link.reply_bytes(0, last_step=True) == 3


def test_link_budget_of_recordings():
    frames = [np.zeros((3, 512), np.uint8), np.ones((2, 512), np.uint8)]
    budget = link.link_budget(frames, n_in=512, baud=115200, bin_s=0.01, core_step_s=1e-3,
                              spikes_per_recording=[np.array([0, 1, 2]), np.array([3, 4])])
    assert budget["events_per_step_mean"] == pytest.approx(1024 / 5)
    assert budget["events_per_step_busiest_recording"] == 512 and budget["events_per_step_max"] == 512
    events, bitmap, best = (budget["encodings"][e] for e in ("events", "bitmap", "best"))
    assert events["bytes_per_step_mean"] == pytest.approx((3 * 1 + 2 * 1537) / 5)
    assert bitmap["bytes_per_step_mean"] == 65 and best["bytes_per_step_mean"] == pytest.approx((3 + 130) / 5)
    assert best["bytes_per_s_busiest_recording"] == 6500
    assert best["link_realtime_factor_worst"] <= best["link_realtime_factor_mean"]
    assert best["end_to_end_realtime_factor_worst"] < best["link_realtime_factor_worst"]
