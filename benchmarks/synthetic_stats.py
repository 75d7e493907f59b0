"""Event statistics of the synthetic gesture set (or of any tonic-layout DVSGesture root).

Per recording: number of events, length (last event time), events per second, share of ON
events, active pixels (pixels with at least one event), and the time to frame it with
gesture_snn.framing.events_to_frames (the hardware preset's framing: 16 x 16, 10 ms bins, 1.6 s).
Prints percentiles and, with --plot, writes a histogram figure.

    python benchmarks/synthetic_stats.py --data /tmp/synq [--plot docs/synthetic_stats_quick.png]
    python benchmarks/synthetic_stats.py --render full --sample 40      # render 40 random recordings of a size, write nothing

Results for the built-in sizes are in docs/synthetic_data.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gesture_snn.framing import FrameConfig, events_to_frames  # noqa: E402

FRAMES = FrameConfig(size=16, bin_ms=10, window_ms=1600, mode="binary")


def _tonic_events(raw: np.ndarray) -> np.ndarray:
    """What tonic's DVSGesture returns for a raw (N, 4) x, y, p, t[ms] array."""
    import tonic.datasets

    events = np.empty(len(raw), dtype=tonic.datasets.DVSGesture.dtype)
    events["x"], events["y"], events["p"] = raw[:, 0], raw[:, 1], raw[:, 2]
    events["t"] = raw[:, 3].astype(np.int64) * 1000
    return events


def stats(raw: np.ndarray) -> dict:
    events = _tonic_events(raw)
    start = time.perf_counter()
    events_to_frames(events, FRAMES)
    frame_s = time.perf_counter() - start
    length = (raw[-1, 3] + 1) / 1000
    return {
        "events": len(raw),
        "seconds": float(length),
        "events_per_s": len(raw) / length,
        "on_share": float(raw[:, 2].mean()),
        "active_pixels": int(np.unique(raw[:, 1] * 128 + raw[:, 0]).size),
        "frame_s": frame_s,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a tonic-layout root (contains DVSGesture/)")
    parser.add_argument("--render", choices=("tiny", "quick", "full"), help="render recordings of a size instead")
    parser.add_argument("--sample", type=int, default=40, help="with --render: how many random recordings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="write a histogram figure (PNG) here")
    parser.add_argument("--json", help="write the per-recording numbers here")
    args = parser.parse_args(argv)
    rows, render_s = [], []
    if args.render:
        from gesture_snn.synthetic import SIZES, plan, render_sample
        import dataclasses

        config = dataclasses.replace(SIZES[args.render], seed=args.seed)
        specs = plan(config)
        chosen = np.random.default_rng(12345).choice(len(specs), size=min(args.sample, len(specs)), replace=False)
        for i in sorted(chosen):
            start = time.perf_counter()
            raw = render_sample(config, specs[i])
            render_s.append(time.perf_counter() - start)
            rows.append(stats(raw))
        label = f"{args.render} (render of {len(rows)} of {len(specs)} recordings)"
    elif args.data:
        files = sorted(Path(args.data, "DVSGesture").glob("ibmGesture*/*/*.npy"))
        for path in files:
            rows.append(stats(np.load(path)))
        label = f"{args.data} ({len(rows)} recordings)"
    else:
        parser.error("pass --data or --render")
    print(label)
    for key in ("events", "seconds", "events_per_s", "on_share", "active_pixels", "frame_s"):
        v = np.array([r[key] for r in rows])
        q = np.percentile(v, [0, 5, 50, 95, 100])
        print(f"  {key:14s} mean {v.mean():11.4g}   min {q[0]:10.4g}  5% {q[1]:10.4g}  median {q[2]:10.4g}  95% {q[3]:10.4g}  max {q[4]:10.4g}")
    events = np.array([r["events"] for r in rows])
    frame_s = np.array([r["frame_s"] for r in rows])
    print(f"  framing: {events.sum() / frame_s.sum() / 1e6:.1f} M events/s, {len(rows) / frame_s.sum():.0f} recordings/s")
    if render_s:
        print(f"  rendering: {np.mean(render_s):.3f} s per recording (one core), {events.sum() / np.sum(render_s) / 1e6:.2f} M events/s")
    print(f"  peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(rows))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 4, figsize=(12, 2.6))
        panels = (
            ("events", "events per recording", True),
            ("events_per_s", "events per second", True),
            ("on_share", "share of ON events", False),
            ("active_pixels", "active pixels", False),
        )
        for ax, (key, title, log) in zip(axes, panels):
            v = np.array([r[key] for r in rows], dtype=float)
            bins = np.geomspace(v.min(), v.max(), 30) if log else 30
            ax.hist(v, bins=bins, color="0.3")
            if log:
                ax.set_xscale("log")
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
        fig.suptitle(label, fontsize=9)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=80)
        print(f"  plot: {args.plot} ({Path(args.plot).stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
