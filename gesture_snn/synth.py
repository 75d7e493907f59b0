"""A synthetic event-camera gesture set in the on-disk layout of tonic's DVS128 Gesture.

:func:`generate` writes ``OUT/DVSGesture/ibmGestureTrain|ibmGestureTest/userNN_<lighting>/<label>.npy``
plus the placeholder archives ``ibmGestureTrain.tar.gz`` / ``ibmGestureTest.tar.gz``, so that
``tonic.datasets.DVSGesture(OUT, train=...)``, unmodified, loads it without a download.

Each recording is simulated in three stages (docs/synthetic_data.md has the details and numbers):

1. **Scene.** A person faces the camera; both arms are drawn as chains of Gaussian blobs from the
   shoulder to the hand, brighter than a smooth static background (log intensity). The gesture
   (label) moves the hands periodically, several cycles per recording; each user has their own
   body position, size, speed and amplitude; each recording jitters them slightly.
2. **Camera.** A contrast-threshold pixel model on the log intensity rendered every
   ``step_ms``: a pixel emits an ON (OFF) event each time its log intensity has risen (fallen)
   by its threshold since its last event; thresholds vary per pixel and per polarity (fixed
   pattern of one camera); event times are interpolated inside the step and a pixel is silent
   for a refractory period after each event (the change it misses is emitted afterwards).
3. **Noise.** Background-activity events (uniform over the sensor, Poisson in time) at a rate set
   by the lighting condition, plus a few hot pixels of the camera. Lighting also scales the
   contrast between hands and background.

Every recording has its own random generator seeded from (seed, split, user, lighting, label),
so the bytes of a file depend on nothing else (not on the order or the number of workers).

Conventions: x to the right, y downwards (row index), 0..127. The subject faces the camera, so
the subject's right arm is on the left of the image (x < 64). Clockwise means clockwise as the
image is displayed with y downwards (as ``imshow`` shows it).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import math
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gesture_snn.errors import UserError
from gesture_snn.rundir import atomic_write, atomic_write_json

__all__ = [
    "LIGHTINGS",
    "SIZES",
    "TRAIN_USERS",
    "TEST_USERS",
    "GENERATOR_VERSION",
    "Lighting",
    "CameraModel",
    "SynthConfig",
    "SampleSpec",
    "SynthSummary",
    "plan",
    "render_sample",
    "generate",
]

#: Bump whenever a change to this module changes the bytes it writes.
GENERATOR_VERSION = 1

SENSOR_WIDTH = SENSOR_HEIGHT = 128
N_CLASSES = 11
#: Users 1-23 record the training split, 24-29 the test split (as in the real set).
TRAIN_USERS = tuple(range(1, 24))
TEST_USERS = tuple(range(24, 30))
#: Split name -> tonic's folder name.
SPLIT_FOLDERS = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}
MANIFEST_NAME = "synth_manifest.json"
_IN_PROGRESS = ".synth_in_progress"  # marks DVSGesture.partial as ours while it is being written
#: tonic 1.7.0 skips its download only if a split folder holds at least this many .npy files.
TONIC_MIN_FILES = 100


@dataclass(frozen=True)
class Lighting:
    """One lighting condition of the recordings.

    Parameters
    ----------
    contrast:
        Multiplier of the log-intensity contrast between the hands and the background.
    noise_hz:
        Background-activity rate per pixel, in events per second (both polarities together).
    """

    contrast: float
    noise_hz: float

    def __post_init__(self):
        if not self.contrast > 0:
            raise ValueError(f"contrast must be > 0, got {self.contrast}")
        if not self.noise_hz >= 0:
            raise ValueError(f"noise_hz must be >= 0, got {self.noise_hz}")


#: The five lighting folders of the real set. Dimmer, artificial light: less contrast, more noise.
LIGHTINGS: dict[str, Lighting] = {
    "fluorescent": Lighting(contrast=1.0, noise_hz=0.15),
    "fluorescent_led": Lighting(contrast=0.9, noise_hz=0.2),
    "lab": Lighting(contrast=1.1, noise_hz=0.1),
    "led": Lighting(contrast=0.8, noise_hz=0.3),
    "natural": Lighting(contrast=1.2, noise_hz=0.05),
}
_LIGHTING_NAMES = tuple(LIGHTINGS)


@dataclass(frozen=True)
class CameraModel:
    """The contrast-threshold pixel model of the simulated 128 x 128 camera.

    Parameters
    ----------
    threshold:
        Nominal contrast threshold, in log-intensity units, for ON and OFF events.
    threshold_mismatch:
        Relative standard deviation of the per-pixel, per-polarity thresholds (fixed pattern).
    refractory_ms:
        Minimum time between two events of one pixel, in milliseconds.
    hot_pixels:
        Number of pixels that fire spontaneously at ``hot_pixel_hz`` (same pixels in every recording).
    hot_pixel_hz:
        Event rate of a hot pixel, in events per second.
    """

    threshold: float = 0.2
    threshold_mismatch: float = 0.1
    refractory_ms: float = 1.0
    hot_pixels: int = 4
    hot_pixel_hz: float = 15.0

    def __post_init__(self):
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0 (log-intensity units), got {self.threshold}")
        if not 0 <= self.threshold_mismatch <= 0.3:
            raise ValueError(f"threshold_mismatch must be in [0, 0.3], got {self.threshold_mismatch}")
        if not self.refractory_ms >= 0:
            raise ValueError(f"refractory_ms must be >= 0, got {self.refractory_ms}")
        if self.hot_pixels < 0 or self.hot_pixel_hz < 0:
            raise ValueError("hot_pixels and hot_pixel_hz must be >= 0")


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`generate` writes.

    Parameters
    ----------
    seed:
        Seed of everything random (>= 0); the same seed gives the same bytes.
    duration_ms:
        Length of every recording, in milliseconds.
    step_ms:
        Rendering time step of the scene, in milliseconds (event times are interpolated inside it).
    train_lightings, test_lightings:
        (fewest, most) lighting conditions recorded per user of each split; each user gets a
        random number in that range, the conditions chosen at random. The test split needs at
        least 2 (6 users x 11 classes x 2 = 132 files; tonic wants 100 per split).
    camera:
        The pixel model.
    """

    seed: int = 0
    duration_ms: int = 2000
    step_ms: float = 5.0
    train_lightings: tuple[int, int] = (1, 1)
    test_lightings: tuple[int, int] = (2, 2)
    camera: CameraModel = CameraModel()

    def __post_init__(self):
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not (isinstance(self.duration_ms, int) and self.duration_ms >= 100):
            raise ValueError(f"duration_ms must be an integer >= 100, got {self.duration_ms!r}")
        if not 0.5 <= self.step_ms <= 10:
            raise ValueError(f"step_ms must be in [0.5, 10] ms, got {self.step_ms}")
        for name, users in (("train_lightings", TRAIN_USERS), ("test_lightings", TEST_USERS)):
            low, high = getattr(self, name)
            if not 1 <= low <= high <= len(LIGHTINGS):
                raise ValueError(f"{name} must be (fewest, most) with 1 <= fewest <= most <= 5, got {(low, high)}")
            if len(users) * N_CLASSES * low < TONIC_MIN_FILES:
                raise ValueError(
                    f"{name}: at least {math.ceil(TONIC_MIN_FILES / (len(users) * N_CLASSES))} lighting "
                    f"conditions per user are needed for the {TONIC_MIN_FILES} files per split that "
                    f"tonic requires, got {low}"
                )

    def to_json(self) -> dict:
        """The configuration as plain JSON types (what the manifest records)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


#: Named sizes: ``tiny`` for tests (seconds), ``quick`` for the demo, ``full`` like the real set.
SIZES: dict[str, SynthConfig] = {
    "tiny": SynthConfig(duration_ms=300),
    "quick": SynthConfig(duration_ms=2000, train_lightings=(2, 2)),
    "full": SynthConfig(duration_ms=6000, train_lightings=(3, 5), test_lightings=(3, 5)),
}


@dataclass(frozen=True)
class SampleSpec:
    """One recording: a user performing gesture ``label`` under one lighting condition."""

    split: str
    user: int
    lighting: str
    label: int

    @property
    def relpath(self) -> str:
        """Path below ``DVSGesture/``, e.g. ``ibmGestureTrain/user03_led/7.npy``."""
        return f"{SPLIT_FOLDERS[self.split]}/user{self.user:02d}_{self.lighting}/{self.label}.npy"


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` did: ``created`` False when the set was already there."""

    root: Path
    created: bool
    files: dict[str, int]
    events: int
    seconds: float

    def __str__(self) -> str:
        n_files = sum(self.files.values())
        counts = f"{self.files['train']} train + {self.files['test']} test files"
        if not self.created:
            return f"synthetic set already in {self.root} ({counts}); pass --force to regenerate it"
        return (
            f"wrote {counts} to {self.root}: {self.events / 1e6:.2f} M events "
            f"({self.events / max(n_files, 1) / 1e3:.1f} k per recording) in {self.seconds:.1f} s"
        )


