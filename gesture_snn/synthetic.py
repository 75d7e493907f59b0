"""A synthetic event-camera gesture set in the on-disk layout of tonic's DVS128 Gesture.

:func:`generate` writes ``OUT/DVSGesture/ibmGestureTrain|ibmGestureTest/userNN_<lighting>/<label>.npy``
plus the placeholder archives ``ibmGestureTrain.tar.gz`` / ``ibmGestureTest.tar.gz``, so that
``tonic.datasets.DVSGesture(OUT, train=...)``, unmodified, loads it without a download.

The set is built so that only a network that reads the order of frames can solve it: the
direction of an arm circle (the cw/ccw classes) is visible only in time. Each recording is
simulated in three stages (docs/synthetic_data.md has the details and numbers):

1. **Scene.** A person stands in front of a textured wall; torso, head and two arms (chains of
   Gaussian blobs, textured sleeves and bare hands) are drawn in log intensity. Per session
   (user x lighting) the clothes and the skin are brighter *or* darker than the wall (random
   signs), so the ON/OFF layout of a moving edge does not give its direction. The body sways and
   breathes; the gesture starts after a still period, at the user's tempo (0.6-1.6x) with a
   drift, runs a variable number of cycles and ends with a still hand; recordings differ in
   length. Some recordings have a second person walking past in the background.
2. **Camera.** A contrast-threshold pixel model on the log intensity rendered every
   ``step_ms``: a pixel emits an ON (OFF) event each time its log intensity has risen (fallen)
   by its threshold since its last event; thresholds vary per pixel and per polarity (fixed
   pattern of one camera); event times are interpolated inside the step and a pixel is silent
   for a refractory period after each event (the change it misses is emitted afterwards).
3. **Noise and light.** Background activity (Poisson, 0.1-5 Hz per pixel by lighting, with a
   fixed per-pixel pattern), hot pixels of the camera, and under fluorescent light a 100 or
   120 Hz flicker that makes some pixels fire an ON and an OFF event every light cycle.

Every recording has its own random generators seeded from (seed, split, user, lighting) for what
one recording session shares and (seed, split, user, lighting, label) for the rest, so the bytes
of a file depend on nothing else (not on the order or the number of workers).

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

from gesture_snn.data import GENERATOR_MANIFEST
from gesture_snn.spec.errors import UserError
from gesture_snn.spec.files import atomic_write, atomic_write_json

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
GENERATOR_VERSION = 2

SENSOR_WIDTH = SENSOR_HEIGHT = 128
N_CLASSES = 11
#: Users 1-23 record the training split, 24-29 the test split (as in the real set).
TRAIN_USERS = tuple(range(1, 24))
TEST_USERS = tuple(range(24, 30))
#: Split name -> tonic's folder name.
SPLIT_FOLDERS = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}
#: The in-progress marker keeps its name from the module's first release (``synth``), like
#: the manifest (:data:`gesture_snn.data.GENERATOR_MANIFEST`), so that sets and partial sets
#: written before the rename are recognised and frame cache keys do not change.
MANIFEST_NAME = GENERATOR_MANIFEST
_IN_PROGRESS = ".synth_in_progress"  # marks DVSGesture.partial as ours while it is being written
#: tonic 1.7.0 skips its download only if a split folder holds at least this many .npy files.
TONIC_MIN_FILES = 100


def _range(name: str, value, *, low: float = 0.0, high: float = math.inf) -> None:
    if not (isinstance(value, tuple) and len(value) == 2 and low <= value[0] <= value[1] <= high):
        raise ValueError(f"{name} must be a (low, high) tuple with {low} <= low <= high <= {high}, got {value!r}")


@dataclass(frozen=True)
class Lighting:
    """One lighting condition of the recordings; each session draws its values from the ranges.

    Parameters
    ----------
    contrast:
        (low, high) multiplier of every log-intensity difference in the scene.
    noise_hz:
        (low, high) mean background-activity rate per pixel, in events per second (both
        polarities together), drawn log-uniformly.
    flicker_pixels:
        (low, high) number of pixels that respond to the flicker of fluorescent tubes (an ON and
        an OFF event per light cycle at 100 or 120 Hz): the camera's pixels with the lowest
        thresholds; (0, 0) for none.
    """

    contrast: tuple[float, float]
    noise_hz: tuple[float, float]
    flicker_pixels: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        _range("contrast", self.contrast, low=1e-3)
        _range("noise_hz", self.noise_hz, low=1e-3)
        _range("flicker_pixels", self.flicker_pixels, high=2000)


#: The five lighting folders of the real set. Fluorescent light flickers and is noisier; natural
#: light gives the most contrast and the least noise.
LIGHTINGS: dict[str, Lighting] = {
    "fluorescent": Lighting(contrast=(0.7, 1.0), noise_hz=(0.2, 1.0), flicker_pixels=(10, 60)),
    "fluorescent_led": Lighting(contrast=(0.6, 0.9), noise_hz=(0.3, 2.0), flicker_pixels=(10, 40)),
    "lab": Lighting(contrast=(0.8, 1.2), noise_hz=(0.1, 0.4)),
    "led": Lighting(contrast=(0.6, 1.0), noise_hz=(0.15, 0.6)),
    "natural": Lighting(contrast=(0.9, 1.3), noise_hz=(0.1, 0.3)),
}
_LIGHTING_NAMES = tuple(LIGHTINGS)
#: Mains-driven flicker of fluorescent light: twice the mains frequency (50 or 60 Hz).
FLICKER_HZ = (100.0, 120.0)


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
    noise_mismatch:
        Standard deviation of the log of the per-pixel background-activity rate (fixed
        pattern; the pattern's mean is 1, so the lighting's rate is the sensor mean).
    hot_pixels:
        Number of pixels that fire spontaneously (same pixels in every recording).
    hot_pixel_hz:
        (low, high) event rate of a hot pixel, in events per second (log-uniform per pixel).
    """

    threshold: float = 0.2
    threshold_mismatch: float = 0.1
    refractory_ms: float = 1.0
    noise_mismatch: float = 0.7
    hot_pixels: int = 12
    hot_pixel_hz: tuple[float, float] = (10.0, 300.0)

    def __post_init__(self):
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0 (log-intensity units), got {self.threshold}")
        if not 0 <= self.threshold_mismatch <= 0.3:
            raise ValueError(f"threshold_mismatch must be in [0, 0.3], got {self.threshold_mismatch}")
        if not self.refractory_ms >= 0:
            raise ValueError(f"refractory_ms must be >= 0, got {self.refractory_ms}")
        if not 0 <= self.noise_mismatch <= 2:
            raise ValueError(f"noise_mismatch must be in [0, 2], got {self.noise_mismatch}")
        if self.hot_pixels < 0:
            raise ValueError("hot_pixels must be >= 0")
        _range("hot_pixel_hz", self.hot_pixel_hz, low=1e-3)


