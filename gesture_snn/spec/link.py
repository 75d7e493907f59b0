"""The serial link's budget (docs/boards.md, "Baud rate" and "Bandwidth"): UART divisors and their
error, the fastest baud rate a board carries, bytes per time step of each input encoding and the
link's real-time factor. numpy and the standard library only; the gateware's UART
(:mod:`hdl.uart`) takes its divisor rule from here, the build stage its baud rate and end-to-end
real-time factor. The byte counts of each encoding, and the per-step choice the host makes, are
:mod:`gesture_snn.spec.protocol`'s.

- :func:`uart_divisor_error` ``(clock_hz, baud) -> (divisor, actual_baud, error_fraction)``
- :func:`uart_divisor` the divisor, refusing a baud rate the clock makes more than 2 % off
- :func:`fastest_baud` ``(clock_hz, *, bridge_max_baud, max_error) -> baud``
- :func:`step_bytes` ``(active_inputs, n_in, encoding) -> bytes`` for ``"events"``, ``"bitmap"``, ``"best"``
- :func:`link_realtime_factor` and :func:`end_to_end_realtime`: bins of real time per time on the link
  (and in the core)
- :func:`link_budget`: the report's link figures for a set of recordings

Timing model (an upper bound for a lock-step session): a step takes the time to send its command
bytes, then the core's step time, then the time to send its replies (each byte is a 10-bit 8N1
frame). The core in fact adds events while they arrive, so the true step time is shorter; the
USB round trip of each lock-step exchange (driver and latency timer, host-dependent) is not
included.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from gesture_snn.spec.protocol import REPLY_BYTES, ReplyCode, bitmap_bytes, event_list_bytes

__all__ = [
    "BAUD_TOLERANCE", "DEFAULT_MAX_ERROR", "RECEIVER_MIN_DIVISOR", "FRAME_BITS", "STANDARD_BAUDS", "ENCODINGS",
    "uart_divisor_error", "uart_divisor", "fastest_baud", "baud_table",
    "step_bytes", "crossover_events", "reply_bytes",
    "link_seconds", "link_realtime_factor", "end_to_end_realtime", "link_budget",
]

#: Largest relative difference between the requested and the generated baud rate that
#: :func:`uart_divisor` accepts. The receiver samples mid-bit, so a frame of 10 bits tolerates
#: about 5 % in total between both ends; 2 % leaves the other end and the sampling its share.
BAUD_TOLERANCE = 0.02

#: Error bound of the default baud rate (:func:`fastest_baud`): half of :data:`BAUD_TOLERANCE`,
#: so the default never sits at the edge of what a build accepts. The USB-UART bridges' standard
#: rates from 1 Mbaud up are exact divisions of their 3 MHz / 12 MHz baud clocks (FTDI AN232B-05),
#: so this is the total error of the link at those rates.
DEFAULT_MAX_ERROR = 0.01

#: Smallest divisor the receiver supports: it samples each bit ``divisor // 2`` cycles after
#: the start edge plus whole bit periods, and needs at least two cycles per half bit to reject
#: a glitch on the start bit.
RECEIVER_MIN_DIVISOR = 4

#: Bits of one 8N1 frame: start, 8 data, stop.
FRAME_BITS = 10

#: The rates :func:`fastest_baud` chooses from: the usual PC rates and the FTDI bridges' exact
#: high rates (3 MHz / n on FT232R/FT231X, 12 MHz / n on FT2232H/FT4232H in high-speed mode).
STANDARD_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1_000_000, 1_500_000,
                  2_000_000, 3_000_000, 4_000_000, 6_000_000, 12_000_000)

#: Input encodings of a time step: an EVENT frame per active input, one BITMAP frame, or per
#: step the shorter of the two (what the host sends).
ENCODINGS = ("events", "bitmap", "best")


def _check_clock_baud(clock_hz, baud) -> None:
    if not (isinstance(clock_hz, (int, float)) and clock_hz > 0):
        raise ValueError(f"clock_hz = {clock_hz!r}; expected a positive frequency in Hz")
    if isinstance(baud, bool) or not isinstance(baud, (int, np.integer)) or baud < 1:
        raise ValueError(f"baud = {baud!r}; expected a positive integer (bits per second)")


def uart_divisor_error(clock_hz: float, baud: int) -> tuple[int, float, float]:
    """``(divisor, actual_baud, error_fraction)`` of the UART at ``clock_hz`` for ``baud``.

    The divisor is ``round(clock_hz / baud)`` clock cycles per bit (at least 1), the actual rate
    ``clock_hz / divisor`` and the error ``(actual - baud) / baud``, signed (positive: fast).
    Nothing is refused here (see :func:`uart_divisor`).

    >>> uart_divisor_error(12e6, 3_000_000)
    (4, 3000000.0, 0.0)
    """
    _check_clock_baud(clock_hz, baud)
    divisor = max(1, round(clock_hz / baud))
    actual = clock_hz / divisor
    return divisor, actual, (actual - baud) / baud


def uart_divisor(*, clock_hz: float, baud: int, tolerance: float = BAUD_TOLERANCE) -> int:
    """Clock cycles per bit for ``baud`` bits per second at ``clock_hz``: ``round(clock_hz / baud)``.

    Raises ValueError if that divisor gives a baud rate more than ``tolerance`` (relative) away
    from ``baud``, or is below :data:`RECEIVER_MIN_DIVISOR`. At 12 MHz, 115200 baud is divisor
    104 (0.16 % fast); at 25 MHz it is 217 (0.01 %); 3 Mbaud at 12 MHz is 4 (exact).
    """
    _check_clock_baud(clock_hz, baud)
    divisor, actual, error = uart_divisor_error(clock_hz, baud)
    if divisor < RECEIVER_MIN_DIVISOR:
        raise ValueError(
            f"baud = {baud} at a {clock_hz / 1e6:g} MHz clock gives {clock_hz / baud:.2f} clock cycles per bit; "
            f"the receiver needs at least {RECEIVER_MIN_DIVISOR} (at most {int(clock_hz // RECEIVER_MIN_DIVISOR)} baud)"
        )
    if abs(error) > tolerance:
        raise ValueError(
            f"baud = {baud} at a {clock_hz / 1e6:g} MHz clock: the nearest divisor {divisor} gives {actual:.0f} baud, "
            f"{100 * abs(error):.1f} % off (at most {100 * tolerance:g} % is accepted); choose a baud rate near "
            f"{clock_hz:.0f} / n for an integer n, e.g. {round(clock_hz / divisor)}"
        )
    return divisor


def fastest_baud(clock_hz: float, *, bridge_max_baud: int, max_error: float = DEFAULT_MAX_ERROR) -> int:
    """The fastest rate of :data:`STANDARD_BAUDS` up to ``bridge_max_baud`` that the UART makes
    within ``max_error`` at ``clock_hz`` with a divisor of at least :data:`RECEIVER_MIN_DIVISOR`.

    ValueError if none qualifies. iCEBreaker (12 MHz, FT2232H): 3000000 (divisor 4, exact);
    ULX3S (25 MHz, FT231X up to 3 Mbaud): 1000000 (divisor 25, exact; 1.5 Mbaud would be 1.96 % slow).
    """
    _check_clock_baud(clock_hz, int(bridge_max_baud))
    for baud in sorted(STANDARD_BAUDS, reverse=True):
        if baud > bridge_max_baud:
            continue
        divisor, _, error = uart_divisor_error(clock_hz, baud)
        if divisor >= RECEIVER_MIN_DIVISOR and abs(error) <= max_error:
            return baud
    raise ValueError(f"no standard baud rate up to {bridge_max_baud} is within {100 * max_error:g} % at a "
                     f"{clock_hz / 1e6:g} MHz clock")


def baud_table(clock_hz: float, bauds: Iterable[int] = STANDARD_BAUDS) -> list[dict]:
    """Per baud rate: ``baud``, ``divisor``, ``actual_baud``, ``error`` (signed fraction) and ``accepted``
    (what :func:`uart_divisor` takes), for docs and the build report."""
    rows = []
    for baud in bauds:
        divisor, actual, error = uart_divisor_error(clock_hz, baud)
        accepted = divisor >= RECEIVER_MIN_DIVISOR and abs(error) <= BAUD_TOLERANCE
        rows.append({"baud": baud, "divisor": divisor, "actual_baud": actual, "error": error, "accepted": accepted})
    return rows


# --------------------------------------------------------------------------------------------
# Bytes per step


def _check_counts(active_inputs, n_in) -> None:
    if isinstance(n_in, bool) or not isinstance(n_in, (int, np.integer)) or n_in < 1:
        raise ValueError(f"n_in = {n_in!r}; expected a positive integer")
    if isinstance(active_inputs, bool) or not isinstance(active_inputs, (int, np.integer)) \
            or not 0 <= active_inputs <= n_in:
        raise ValueError(f"active_inputs = {active_inputs!r}; expected an integer in [0, n_in = {n_in}]")


def step_bytes(active_inputs: int, n_in: int, encoding: str = "best") -> int:
    """Command bytes of one time step with ``active_inputs`` of ``n_in`` inputs active.

    ``"events"``: ``3 * active_inputs + 1``; ``"bitmap"``: ``1 + ceil(n_in / 8)``; ``"best"``
    (what the host sends): the smaller, the event list on a tie.
    """
    _check_counts(active_inputs, n_in)
    if encoding == "events":
        return event_list_bytes(active_inputs)
    if encoding == "bitmap":
        return bitmap_bytes(n_in)
    if encoding == "best":
        return min(event_list_bytes(active_inputs), bitmap_bytes(n_in))
    raise ValueError(f"encoding = {encoding!r}; expected one of {ENCODINGS}")


def crossover_events(n_in: int) -> int:
    """The fewest active inputs for which the bitmap is shorter than the event list (``n_in + 1``
    if it never is). 512 inputs: 22 (66 vs 65 bytes), a density of 4.3 %."""
    for k in range(n_in + 1):
        if event_list_bytes(k) > bitmap_bytes(n_in):
            return k
    return n_in + 1


def reply_bytes(spikes: int, *, last_step: bool = False) -> int:
    """Reply bytes of a step: a SPIKE frame per spike, END_OF_STEP, and CLASS after the last step."""
    return (REPLY_BYTES[ReplyCode.SPIKE] * int(spikes) + REPLY_BYTES[ReplyCode.END_OF_STEP]
            + (REPLY_BYTES[ReplyCode.CLASS] if last_step else 0))


# --------------------------------------------------------------------------------------------
# Time on the link


def link_seconds(n_bytes, baud: int):
    """Seconds to send ``n_bytes`` (a number or an array) at ``baud``, 10 bits per byte."""
    if isinstance(baud, bool) or not isinstance(baud, (int, np.integer)) or baud < 1:
        raise ValueError(f"baud = {baud!r}; expected a positive integer (bits per second)")
    seconds = np.asarray(n_bytes, dtype=float) * FRAME_BITS / baud
    return seconds if seconds.ndim else float(seconds)


def _steps(step_bytes_list, reply_bytes_list) -> tuple[np.ndarray, np.ndarray]:
    sent = np.asarray(list(step_bytes_list) if not isinstance(step_bytes_list, np.ndarray) else step_bytes_list,
                      dtype=float).ravel()
    if sent.size == 0:
        raise ValueError("step_bytes_list is empty; expected the bytes of at least one step")
    if reply_bytes_list is None:
        replies = np.full(sent.shape, float(REPLY_BYTES[ReplyCode.END_OF_STEP]))  # the least a step answers
    else:
        replies = np.asarray(list(reply_bytes_list) if not isinstance(reply_bytes_list, np.ndarray)
                             else reply_bytes_list, dtype=float).ravel()
        if replies.shape != sent.shape:
            raise ValueError(f"reply_bytes_list has {replies.size} steps, step_bytes_list {sent.size}")
    return sent, replies


def link_realtime_factor(step_bytes_list, baud: int, bin_s: float, *, reply_bytes_list=None) -> float:
    """Real time per time on the wire: ``len(steps) * bin_s / sum((sent + replies) * 10 / baud)``.

    ``step_bytes_list``: command bytes of each step; ``reply_bytes_list``: reply bytes of each
    step (None: 1, the END_OF_STEP alone). Above 1 the link keeps up with the sensor.
    """
    sent, replies = _steps(step_bytes_list, reply_bytes_list)
    if not bin_s > 0:
        raise ValueError(f"bin_s = {bin_s!r}; expected a positive time in seconds")
    return float(sent.size * bin_s / np.sum(link_seconds(sent + replies, baud)))


def end_to_end_realtime(core_step_s, step_bytes_list, baud: int, bin_s: float, *, reply_bytes_list=None) -> float:
    """Real time per time of a lock-step session: ``len(steps) * bin_s / sum(send + core + reply)``.

    ``core_step_s``: the core's time per step (a number, e.g. the worst case of the build report,
    or one per step). The module docstring states the (upper-bound) timing model.
    """
    sent, replies = _steps(step_bytes_list, reply_bytes_list)
    if not bin_s > 0:
        raise ValueError(f"bin_s = {bin_s!r}; expected a positive time in seconds")
    core = np.broadcast_to(np.asarray(core_step_s, dtype=float), sent.shape)
    total = np.sum(link_seconds(sent, baud) + core + link_seconds(replies, baud))
    return float(sent.size * bin_s / total)


def link_budget(active_per_recording: Sequence, *, n_in: int, baud: int, bin_s: float,
                core_step_s: float | None = None, spikes_per_recording: Sequence | None = None) -> dict:
    """The link figures of a set of recordings (for the build report and docs/boards.md).

    ``active_per_recording``: per recording, its active inputs per step (a 1-D integer array, or
    the binary frames ``[T, n_in]``); ``spikes_per_recording``: the same for the spikes of each
    step (None: no spikes, only END_OF_STEP and CLASS are counted). Returns a JSON-ready dict:
    the events per step (mean over all steps, the busiest recording's mean, the busiest step),
    per encoding the bytes per step and bytes per second needed (mean and busiest recording)
    against the link's capacity ``baud / 10``, and the real-time factors of the link alone and,
    with ``core_step_s``, end to end (``mean``: all recordings together; ``worst``: the slowest
    recording).
    """
    counts = [np.asarray(a).reshape(len(a), -1).sum(axis=1) if np.ndim(a) == 2 else np.asarray(a).ravel()
              for a in active_per_recording]
    if not counts or any(c.size == 0 for c in counts):
        raise ValueError("active_per_recording: expected at least one recording of at least one step")
    if spikes_per_recording is None:
        spikes = [np.zeros_like(c) for c in counts]
    else:
        spikes = [np.asarray(s).reshape(len(s), -1).sum(axis=1) if np.ndim(s) == 2 else np.asarray(s).ravel()
                  for s in spikes_per_recording]
        if [s.size for s in spikes] != [c.size for c in counts]:
            raise ValueError("spikes_per_recording must have as many steps per recording as active_per_recording")
    replies = [np.array([reply_bytes(int(n), last_step=t == len(s) - 1) for t, n in enumerate(s)]) for s in spikes]
    means = np.array([c.mean() for c in counts])
    busiest = int(np.argmax(means))
    every = np.concatenate(counts)
    capacity = baud / FRAME_BITS
    result = {
        "baud": int(baud), "bin_ms": round(bin_s * 1e3, 6), "n_in": int(n_in), "recordings": len(counts),
        "link_bytes_per_s": capacity,
        "events_per_step_mean": round(float(every.mean()), 3),
        "events_per_step_busiest_recording": round(float(means[busiest]), 3),
        "events_per_step_max": int(every.max()),
        "bitmap_crossover_events": crossover_events(n_in),
        "encodings": {},
    }
    for encoding in ENCODINGS:
        sent = [np.array([step_bytes(int(k), n_in, encoding) for k in c]) for c in counts]
        factors = [link_realtime_factor(s, baud, bin_s, reply_bytes_list=r) for s, r in zip(sent, replies)]
        entry = {
            "bytes_per_step_mean": round(float(np.concatenate(sent).mean()), 2),
            "bytes_per_s_mean": round(float(np.concatenate(sent).mean()) / bin_s, 1),
            "bytes_per_s_busiest_recording": round(float(sent[busiest].mean()) / bin_s, 1),
            "link_realtime_factor_mean": round(link_realtime_factor(np.concatenate(sent), baud, bin_s,
                                                                    reply_bytes_list=np.concatenate(replies)), 3),
            "link_realtime_factor_worst": round(min(factors), 3),
        }
        if core_step_s is not None:
            e2e = [end_to_end_realtime(core_step_s, s, baud, bin_s, reply_bytes_list=r) for s, r in zip(sent, replies)]
            entry["end_to_end_realtime_factor_mean"] = round(end_to_end_realtime(
                core_step_s, np.concatenate(sent), baud, bin_s, reply_bytes_list=np.concatenate(replies)), 3)
            entry["end_to_end_realtime_factor_worst"] = round(min(e2e), 3)
        result["encodings"][encoding] = entry
    return result