# --------------------------------------------------------------------------------------------
# Random streams. Each stream is keyed by what it describes, never by generation order.

_CAMERA, _USER, _LIGHTING_CHOICE, _SAMPLE = 0, 1, 2, 4  # fixed values: a change alters every file


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _user_lightings(config: SynthConfig, split: str, user: int) -> tuple[str, ...]:
    low, high = config.train_lightings if split == "train" else config.test_lightings
    rng = _rng(config.seed, _LIGHTING_CHOICE, user)
    count = int(rng.integers(low, high + 1))
    chosen = np.sort(rng.choice(len(LIGHTINGS), size=count, replace=False))
    return tuple(_LIGHTING_NAMES[i] for i in chosen)


def plan(config: SynthConfig) -> list[SampleSpec]:
    """Every recording ``config`` describes, in a fixed order (split, user, lighting, label)."""
    specs = []
    for split, users in (("train", TRAIN_USERS), ("test", TEST_USERS)):
        for user in users:
            for lighting in _user_lightings(config, split, user):
                specs.extend(SampleSpec(split, user, lighting, label) for label in range(N_CLASSES))
    return specs


# --------------------------------------------------------------------------------------------
# Scene: bodies and gestures


@dataclass(frozen=True)
class _Body:
    """Where a user stands and how they move (pixels, Hz)."""

    center_x: float  # x of the body axis
    shoulder_y: float
    scale: float  # body size
    speed: float  # multiplies every gesture frequency
    amplitude: float  # multiplies every gesture amplitude
    skin_contrast: float  # log-intensity of the arms above the background
    roll_direction: int  # +1 or -1: the way this user rolls their arms

    @property
    def right_shoulder(self) -> np.ndarray:
        return np.array([self.center_x - 16 * self.scale, self.shoulder_y])

    @property
    def left_shoulder(self) -> np.ndarray:
        return np.array([self.center_x + 16 * self.scale, self.shoulder_y])

    def rest(self, shoulder: np.ndarray, side: int) -> np.ndarray:
        """A hand hanging still beside the hip (side -1 right arm, +1 left arm)."""
        return shoulder + self.scale * np.array([4.0 * side, 44.0])