def _ms_range(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`generate` writes.

    Parameters
    ----------
    seed:
        Seed of everything random (>= 0); the same seed gives the same bytes.
    duration_ms:
        (shortest, longest) recording, in milliseconds (an integer: every recording that long);
        each recording draws its length uniformly.
    onset_ms:
        (low, high) still period before the gesture starts moving, in milliseconds (at most a
        quarter of the recording).
    tail_ms:
        (low, high) still period after the gesture, in milliseconds (at most a quarter).
    step_ms:
        Rendering time step of the scene, in milliseconds (event times are interpolated inside it).
    train_lightings, test_lightings:
        (fewest, most) lighting conditions recorded per user of each split; each user gets a
        random number in that range, the conditions chosen at random. The test split needs at
        least 2 (6 users x 11 classes x 2 = 132 files; tonic wants 100 per split).
    train_recordings, test_recordings:
        Exact number of recordings of a split (None: 11 per user and lighting). The lighting
        counts are then drawn to make enough folders and the surplus recordings are left out at
        random, as the real set lacks a few.
    passer_by:
        Probability that a second person walks past in the background of a recording.
    camera:
        The pixel model.
    """

    seed: int = 0
    duration_ms: tuple[int, int] = (2000, 2800)
    onset_ms: tuple[int, int] = (100, 350)
    tail_ms: tuple[int, int] = (100, 400)
    step_ms: float = 5.0
    train_lightings: tuple[int, int] = (1, 1)
    test_lightings: tuple[int, int] = (2, 2)
    train_recordings: int | None = None
    test_recordings: int | None = None
    passer_by: float = 0.25
    camera: CameraModel = CameraModel()

    def __post_init__(self):
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        for name in ("duration_ms", "onset_ms", "tail_ms"):
            value = getattr(self, name)
            if isinstance(value, list):
                value = tuple(value)
            if isinstance(value, int):
                value = (value, value)
            object.__setattr__(self, name, value)
            if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)):
                raise ValueError(f"{name} must be an integer or a (low, high) pair of integers, got {value!r}")
            if not 0 <= value[0] <= value[1]:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {value!r}")
        if self.duration_ms[0] < 100:
            raise ValueError(f"duration_ms must be at least 100, got {self.duration_ms!r}")
        if not 0.5 <= self.step_ms <= 10:
            raise ValueError(f"step_ms must be in [0.5, 10] ms, got {self.step_ms}")
        if not 0 <= self.passer_by <= 1:
            raise ValueError(f"passer_by must be a probability, got {self.passer_by}")
        for split, users in (("train", TRAIN_USERS), ("test", TEST_USERS)):
            name = f"{split}_lightings"
            low, high = getattr(self, name)
            if not 1 <= low <= high <= len(LIGHTINGS):
                raise ValueError(f"{name} must be (fewest, most) with 1 <= fewest <= most <= 5, got {(low, high)}")
            if len(users) * N_CLASSES * low < TONIC_MIN_FILES:
                raise ValueError(
                    f"{name}: at least {math.ceil(TONIC_MIN_FILES / (len(users) * N_CLASSES))} lighting "
                    f"conditions per user are needed for the {TONIC_MIN_FILES} files per split that "
                    f"tonic requires, got {low}"
                )
            count = getattr(self, f"{split}_recordings")
            if count is not None:
                fewest, most = len(users) * low * N_CLASSES, len(users) * high * N_CLASSES
                if not (isinstance(count, int) and max(fewest - N_CLASSES + 1, TONIC_MIN_FILES) <= count <= most):
                    raise ValueError(
                        f"{split}_recordings must be None or an integer that {name} {(low, high)} can "
                        f"hold ({max(fewest - N_CLASSES + 1, TONIC_MIN_FILES)}..{most}), got {count!r}"
                    )

    def to_json(self) -> dict:
        """The configuration as plain JSON types (what the manifest records)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


#: Named sizes: ``tiny`` for tests (seconds), ``quick`` for the demo, ``full`` like the real set.
SIZES: dict[str, SynthConfig] = {
    "tiny": SynthConfig(duration_ms=300, onset_ms=(0, 40), tail_ms=(0, 40)),
    "quick": SynthConfig(
        duration_ms=(2000, 2800), onset_ms=(100, 350), tail_ms=(100, 400), step_ms=10.0, train_lightings=(2, 2)
    ),
    "full": SynthConfig(
        duration_ms=(4000, 8000),
        onset_ms=(150, 500),
        tail_ms=(300, 1200),
        train_lightings=(3, 5),
        test_lightings=(3, 5),
        train_recordings=1077,
        test_recordings=264,
    ),
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

_CAMERA, _USER, _LIGHTING_CHOICE, _SAMPLE, _SESSION, _SPLIT_PLAN = 0, 1, 2, 4, 5, 6  # fixed values


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _split_id(split: str) -> int:
    return tuple(SPLIT_FOLDERS).index(split)


def _lighting_counts(config: SynthConfig, split: str) -> dict[int, int]:
    """User -> number of lighting conditions recorded, for every user of ``split``."""
    users = TRAIN_USERS if split == "train" else TEST_USERS
    low, high = config.train_lightings if split == "train" else config.test_lightings
    target = config.train_recordings if split == "train" else config.test_recordings
    if target is None:  # one draw per user
        return {user: int(_rng(config.seed, _LIGHTING_CHOICE, user).integers(low, high + 1)) for user in users}
    rng = _rng(config.seed, _SPLIT_PLAN, _split_id(split))
    counts = rng.integers(low, high + 1, size=len(users))
    folders = -(-target // N_CLASSES)
    while counts.sum() != folders:
        step = 1 if counts.sum() < folders else -1
        room = np.flatnonzero((counts + step >= low) & (counts + step <= high))
        counts[rng.choice(room)] += step
    return {user: int(c) for user, c in zip(users, counts)}


def _user_lightings(config: SynthConfig, user: int, count: int) -> tuple[str, ...]:
    rng = _rng(config.seed, _LIGHTING_CHOICE, user, 1)
    chosen = np.sort(rng.choice(len(LIGHTINGS), size=count, replace=False))
    return tuple(_LIGHTING_NAMES[i] for i in chosen)


def plan(config: SynthConfig) -> list[SampleSpec]:
    """Every recording ``config`` describes, in a fixed order (split, user, lighting, label)."""
    specs = []
    for split, users in (("train", TRAIN_USERS), ("test", TEST_USERS)):
        counts = _lighting_counts(config, split)
        split_specs = []
        for user in users:
            for lighting in _user_lightings(config, user, counts[user]):
                split_specs.extend(SampleSpec(split, user, lighting, label) for label in range(N_CLASSES))
        target = config.train_recordings if split == "train" else config.test_recordings
        if target is not None and target < len(split_specs):
            rng = _rng(config.seed, _SPLIT_PLAN, _split_id(split), 1)
            dropped = set(rng.choice(len(split_specs), size=len(split_specs) - target, replace=False).tolist())
            split_specs = [s for i, s in enumerate(split_specs) if i not in dropped]
        specs.extend(split_specs)
    return specs


# --------------------------------------------------------------------------------------------
# Scene: bodies and gestures


@dataclass(frozen=True)
class _Body:
    """Where a user stands and how they move (pixels, Hz)."""

    center_x: float  # x of the body axis
    shoulder_y: float
    scale: float  # body size
    tempo: float  # multiplies every gesture frequency (0.6-1.6)
    amplitude: float  # multiplies every gesture amplitude
    roll_direction: int  # +1 or -1: the way this user rolls their arms
    sway_hz: float  # sideways sway of the upper body
    sway_px: float
    breath_hz: float  # breathing: shoulders and chest rise and fall
    breath_px: float

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
        center_x=64 + rng.uniform(-6, 6),
        shoulder_y=48 + rng.uniform(-5, 5),
        scale=rng.uniform(0.85, 1.15),
        tempo=float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))),
        amplitude=rng.uniform(0.85, 1.15),
        roll_direction=int(rng.choice([-1, 1])),
        sway_hz=rng.uniform(0.1, 0.3),
        sway_px=rng.uniform(0.3, 1.0),
        breath_hz=rng.uniform(0.2, 0.35),
        breath_px=rng.uniform(0.2, 0.6),
    )


@dataclass(frozen=True)
class _Session:
    """What the recordings of one user under one lighting share: place, clothes, light, noise."""

    contrast: float  # lighting contrast factor
    noise_hz: float  # mean background activity per pixel
    flicker_pixels: np.ndarray  # pixels that follow the flicker
    flicker_hz: float
    cloth: float  # log reflectance of shirt and sleeves relative to the wall (either sign)
    skin: float  # of face and hands (either sign)
    cloth_texture: tuple[float, float, float, float, float]  # amplitude, kx, ky, phase x, phase y
    wall_waves: tuple[np.ndarray, np.ndarray, np.ndarray]  # wave vectors [K, 2], phases [K], amplitudes [K]
    offset: tuple[float, float]  # where the user stands this time (px)


def _signed(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(low, high))


def _session(config: SynthConfig, spec: SampleSpec) -> _Session:
    lighting = LIGHTINGS[spec.lighting]
    rng = _rng(config.seed, _SESSION, _split_id(spec.split), spec.user, _LIGHTING_NAMES.index(spec.lighting))
    n_waves = 10
    direction = rng.uniform(0, 2 * np.pi, n_waves)
    k = np.exp(rng.uniform(np.log(0.04), np.log(0.8), n_waves))
    amplitude = rng.uniform(0.5, 1.0, n_waves) / (1 + 4 * k)  # finer texture is weaker
    amplitude *= rng.uniform(0.1, 0.3) / np.sqrt(np.sum(amplitude**2) / 2)  # wall texture RMS 0.1-0.3
    # The flicker's depth is the same in every pixel (log intensity); the pixels that follow it
    # are the ones with the lowest thresholds, so always the same pixels of the one camera.
    n_flicker = int(round(rng.uniform(*lighting.flicker_pixels)))
    flicker = _camera_pattern(config)[4][:n_flicker]
    skin = _signed(rng, 0.3, 0.9)
    cloth = _signed(rng, 0.25, 0.9)
    while abs(cloth - skin) < 0.35:  # hands stand out against the shirt
        cloth = _signed(rng, 0.25, 0.9)
    return _Session(
        contrast=rng.uniform(*lighting.contrast),
        noise_hz=float(np.exp(rng.uniform(*np.log(lighting.noise_hz)))),
        flicker_pixels=flicker,
        flicker_hz=float(rng.choice(FLICKER_HZ)),
        cloth=cloth,
        skin=skin,
        cloth_texture=(rng.uniform(0.02, 0.08), rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.4), *rng.uniform(0, 2 * np.pi, 2)),
        wall_waves=(k[:, None] * np.stack([np.cos(direction), np.sin(direction)], 1), rng.uniform(0, 2 * np.pi, n_waves), amplitude),
        offset=(rng.uniform(-3, 3), rng.uniform(-3, 3)),
    )