def _user_body(seed: int, user: int) -> _Body:
    rng = _rng(seed, _USER, user)
    return _Body(
        center_x=64 + rng.uniform(-5, 5),
        shoulder_y=50 + rng.uniform(-4, 4),
        scale=rng.uniform(0.9, 1.1),
        speed=rng.uniform(0.85, 1.2),
        amplitude=rng.uniform(0.9, 1.1),
        skin_contrast=rng.uniform(0.7, 1.0),
        roll_direction=int(rng.choice([-1, 1])),
    )


def _jitter_body(body: _Body, rng: np.random.Generator) -> _Body:
    """The same user in another recording: stands a little elsewhere, moves a little differently."""
    return dataclasses.replace(
        body,
        center_x=body.center_x + rng.uniform(-2, 2),
        shoulder_y=body.shoulder_y + rng.uniform(-2, 2),
        speed=body.speed * rng.uniform(0.93, 1.07),
        amplitude=body.amplitude * rng.uniform(0.93, 1.07),
    )


def _circle(center, radius, angle) -> np.ndarray:
    return center + radius * np.stack([np.cos(angle), np.sin(angle)], axis=-1)


# A gesture maps (body, time [s], phase offset [rad], rng) to the two hand trajectories
# (right, left), each [T, 2] in pixels; a still hand is a [T, 2] array of one position.
Gesture = Callable[[_Body, np.ndarray, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _phase(body: _Body, hz: float, t: np.ndarray, phase0: float) -> np.ndarray:
    return 2 * np.pi * hz * body.speed * t + phase0


def _still(point: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.broadcast_to(point, (len(t), 2)).copy()


def _one_arm(b: _Body, side: int, hand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) hands when only the arm on ``side`` (-1 right, +1 left) moves."""
    if side < 0:
        return hand, _still(b.rest(b.left_shoulder, +1), hand[:, 0])
    return _still(b.rest(b.right_shoulder, -1), hand[:, 0]), hand


def _hand_clapping(b, t, phase0, rng):
    phi = _phase(b, 1.5, t, phase0)
    half_gap = b.scale * (5.0 + 15.0 * b.amplitude * (1 + np.cos(phi)) / 2)
    y = np.full_like(t, b.shoulder_y + 22 * b.scale)
    return np.stack([b.center_x - half_gap, y], 1), np.stack([b.center_x + half_gap, y], 1)


def _hand_wave(side: int) -> Gesture:
    def wave(b, t, phase0, rng):
        shoulder = b.right_shoulder if side < 0 else b.left_shoulder
        phi = _phase(b, 1.8, t, phase0)
        x = shoulder[0] + b.scale * (4.0 * side + 12.0 * b.amplitude * np.sin(phi))
        return _one_arm(b, side, np.stack([x, np.full_like(t, shoulder[1] - 24 * b.scale)], 1))

    return wave


def _arm_circle(side: int, direction: int) -> Gesture:
    """Arm circling beside the body; ``direction`` +1 clockwise, -1 counter-clockwise (image)."""

    def circle(b, t, phase0, rng):
        shoulder = b.right_shoulder if side < 0 else b.left_shoulder
        center = shoulder + b.scale * np.array([6.0 * side, 8.0])
        angle = direction * _phase(b, 1.1, t, phase0)
        return _one_arm(b, side, _circle(center, 22.0 * b.scale * b.amplitude, angle))

    return circle


def _arm_roll(b, t, phase0, rng):
    angle = b.roll_direction * _phase(b, 1.5, t, phase0)
    center = np.array([b.center_x, b.shoulder_y + 24 * b.scale])
    offset = np.array([5.0 * b.scale, 0.0])
    radius = 8.0 * b.scale * b.amplitude
    return _circle(center - offset, radius, angle), _circle(center + offset, radius, angle + np.pi)


def _air_drums(b, t, phase0, rng):
    phi = _phase(b, 2.0, t, phase0)
    stroke = 9.0 * b.scale * b.amplitude * np.sin(phi)
    y = b.shoulder_y + 34 * b.scale
    right = np.stack([np.full_like(t, b.center_x - 20 * b.scale), y + stroke], 1)
    left = np.stack([np.full_like(t, b.center_x + 20 * b.scale), y - stroke], 1)
    return right, left


def _air_guitar(b, t, phase0, rng):
    phi = _phase(b, 2.6, t, phase0)
    strum = b.scale * np.stack([-4 + 2.0 * np.sin(phi), 32 + 8.0 * b.amplitude * np.sin(phi)], 1)
    fret = b.scale * np.stack([np.full_like(t, 26.0), 14 + 1.5 * np.sin(_phase(b, 0.7, t, phase0))], 1)
    base = np.array([b.center_x, b.shoulder_y])
    return base + strum, base + fret


def _other(b, t, phase0, rng):
    """One hand fidgets near the head (aperiodic: three random frequencies per axis); the other rests."""
    side = int(rng.choice([-1, 1]))
    center = np.array([b.center_x, b.shoulder_y]) + b.scale * np.array([rng.uniform(-8, 8), rng.uniform(-28, -14)])
    hz = rng.uniform(0.4, 3.0, size=(3, 2))
    amplitude = b.scale * rng.uniform(1.5, 5.0, size=(3, 2))
    phase = rng.uniform(0, 2 * np.pi, size=(3, 2))
    return _one_arm(b, side, center + (amplitude * np.sin(2 * np.pi * hz * t[:, None, None] + phase)).sum(axis=1))


#: Label -> gesture, in the order of tonic's ``DVSGesture.classes``.
GESTURES: tuple[Gesture, ...] = (
    _hand_clapping,  # 0 hand clapping
    _hand_wave(-1),  # 1 right hand wave
    _hand_wave(+1),  # 2 left hand wave
    _arm_circle(-1, +1),  # 3 right arm clockwise
    _arm_circle(-1, -1),  # 4 right arm counter-clockwise
    _arm_circle(+1, +1),  # 5 left arm clockwise
    _arm_circle(+1, -1),  # 6 left arm counter-clockwise
    _arm_roll,  # 7 arm roll
    _air_drums,  # 8 air drums
    _air_guitar,  # 9 air guitar
    _other,  # 10 other gestures
)

# Arms are chains of Gaussian blobs from the shoulder to the hand: (fraction of the way, sigma in px
# at scale 1). A pixel's cover is min(1, _BLOB_GAIN * max over blobs): flat tops, soft edges.
_ARM_BLOBS = ((0.4, 2.6), (0.7, 2.6), (1.0, 4.0))
_BLOB_GAIN = 1.6
_MOVING_PX = 0.3  # a blob whose centre moves less than this is part of the static background


def _render_log_intensity(
    arms: list[tuple[np.ndarray, np.ndarray]], body: _Body, contrast: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log intensity [T, P] of the pixels that can change, and their x and y.

    Only the bounding box of the moving blobs is rendered: everything else is static and makes
    no events. The static background is a smooth random texture.
    """
    blobs = []  # (centres [T, 2], sigma)
    for shoulder, hand in arms:
        for fraction, sigma in _ARM_BLOBS:
            blobs.append((shoulder + fraction * (hand - shoulder), sigma * body.scale))
    n_steps = len(blobs[0][0])
    moving = [(c, s) for c, s in blobs if np.ptp(c, axis=0).max() >= _MOVING_PX]
    x0 = y0 = x1 = y1 = 0
    if moving:
        low = np.min([c.min(axis=0) - 3 * s for c, s in moving], axis=0)
        high = np.max([c.max(axis=0) + 3 * s for c, s in moving], axis=0)
        x0, y0 = np.clip(np.floor(low), 0, SENSOR_WIDTH).astype(int)
        x1, y1 = np.clip(np.ceil(high) + 1, 0, SENSOR_WIDTH).astype(int)
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)
    if xs.size == 0 or ys.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros((n_steps, 0), np.float32), empty, empty

    cover = np.zeros((n_steps, ys.size, xs.size), np.float32)
    for centres, sigma in blobs:
        c = centres.astype(np.float32)
        gx = np.exp(-((xs[None, :] - c[:, :1]) ** 2) / np.float32(2 * sigma**2))
        gy = np.exp(-((ys[None, :] - c[:, 1:]) ** 2) / np.float32(2 * sigma**2))
        if gx.max() < 1e-3 or gy.max() < 1e-3:
            continue  # never inside the rendered box
        np.maximum(cover, gy[:, :, None] * gx[:, None, :], out=cover)
    np.multiply(cover, _BLOB_GAIN, out=cover)
    np.minimum(cover, 1, out=cover)

    background = _background(xs, ys, rng)
    cover *= (contrast - background)[None]
    cover += background[None]
    yy, xx = np.meshgrid(ys.astype(np.int64), xs.astype(np.int64), indexing="ij")
    return cover.reshape(n_steps, -1), xx.ravel(), yy.ravel()


def _background(xs: np.ndarray, ys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth static log-intensity texture of about +-0.15 around 0 (clothes, wall)."""
    k = rng.uniform(-0.12, 0.12, size=(4, 2)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=4).astype(np.float32)
    waves = np.cos(k[:, 0, None, None] * xs[None, None, :] + k[:, 1, None, None] * ys[None, :, None] + phase[:, None, None])
    return (0.075 * waves.sum(axis=0)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Camera: contrast-threshold pixels, background activity, hot pixels


def _camera_pattern(config: SynthConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel ON and OFF thresholds [128 * 128] and hot-pixel indices of the one camera."""
    cam = config.camera
    rng = _rng(config.seed, _CAMERA)
    n = SENSOR_WIDTH * SENSOR_HEIGHT
    on, off = cam.threshold * (1 + cam.threshold_mismatch * rng.standard_normal((2, n)))
    floor = 0.25 * cam.threshold
    hot = rng.choice(n, size=cam.hot_pixels, replace=False)
    return np.maximum(on, floor).astype(np.float32), np.maximum(off, floor).astype(np.float32), hot


def _contrast_events(
    log_i: np.ndarray, c_on: np.ndarray, c_off: np.ndarray, *, step_ms: float, refractory_ms: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events of pixels with log intensity ``log_i`` [T, P] sampled every ``step_ms``.

    Returns (pixel index into P, time in ms as float, polarity 0/1), unsorted. Pixels start
    adapted to ``log_i[0]``. A pixel that has changed by k thresholds since its last event fires k
    events at the interpolated crossing times, each at least ``refractory_ms`` after the one
    before; crossings that do not fit into the step stay pending and fire in the next steps.
    """
    n_steps, n_pix = log_i.shape
    reference = log_i[0].copy()
    last = np.full(n_pix, -np.inf)
    neg_c_off = -c_off
    out_pix, out_t, out_p = [], [], []
    for step in range(1, n_steps):
        now = log_i[step]
        change = now - reference
        fire = np.flatnonzero((change >= c_on) | (change <= neg_c_off))
        if fire.size == 0:
            continue
        t_begin, t_end = (step - 1) * step_ms, step * step_ms
        delta = change[fire]
        sign = np.where(delta > 0, np.float32(1), np.float32(-1))
        threshold = np.where(delta > 0, c_on[fire], c_off[fire])
        count = (np.abs(delta) / threshold).astype(np.int64)
        k = np.arange(count.max())
        # crossing times of the levels reference + sign * (k + 1) * threshold, linear in the step
        before = log_i[step - 1, fire]
        rise = (now[fire] - before) * sign
        level = (reference[fire, None] + (sign * threshold)[:, None] * (k + 1) - before[:, None]) * sign[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(rise[:, None] > 1e-6, np.clip(level / rise[:, None], 0, 1), 0)
        times = t_begin + fraction * step_ms
        times[:, 0] = np.maximum(times[:, 0], last[fire] + refractory_ms)
        times = np.maximum.accumulate(times - k * refractory_ms, axis=1) + k * refractory_ms
        emit = (k[None, :] < count[:, None]) & (times < t_end)
        emitted = emit.sum(axis=1)
        reference[fire] += sign * threshold * emitted
        rows, cols = np.nonzero(emit)
        fired = emitted > 0
        last[fire[fired]] = times[fired, emitted[fired] - 1]
        out_pix.append(fire[rows])
        out_t.append(times[rows, cols])
        out_p.append(delta[rows] > 0)
    if not out_pix:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
    return np.concatenate(out_pix), np.concatenate(out_t), np.concatenate(out_p)


def _noise_events(
    config: SynthConfig, lighting: Lighting, hot: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Background activity (uniform, Poisson) and hot-pixel events: x, y, t [ms], p."""
    seconds = config.duration_ms / 1000
    n_pix = SENSOR_WIDTH * SENSOR_HEIGHT
    n_background = rng.poisson(lighting.noise_hz * n_pix * seconds)
    n_hot = rng.poisson(config.camera.hot_pixel_hz * seconds, size=hot.size)
    pixel = np.concatenate([rng.integers(0, n_pix, n_background), np.repeat(hot, n_hot)])
    t = rng.uniform(0, config.duration_ms, pixel.size)
    p = rng.random(pixel.size) < 0.5
    return pixel % SENSOR_WIDTH, pixel // SENSOR_WIDTH, t, p


def render_sample(config: SynthConfig, spec: SampleSpec) -> np.ndarray:
    """The events of one recording: int32 [N, 4], columns x, y, p, t (ms), sorted by t.

    x, y in 0..127, p 1 = ON, 0 = OFF, t in whole milliseconds in ``[0, duration_ms)``.
    Deterministic: depends only on ``config`` and ``spec``.
    """
    if spec.split not in SPLIT_FOLDERS:
        raise ValueError(f"split must be 'train' or 'test', got {spec.split!r}")
    if spec.label not in range(N_CLASSES):
        raise ValueError(f"label must be in 0..{N_CLASSES - 1}, got {spec.label}")
    if spec.lighting not in LIGHTINGS:
        raise ValueError(f"lighting must be one of {_LIGHTING_NAMES}, got {spec.lighting!r}")
    lighting = LIGHTINGS[spec.lighting]
    split_id = tuple(SPLIT_FOLDERS).index(spec.split)
    lighting_id = _LIGHTING_NAMES.index(spec.lighting)
    rng = _rng(config.seed, _SAMPLE, split_id, spec.user, lighting_id, spec.label)

    body = _jitter_body(_user_body(config.seed, spec.user), rng)
    n_steps = int(round(config.duration_ms / config.step_ms)) + 1
    t = np.arange(n_steps) * (config.step_ms / 1000)
    right, left = GESTURES[spec.label](body, t, rng.uniform(0, 2 * np.pi), rng)
    arms = [(body.right_shoulder, right), (body.left_shoulder, left)]
    log_i, px, py = _render_log_intensity(arms, body, body.skin_contrast * lighting.contrast, rng)

    c_on, c_off, hot = _camera_pattern(config)
    pixel = py * SENSOR_WIDTH + px
    idx, t_motion, p_motion = _contrast_events(
        log_i, c_on[pixel], c_off[pixel], step_ms=config.step_ms, refractory_ms=config.camera.refractory_ms
    )
    nx, ny, nt, npol = _noise_events(config, lighting, hot, rng)

    x = np.concatenate([px[idx], nx])
    y = np.concatenate([py[idx], ny])
    times = np.concatenate([t_motion, nt])
    p = np.concatenate([p_motion, npol])
    keep = times < config.duration_ms
    order = np.argsort(times[keep], kind="stable")
    events = np.stack([x[keep], y[keep], p[keep], np.floor(times[keep])], axis=1)[order]
    return events.astype(np.int32)


# --------------------------------------------------------------------------------------------
# Writing a set


def _write_sample(task: tuple[SynthConfig, SampleSpec, str]) -> int:
    config, spec, root = task
    events = render_sample(config, spec)
    path = Path(root) / spec.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, events)
    return len(events)


def _placeholder_archive(folder: str) -> bytes:
    """A valid, deterministic .tar.gz holding a README: tonic only checks that the file exists."""
    text = (
        f"Placeholder for {folder}.tar.gz, written by `gesture-snn synth`.\n"
        f"The {folder}/ folder next to it holds a synthetic gesture set, not DVS128 Gesture.\n"
        "tonic.datasets.DVSGesture skips its download when this file and >= 100 .npy files exist.\n"
    ).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo("README.synthetic.txt")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    return buffer.getvalue()


def _manifest_entry(size: str, config: SynthConfig) -> dict:
    return {"generator": "gesture_snn.synth", "version": GENERATOR_VERSION, "size": size, "config": config.to_json()}


def _existing_set(root: Path, size: str, config: SynthConfig, specs: list[SampleSpec]) -> dict | None:
    """The manifest of the complete synthetic set at ``root`` if it matches; UserError otherwise."""
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UserError(
            f"{root} exists but is not a synthetic set written by `gesture-snn synth` (no "
            f"{MANIFEST_NAME}); it may be the real DVS128 Gesture. Refusing to overwrite it: choose "
            "another --out directory."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{manifest_path} is unreadable ({exc}); check {root} and delete it yourself") from exc
    if {k: manifest.get(k) for k in ("generator", "version", "size", "config")} != _manifest_entry(size, config):
        return None
    missing = [s.relpath for s in specs if not (root / s.relpath).is_file()]
    if missing:
        raise UserError(
            f"{root} is a synthetic set with the same parameters but {len(missing)} of its "
            f"{len(specs)} files are missing (first: {missing[0]}); pass --force to regenerate it"
        )
    return manifest


def generate(
    out: str | os.PathLike,
    *,
    size: str = "quick",
    seed: int = 0,
    config: SynthConfig | None = None,
    force: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> SynthSummary:
    """Write the synthetic set to ``out/DVSGesture`` (tonic's layout) and return a summary.

    Parameters
    ----------
    out:
        The root passed to ``tonic.datasets.DVSGesture(out, ...)``.
    size:
        ``"tiny"`` (tests), ``"quick"`` (demo) or ``"full"``, see :data:`SIZES`.
    seed:
        Seed of the set (>= 0).
    config:
        An explicit configuration instead of ``SIZES[size]`` with ``seed`` (recorded as size "custom").
    force:
        Regenerate even if the same set is already there.
    workers:
        Processes to render with (default: up to 2). The bytes do not depend on it.
    progress:
        Show a progress bar.

    The set is written into ``out/DVSGesture.partial`` and renamed to ``out/DVSGesture`` when
    complete, so an interrupted run never leaves a set that looks complete. An existing
    ``out/DVSGesture`` that this function did not write is never touched (UserError). If the same
    set (same generator version, size and configuration) is there, nothing is written unless
    ``force``; if another synthetic set is there, ``force`` is required to replace it.
    """
    if config is not None:
        size = "custom"
    else:
        if size not in SIZES:
            raise UserError(f"unknown size {size!r}: choose one of {', '.join(SIZES)}")
        try:
            config = dataclasses.replace(SIZES[size], seed=seed)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    out = Path(out).expanduser()
    root = out / "DVSGesture"
    partial = out / "DVSGesture.partial"
    specs = plan(config)
    counts = {split: sum(s.split == split for s in specs) for split in SPLIT_FOLDERS}

    if root.exists():
        manifest = _existing_set(root, size, config, specs)
        if manifest is not None and not force:
            return SynthSummary(root, created=False, files=counts, events=int(manifest.get("events", 0)), seconds=0.0)
        if manifest is None and not force:
            raise UserError(
                f"{root} holds a synthetic set with other parameters (see {root / MANIFEST_NAME}); "
                "pass --force to replace it, or choose another --out directory"
            )
    if partial.exists():
        if not (partial / _IN_PROGRESS).exists():
            raise UserError(f"{partial} exists and was not left by `gesture-snn synth`; move it away first")
        shutil.rmtree(partial)
    for stale in out.glob("DVSGesture.replaced-*"):  # left by a run killed while swapping folders
        if (stale / MANIFEST_NAME).is_file():
            shutil.rmtree(stale)
    partial.mkdir(parents=True)
    (partial / _IN_PROGRESS).touch()

    start = time.perf_counter()
    events = _render_all(config, specs, partial, workers=workers, progress=progress)
    for folder in SPLIT_FOLDERS.values():
        archive = _placeholder_archive(folder)
        atomic_write(partial / f"{folder}.tar.gz", lambda f: f.write(archive), binary=True)
    manifest = _manifest_entry(size, config) | {"files": counts, "events": events}
    atomic_write_json(partial / MANIFEST_NAME, manifest)

    if root.exists():  # a synthetic set being replaced (checked above)
        retired = out / f"DVSGesture.replaced-{os.getpid()}"
        os.replace(root, retired)
        os.replace(partial, root)
        shutil.rmtree(retired)
    else:
        os.replace(partial, root)
    (root / _IN_PROGRESS).unlink()
    return SynthSummary(root, created=True, files=counts, events=events, seconds=time.perf_counter() - start)


def _render_all(config: SynthConfig, specs: list[SampleSpec], root: Path, *, workers: int, progress: bool) -> int:
    from tqdm.auto import tqdm

    tasks = [(config, spec, str(root)) for spec in specs]
    bar = tqdm(total=len(tasks), desc="synth", unit="rec", disable=not progress)
    total = 0
    if workers == 1:
        for task in tasks:
            total += _write_sample(task)
            bar.update()
    else:
        import multiprocessing

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            for n_events in pool.imap_unordered(_write_sample, tasks, chunksize=4):
                total += n_events
                bar.update()
    bar.close()
    return total