@dataclass(frozen=True)
class _Clock:
    """Gesture time of one recording: ``tau`` [T] in seconds at tempo 1, 0 before the onset."""

    tau: np.ndarray
    phase0: float

    def phase(self, hz: float) -> np.ndarray:
        return 2 * np.pi * hz * self.tau + self.phase0


def _circle(center, radius, angle) -> np.ndarray:
    return center + radius * np.stack([np.cos(angle), np.sin(angle)], axis=-1)


# A gesture maps (body, clock, rng) to the two hand trajectories (right, left), each [T, 2] in
# pixels, as performed at full extent; a still hand is a [T, 2] array of one position.
Gesture = Callable[[_Body, _Clock, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _still(point: np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(point, (n, 2)).copy()


def _one_arm(b: _Body, side: int, hand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) hands when only the arm on ``side`` (-1 right, +1 left) moves."""
    if side < 0:
        return hand, _still(b.rest(b.left_shoulder, +1), len(hand))
    return _still(b.rest(b.right_shoulder, -1), len(hand)), hand


def _hand_clapping(b, clock, rng):
    phi = clock.phase(1.8)
    half_gap = b.scale * (5.0 + 15.0 * b.amplitude * (1 + np.cos(phi)) / 2)
    y = np.full_like(phi, b.shoulder_y + 22 * b.scale)
    return np.stack([b.center_x - half_gap, y], 1), np.stack([b.center_x + half_gap, y], 1)


def _hand_wave(side: int) -> Gesture:
    def wave(b, clock, rng):
        shoulder = b.right_shoulder if side < 0 else b.left_shoulder
        phi = clock.phase(2.0)
        x = shoulder[0] + b.scale * (4.0 * side + 12.0 * b.amplitude * np.sin(phi))
        return _one_arm(b, side, np.stack([x, np.full_like(phi, shoulder[1] - 24 * b.scale)], 1))

    return wave


def _arm_circle(side: int, direction: int) -> Gesture:
    """Arm circling beside the body; ``direction`` +1 clockwise, -1 counter-clockwise (image)."""

    def circle(b, clock, rng):
        shoulder = b.right_shoulder if side < 0 else b.left_shoulder
        center = shoulder + b.scale * np.array([6.0 * side, 8.0])
        angle = direction * clock.phase(1.5)
        return _one_arm(b, side, _circle(center, 26.0 * b.scale * b.amplitude, angle))

    return circle


def _arm_roll(b, clock, rng):
    angle = b.roll_direction * clock.phase(1.8)
    center = np.array([b.center_x, b.shoulder_y + 24 * b.scale])
    offset = np.array([5.0 * b.scale, 0.0])
    radius = 8.0 * b.scale * b.amplitude
    return _circle(center - offset, radius, angle), _circle(center + offset, radius, angle + np.pi)


def _air_drums(b, clock, rng):
    phi = clock.phase(2.2)
    stroke = 9.0 * b.scale * b.amplitude * np.sin(phi)
    y = b.shoulder_y + 34 * b.scale
    right = np.stack([np.full_like(phi, b.center_x - 20 * b.scale), y + stroke], 1)
    left = np.stack([np.full_like(phi, b.center_x + 20 * b.scale), y - stroke], 1)
    return right, left


def _air_guitar(b, clock, rng):
    phi = clock.phase(2.6)
    strum = b.scale * np.stack([-4 + 2.0 * np.sin(phi), 32 + 8.0 * b.amplitude * np.sin(phi)], 1)
    fret = b.scale * np.stack([np.full_like(phi, 26.0), 14 + 1.5 * np.sin(clock.phase(0.7))], 1)
    base = np.array([b.center_x, b.shoulder_y])
    return base + strum, base + fret


def _other(b, clock, rng):
    """One hand fidgets near the head (aperiodic: three random frequencies per axis); the other rests."""
    side = int(rng.choice([-1, 1]))
    center = np.array([b.center_x, b.shoulder_y]) + b.scale * np.array([rng.uniform(-8, 8), rng.uniform(-28, -14)])
    hz = rng.uniform(0.4, 3.0, size=(3, 2))
    amplitude = b.scale * rng.uniform(1.5, 5.0, size=(3, 2))
    phase = rng.uniform(0, 2 * np.pi, size=(3, 2))
    wiggle = amplitude * np.sin(2 * np.pi * hz * clock.tau[:, None, None] + phase)
    return _one_arm(b, side, center + wiggle.sum(axis=1))


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


@dataclass(frozen=True)
class _Timeline:
    """When things happen in one recording, in ms: length, gesture start and end, ramps."""

    length: int
    onset: float
    end: float
    ramp_in: float
    ramp_out: float


def _timeline(config: SynthConfig, rng: np.random.Generator) -> _Timeline:
    length = int(rng.integers(config.duration_ms[0], config.duration_ms[1] + 1))
    onset = min(rng.uniform(*config.onset_ms), length / 4)
    tail = min(rng.uniform(*config.tail_ms), length / 4)
    active = length - tail - onset
    ramp_in, ramp_out = np.minimum(rng.uniform(150, 300, 2), active / 5)
    return _Timeline(length, onset, length - tail, float(ramp_in), float(ramp_out))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _motion(config: SynthConfig, spec: SampleSpec, body: _Body, timeline: _Timeline, t_ms: np.ndarray, rng):
    """Hand trajectories (right, left) [T, 2] and the upper body's displacement [T, 2]."""
    # tempo: the user's, a per-recording jitter, a linear drift and a slow wobble
    duration = timeline.length
    drift = rng.uniform(-0.2, 0.2) * (t_ms - duration / 2) / duration
    wobble = rng.uniform(0, 0.08) * np.sin(2 * np.pi * t_ms / rng.uniform(1500, 4000) + rng.uniform(0, 2 * np.pi))
    tempo = body.tempo * rng.uniform(0.94, 1.06) * np.exp(drift + wobble)
    dt = np.diff(t_ms, prepend=t_ms[0]) / 1000
    tau = np.cumsum(np.where(t_ms > timeline.onset, tempo * dt, 0.0))
    clock = _Clock(tau, float(rng.uniform(0, 2 * np.pi)))
    right, left = GESTURES[spec.label](body, clock, rng)
    envelope = _smoothstep((t_ms - timeline.onset) / timeline.ramp_in) * _smoothstep((timeline.end - t_ms) / timeline.ramp_out)
    hands = []
    for hand, shoulder, side in ((right, body.right_shoulder, -1), (left, body.left_shoulder, +1)):
        rest = body.rest(shoulder, side)
        hands.append(rest + envelope[:, None] * (hand - rest))
    # the upper body sways sideways and breathes (shoulders rise and fall)
    t = t_ms / 1000
    sway = body.sway_px * rng.uniform(0.7, 1.3) * np.sin(2 * np.pi * body.sway_hz * t + rng.uniform(0, 2 * np.pi))
    breath = body.breath_px * np.sin(2 * np.pi * body.breath_hz * t + rng.uniform(0, 2 * np.pi))
    displacement = np.stack([sway, breath], 1)
    return hands[0] + displacement, hands[1] + displacement, displacement


@dataclass
class _Layer:
    """A separable shape moving over the scene: cover(x, y) = profile_x(x) * profile_y(y) per step.

    ``kind`` "blob": Gaussian of width ``size`` (cover = min(1, 1.6 * G)); "box": soft-edged box of
    half-size ``size`` (x, y). Its log reflectance is ``value`` plus a texture
    ``amp * cos(kx (x - cx) + px) * cos(ky (y - cy) + py)`` that moves with it.
    """

    kind: str
    center: np.ndarray  # [T, 2]
    size: tuple[float, float]
    value: float
    texture: tuple[float, float, float, float, float] | None = None
    soft: float = 1.2

    def extent(self, steps: slice) -> tuple[int, int, int, int]:
        c = self.center[steps]
        reach = np.array(self.size) * 3 if self.kind == "blob" else np.array(self.size) + 5 * self.soft
        low = np.floor(c.min(axis=0) - reach)
        high = np.ceil(c.max(axis=0) + reach) + 1
        x0, y0 = np.clip(low, 0, SENSOR_WIDTH).astype(int)
        x1, y1 = np.clip(high, 0, SENSOR_WIDTH).astype(int)
        return x0, y0, x1, y1

    def _profile(self, coord: np.ndarray, centre: np.ndarray, size: float) -> np.ndarray:
        d = coord[None, :] - centre[:, None]
        if self.kind == "blob":
            return np.exp(-(d * d) / np.float32(2 * size * size))
        return 1 / (1 + np.exp((np.abs(d) - np.float32(size)) / np.float32(self.soft)))

    def paint(self, image: np.ndarray, steps: slice, box: tuple[int, int, int, int]) -> None:
        """Composite this layer over ``image`` [Tc, H, W] that covers ``box`` (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = self.extent(steps)
        bx0, by0, bx1, by1 = box
        x0, y0, x1, y1 = max(x0, bx0), max(y0, by0), min(x1, bx1), min(y1, by1)
        if x1 <= x0 or y1 <= y0:
            return
        c = self.center[steps].astype(np.float32)
        xs = np.arange(x0, x1, dtype=np.float32)
        ys = np.arange(y0, y1, dtype=np.float32)
        cover = self._profile(ys, c[:, 1], self.size[1])[:, :, None] * self._profile(xs, c[:, 0], self.size[0])[:, None, :]
        if self.kind == "blob":
            np.multiply(cover, np.float32(1.6), out=cover)
            np.minimum(cover, 1, out=cover)
        target = image[:, y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]
        value = np.float32(self.value) - target
        if self.texture is not None:
            amp, kx, ky, px, py = self.texture
            tx = np.cos(kx * (xs[None, :] - c[:, :1]) + px).astype(np.float32)
            ty = np.cos(ky * (ys[None, :] - c[:, 1:]) + py).astype(np.float32)
            value += np.float32(amp) * ty[:, :, None] * tx[:, None, :]
        target += cover * value


# Arms are chains of Gaussian blobs from the shoulder to the hand: (fraction of the way, sigma in px
# at scale 1, part); sleeves wear the shirt's colour and texture, the hand is skin.
_ARM_BLOBS = ((0.4, 2.8, "sleeve"), (0.7, 2.8, "sleeve"), (1.0, 4.0, "hand"))


def _layers(config, spec, body, session, right, left, displacement, t_ms, rng) -> list[_Layer]:
    """Everything that moves, back to front: a passer-by, torso, head, arms."""
    layers = []
    n = len(t_ms)
    if rng.random() < config.passer_by:  # a second person walks past behind, far away (small)
        speed = rng.uniform(8, 30) * rng.choice([-1, 1])
        start = rng.uniform(0, SENSOR_WIDTH)
        y = rng.uniform(12, 40)
        path = np.stack([start + speed * t_ms / 1000, np.full(n, y) + 0.6 * np.sin(2 * np.pi * 1.8 * t_ms / 1000)], 1)
        texture = (rng.uniform(0.05, 0.2), rng.uniform(0.3, 1.0), 0.0, rng.uniform(0, 2 * np.pi), 0.0)
        layers.append(_Layer("box", path, (rng.uniform(4, 7), rng.uniform(10, 18)), _signed(rng, 0.2, 0.6), texture, soft=1.5))
    s = body.scale
    anchor = np.array([body.center_x, body.shoulder_y]) + displacement
    torso = anchor + np.array([0.0, 40 * s])  # centre of a box from the shoulders down off the sensor
    layers.append(_Layer("box", torso, (18 * s, 42 * s), session.cloth, session.cloth_texture))
    head = anchor + np.stack([0.4 * displacement[:, 0], 0 * displacement[:, 1]], 1) + np.array([0.0, -14 * s])
    layers.append(_Layer("box", head, (6.5 * s, 8.0 * s), session.skin, soft=1.5))
    for shoulder, hand in ((body.right_shoulder + displacement, right), (body.left_shoulder + displacement, left)):
        for fraction, sigma, part in _ARM_BLOBS:
            centre = shoulder + fraction * (hand - shoulder)
            if part == "sleeve":
                layers.append(_Layer("blob", centre, (sigma * s, sigma * s), session.cloth, session.cloth_texture))
            else:
                layers.append(_Layer("blob", centre, (sigma * s, sigma * s), session.skin))
    return layers


def _wall(session: _Session, box: tuple[int, int, int, int]) -> np.ndarray:
    """The static textured wall [H, W] in log reflectance, over ``box``."""
    x0, y0, x1, y1 = box
    k, phase, amplitude = session.wall_waves
    xs = np.arange(x0, x1, dtype=np.float64)
    ys = np.arange(y0, y1, dtype=np.float64)
    arg = k[:, 0, None, None] * xs[None, None, :] + k[:, 1, None, None] * ys[None, :, None] + phase[:, None, None]
    return (amplitude[:, None, None] * np.cos(arg)).sum(axis=0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Camera: contrast-threshold pixels, background activity, hot pixels, flicker


def _camera_pattern(config: SynthConfig):
    """The fixed pattern of the one camera: per-pixel ON and OFF thresholds [128 * 128], relative
    background-activity rates [128 * 128] (mean 1), hot pixels (index, rate, ON share), and the
    pixels by increasing threshold (the order in which they follow a flicker)."""
    cam = config.camera
    rng = _rng(config.seed, _CAMERA)
    n = SENSOR_WIDTH * SENSOR_HEIGHT
    on, off = cam.threshold * (1 + cam.threshold_mismatch * rng.standard_normal((2, n)))
    floor = 0.25 * cam.threshold
    noise = np.exp(cam.noise_mismatch * rng.standard_normal(n))
    noise /= noise.mean()
    hot = rng.choice(n, size=cam.hot_pixels, replace=False)
    hot_hz = np.exp(rng.uniform(*np.log(cam.hot_pixel_hz), size=cam.hot_pixels))
    hot_on = rng.choice([0.1, 0.9], size=cam.hot_pixels)  # a hot pixel fires mostly one polarity
    on, off = np.maximum(on, floor).astype(np.float32), np.maximum(off, floor).astype(np.float32)
    flicker_order = np.argsort(np.minimum(on, off), kind="stable")  # who follows a flicker first
    return on, off, noise, (hot, hot_hz, hot_on), flicker_order


class _Pixels:
    """Contrast-threshold pixels fed with the log intensity chunk by chunk.

    A pixel starts adapted to the first frame. A pixel that has changed by k thresholds since its
    last event fires k events at the interpolated crossing times, each at least ``refractory_ms``
    after the one before; crossings that do not fit into the step stay pending and fire in the
    next steps.
    """

    def __init__(self, first: np.ndarray, c_on: np.ndarray, c_off: np.ndarray, *, step_ms: float, refractory_ms: float):
        self.reference = first.astype(np.float32).copy()
        self.previous = self.reference.copy()
        self.last = np.full(first.size, -np.inf)
        self.c_on, self.c_off = c_on, c_off
        self.step_ms, self.refractory_ms = step_ms, refractory_ms
        self.out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def feed(self, rows: np.ndarray, first_step: int) -> None:
        """Process the frames of steps ``first_step ..`` (``rows`` [Tc, P])."""
        block = np.concatenate([self.previous[None], rows])
        self.previous = rows[-1].copy()
        # only pixels that can reach a threshold in this chunk are simulated
        active = np.flatnonzero(
            (block.max(axis=0) - self.reference >= self.c_on) | (self.reference - block.min(axis=0) >= self.c_off)
        )
        if active.size == 0:
            return
        # Event by event rather than step by step: each round finds, for every pixel still live,
        # the first step (from where it got to) whose end value is a threshold away from its
        # reference, and fires one event there (or, if its refractory period pushes the event
        # past the end of that step, moves on to the next step with the crossing still pending).
        log_i = block[:, active]
        reference = self.reference[active]
        last = self.last[active]
        c_on, c_off = self.c_on[active], self.c_off[active]
        step_ms, refractory = self.step_ms, self.refractory_ms
        steps = np.arange(len(log_i))[:, None]
        position = np.ones(active.size, np.int64)
        live = np.arange(active.size)
        while live.size:
            change = log_i[:, live] - reference[live]
            hit = ((change >= c_on[live]) | (change <= -c_off[live])) & (steps >= position[live])
            first = hit.argmax(axis=0)
            found = hit[first, np.arange(live.size)]
            live, i = live[found], first[found]
            if live.size == 0:
                break
            now, before = log_i[i, live], log_i[i - 1, live]
            up = now - reference[live] > 0
            level = reference[live] + np.where(up, c_on[live], -c_off[live])
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.where(np.abs(now - before) > 1e-6, np.clip((level - before) / (now - before), 0, 1), 0)
            t_begin = (first_step + i - 1) * step_ms
            t = np.maximum(t_begin + fraction * step_ms, last[live] + refractory)
            emit = t < t_begin + step_ms
            fired = live[emit]
            reference[fired] = level[emit]
            last[fired] = t[emit]
            position[live] = np.where(emit, i, i + 1)
            self.out.append((active[fired], t[emit], up[emit]))
        self.reference[active] = reference
        self.last[active] = last

    def events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pixel index, time in ms, polarity) of everything fired so far, unsorted."""
        if not self.out:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
        return tuple(np.concatenate(column) for column in zip(*self.out))


def _noise_events(config, session: _Session, pattern, duration_ms: int, rng: np.random.Generator):
    """Background activity, hot pixels and flicker: pixel index, t [ms], p."""
    _, _, noise, (hot, hot_hz, hot_on), _ = pattern
    seconds = duration_ms / 1000
    n_pix = SENSOR_WIDTH * SENSOR_HEIGHT
    n_background = rng.poisson(session.noise_hz * n_pix * seconds)
    background = np.minimum(np.searchsorted(np.cumsum(noise) / noise.sum(), rng.random(n_background)), n_pix - 1)
    n_hot = rng.poisson(hot_hz * seconds)
    pixel = [background, np.repeat(hot, n_hot)]
    t = [rng.uniform(0, duration_ms, n_background + n_hot.sum())]
    p = [rng.random(n_background) < 0.5, rng.random(n_hot.sum()) < np.repeat(hot_on, n_hot)]
    n_flicker = session.flicker_pixels.size
    if n_flicker:
        # each flickering pixel fires an ON event at its own latency in every light cycle and an
        # OFF event half a cycle later, each with its own reliability
        period = 1000 / session.flicker_hz
        cycles = int(duration_ms / period) + 1
        fp = session.flicker_pixels
        latency = rng.uniform(0, 0.15 * period, n_flicker)
        reliability = rng.uniform(0.3, 0.9, n_flicker)
        base = np.arange(cycles)[:, None, None] * period + latency[None, None, :] + np.array([0, period / 2])[None, :, None]
        keep = rng.random(base.shape) < reliability[None, None, :]
        jitter = rng.normal(0, 0.3, int(keep.sum()))
        cyc, half, which = np.nonzero(keep)
        pixel.append(fp[which])
        t.append(base[keep] + jitter)
        p.append(half == 0)
    return np.concatenate(pixel), np.concatenate(t), np.concatenate(p)


_CHUNK_STEPS = 100


def render_sample(config: SynthConfig, spec: SampleSpec) -> np.ndarray:
    """The events of one recording: int32 [N, 4], columns x, y, p, t (ms), sorted by t.

    x, y in 0..127, p 1 = ON, 0 = OFF, t in whole milliseconds in ``[0, length)``, the
    recording's length drawn from ``config.duration_ms``.
    Deterministic: depends only on ``config`` and ``spec``.
    """
    if spec.split not in SPLIT_FOLDERS:
        raise ValueError(f"split must be 'train' or 'test', got {spec.split!r}")
    if spec.label not in range(N_CLASSES):
        raise ValueError(f"label must be in 0..{N_CLASSES - 1}, got {spec.label}")
    if spec.lighting not in LIGHTINGS:
        raise ValueError(f"lighting must be one of {_LIGHTING_NAMES}, got {spec.lighting!r}")
    session = _session(config, spec)
    rng = _rng(config.seed, _SAMPLE, _split_id(spec.split), spec.user, _LIGHTING_NAMES.index(spec.lighting), spec.label)
    user = _user_body(config.seed, spec.user)
    body = dataclasses.replace(
        user,
        center_x=user.center_x + session.offset[0],
        shoulder_y=user.shoulder_y + session.offset[1],
        amplitude=user.amplitude * rng.uniform(0.93, 1.07),
    )
    timeline = _timeline(config, rng)
    n_steps = int(math.ceil(timeline.length / config.step_ms)) + 1
    t_ms = np.arange(n_steps) * config.step_ms
    right, left, displacement = _motion(config, spec, body, timeline, t_ms, rng)
    layers = _layers(config, spec, body, session, right, left, displacement, t_ms, rng)

    everything = slice(None)
    extents = np.array([layer.extent(everything) for layer in layers])
    box = (*extents[:, :2].min(axis=0), *extents[:, 2:].max(axis=0))
    x0, y0, x1, y1 = (int(v) for v in box)
    wall = _wall(session, (x0, y0, x1, y1))
    pattern = _camera_pattern(config)
    c_on, c_off = pattern[0], pattern[1]
    yy, xx = np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
    pixel = (yy * SENSOR_WIDTH + xx).ravel()
    contrast = np.float32(session.contrast)
    pixels = None
    for start in range(0, n_steps, _CHUNK_STEPS):
        steps = slice(start, min(start + _CHUNK_STEPS, n_steps))
        image = np.repeat(wall[None], steps.stop - steps.start, axis=0)
        for layer in layers:
            layer.paint(image, steps, (x0, y0, x1, y1))
        rows = image.reshape(len(image), -1) * contrast
        if pixels is None:
            pixels = _Pixels(rows[0], c_on[pixel], c_off[pixel], step_ms=config.step_ms, refractory_ms=config.camera.refractory_ms)
            rows = rows[1:]
            start += 1
        if len(rows):
            pixels.feed(rows, start)
    idx, t_motion, p_motion = pixels.events()
    noise_pixel, noise_t, noise_p = _noise_events(config, session, pattern, timeline.length, rng)

    flat = np.concatenate([pixel[idx], noise_pixel])
    times = np.concatenate([t_motion, noise_t])
    p = np.concatenate([p_motion, noise_p])
    keep = (times >= 0) & (times < timeline.length)
    order = np.argsort(times[keep], kind="stable")
    flat, p, times = flat[keep][order], p[keep][order], np.floor(times[keep][order])
    return np.stack([flat % SENSOR_WIDTH, flat // SENSOR_WIDTH, p, times], axis=1).astype(np.int32)


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
        # unchanged since the command was called `synth`, so that the set's bytes stay the same
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
    # "gesture_snn.synth": the module's first name, kept so that existing sets and cache keys stay valid
    return {"generator": "gesture_snn.synth", "version": GENERATOR_VERSION, "size": size, "config": config.to_json()}


def _existing_set(root: Path, size: str, config: SynthConfig, specs: list[SampleSpec]) -> dict | None:
    """The manifest of the complete synthetic set at ``root`` if it matches; UserError otherwise."""
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UserError(
            f"{root} exists but is not a synthetic set written by `gesture-snn synthetic` (no "
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
            raise UserError(f"{partial} exists and was not left by `gesture-snn synthetic`; move it away first")
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
    bar = tqdm(total=len(tasks), desc="synthetic", unit="rec", disable=not progress)
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
