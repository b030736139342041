"""The shared vocabulary songs are composed from: progressions, drum grooves, rhythms, pitch figures.

Every song draws its parts from these finite pools, so two songs can share a groove, a bass rhythm or a
melodic contour while differing in everything else: that graded similarity is what simulated listeners
judge later. The pools are built from a fixed seed (not the corpus seed), so a pool id means the same
pattern in every corpus made by the same ``POOLS_VERSION``; change the version whenever a pool changes.

Time is counted in sixteenth-note steps; one bar of 4/4 is 16 steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

POOLS_VERSION = 2  # 2: wider registers for the chordal parts
_POOL_SEED = 20250303
STEPS_PER_BAR = 16

# GM percussion keys (channel 10).
KICK, SNARE, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 44, 46, 49, 51
HIGH_TOM, HIGH_MID_TOM, LOW_TOM, FLOOR_TOM = 50, 48, 45, 43


@dataclass(frozen=True)
class Progression:
    """Chords as 0-based scale degrees of ``mode`` ("major" or "minor"), one chord per bar."""

    id: str
    mode: str
    degrees: tuple[int, ...]


@dataclass(frozen=True)
class Rhythm:
    """Onsets and lengths in steps within a pattern of ``length`` steps (one or two bars)."""

    id: str
    length: int
    notes: tuple[tuple[int, int], ...]

    @property
    def onsets_per_bar(self) -> float:
        return len(self.notes) * STEPS_PER_BAR / self.length


@dataclass(frozen=True)
class Groove:
    """One bar of drum hits ``(step, key, velocity)``."""

    id: str
    style: str
    hits: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Fill:
    """Drum hits that replace a groove from ``start`` to the end of a phrase's last bar."""

    id: str
    start: int
    hits: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Figure:
    """A pitch pattern; ``values`` means what its role needs (see :mod:`inmsrl.data.synth.music`)."""

    id: str
    values: tuple


@dataclass(frozen=True)
class Pools:
    progressions: tuple[Progression, ...]
    grooves: tuple[Groove, ...]
    fills: tuple[Fill, ...]
    rhythms: dict[str, tuple[Rhythm, ...]]
    figures: dict[str, tuple[Figure, ...]]
    registers: dict[str, tuple[int, ...]]
    velocities: tuple[int, ...]


_PROGRESSIONS = (
    ("major", (0, 4, 5, 3)), ("major", (5, 3, 0, 4)), ("major", (0, 5, 3, 4)), ("major", (1, 4, 0, 0)),
    ("major", (0, 3, 4, 3)), ("major", (0, 3, 0, 4)), ("major", (3, 0, 4, 5)), ("major", (0, 2, 3, 4)),
    ("minor", (0, 5, 2, 6)), ("minor", (0, 3, 4, 0)), ("minor", (0, 6, 5, 6)), ("minor", (0, 3, 6, 2)),
)

# Drum styles: which steps carry kick, snare, ghost snare and which cymbal keeps time.
_GROOVE_STYLES = {
    "rock": dict(kick=(0, 8), snare=(4, 12), ghost=(), cymbal=CLOSED_HAT, grid=2),
    "four-on-floor": dict(kick=(0, 4, 8, 12), snare=(4, 12), ghost=(), cymbal=OPEN_HAT, grid=-2),
    "half-time": dict(kick=(0, 10), snare=(8,), ghost=(), cymbal=CLOSED_HAT, grid=2),
    "funk": dict(kick=(0, 6, 10), snare=(4, 12), ghost=(7, 9, 15), cymbal=CLOSED_HAT, grid=1),
    "shuffle": dict(kick=(0, 8), snare=(4, 12), ghost=(), cymbal=CLOSED_HAT, grid=3),
    "jazz-ride": dict(kick=(0,), snare=(), ghost=(10, 14), cymbal=RIDE, grid=5),
    "dance": dict(kick=(0, 4, 8, 12), snare=(4, 12), ghost=(), cymbal=CLOSED_HAT, grid=1),
    "breakbeat": dict(kick=(0, 2, 10), snare=(4, 12), ghost=(), cymbal=CLOSED_HAT, grid=2),
}

_FILLS = (
    (12, ((12, SNARE, 90), (13, SNARE, 80), (14, SNARE, 95), (15, SNARE, 105))),
    (8, ((8, HIGH_TOM, 95), (10, HIGH_MID_TOM, 95), (12, LOW_TOM, 100), (14, FLOOR_TOM, 105))),
    (12, ((12, HIGH_TOM, 95), (13, HIGH_MID_TOM, 90), (14, LOW_TOM, 95), (15, FLOOR_TOM, 105))),
    (8, ((8, SNARE, 90), (10, SNARE, 90), (12, LOW_TOM, 100), (14, FLOOR_TOM, 105))),
    (14, ((14, SNARE, 100), (15, SNARE, 110))),
)

# Bass pitch tokens cycled over a rhythm's onsets: R root, 3 third, 5 fifth, 8 octave, A approach
# (a semitone below the next bar's root).
_BASS_FIGURES = (("R",), ("R", "8"), ("R", "5"), ("R", "5", "8", "5"), ("R", "R", "5", "A"),
                 ("R", "3", "5", "3"), ("R", "8", "5", "R"), ("R", "R", "R", "A"))
# Chord voicings as (chord tone, octave): tone 0 root, 1 third, 2 fifth, 3 seventh, 4 ninth.
_VOICINGS = (((0, 0), (1, 0), (2, 0)), ((1, 0), (2, 0), (0, 1)), ((2, 0), (0, 1), (1, 1)),
             ((0, 0), (1, 0), (2, 0), (3, 0)), ((0, 0), (2, 0), (1, 1)), ((0, 0), (3, 0), (1, 1)),
             ((0, 0), (2, 0), (0, 1)), ((0, 0), (1, 0), (2, 0), (4, 0)))
# Arpeggio orders: indices into (root, third, fifth, octave).
_ARPEGGIOS = ((0, 1, 2, 1), (0, 1, 2, 3), (0, 2, 1, 2), (3, 2, 1, 0), (0, 1, 2, 3, 2, 1), (0, 2, 3, 1),
              (0, 0, 2, 1), (1, 2, 3, 2))

_POOL_SIZES = {"bass": 10, "comping": 10, "arpeggio": 8, "pad": 4, "melody": 12, "contour": 12,
               "grooves": 12}

REGISTERS = {"bass": (28, 33, 38), "comping": (43, 48, 55, 60, 64, 67), "arpeggio": (43, 48, 55, 60, 67),
             "pad": (48, 55, 60, 67), "melody": (60, 67, 72), "ostinato": (60, 67, 72)}
VELOCITIES = (64, 80, 96, 112)


def _legato(onsets: list[int], length: int, gate: float) -> tuple[tuple[int, int], ...]:
    """Notes that last ``gate`` of the gap to the next onset (at least one step)."""
    ends = onsets[1:] + [length]
    return tuple((on, max(1, int(round((end - on) * gate)))) for on, end in zip(onsets, ends, strict=True))


def _random_rhythm(rng: np.random.Generator, length: int, grids: tuple[int, ...],
                   density: tuple[float, float], gate: tuple[float, float],
                   syncopation: float) -> tuple[tuple[int, int], ...]:
    """Onsets on a random grid, kept with a random probability, some pushed a sixteenth late."""
    grid = int(rng.choice(grids))
    keep = rng.uniform(*density)
    onsets = set()
    for step in range(0, length, grid):
        if step % STEPS_PER_BAR == 0 or rng.random() < keep:
            late = step % STEPS_PER_BAR != 0 and grid > 1 and rng.random() < syncopation
            onsets.add(min(step + 1, length - 1) if late else step)
    return _legato(sorted(onsets), length, rng.uniform(*gate))


def _rhythm_pool(rng: np.random.Generator, role: str, fixed: tuple, size: int, **random_args) -> tuple:
    """``fixed`` archetypes first, then distinct random rhythms up to ``size``."""
    length = random_args["length"]
    patterns = list(fixed)
    while len(patterns) < size:
        candidate = _random_rhythm(rng, **random_args)
        if candidate not in patterns:
            patterns.append(candidate)
    return tuple(Rhythm(f"{role}-r{i:02d}", length, notes) for i, notes in enumerate(patterns))


def _groove(rng: np.random.Generator, index: int, style: str, vary: bool) -> Groove:
    """A style's bar of drums; ``vary`` adds a kick, changes the cymbal grid or swaps hat for ride."""
    spec = dict(_GROOVE_STYLES[style])
    kick = set(spec["kick"])
    if vary:
        kick.add(int(rng.choice((3, 6, 7, 10, 11, 14))))
        spec["grid"] = int(rng.choice((1, 2, 4)))
        if rng.random() < 0.3:
            spec["cymbal"] = RIDE
    hits = [(s, KICK, 100 if s % 4 == 0 else 85) for s in sorted(kick)]
    hits += [(s, SNARE, 100) for s in spec["snare"]]
    hits += [(s, SNARE, 38) for s in spec["ghost"]]
    grid = spec["grid"]
    if grid == -2:  # off-beat eighths
        cymbal_steps = [2, 6, 10, 14]
    elif grid == 3:  # shuffle: first and last triplet of each beat, approximated on sixteenths
        cymbal_steps = [s for b in range(0, 16, 4) for s in (b, b + 3)]
    elif grid == 5:  # jazz ride: ding, ding-da ding, ding-da
        cymbal_steps = [0, 4, 7, 8, 12, 15]
    else:
        cymbal_steps = list(range(0, 16, grid))
    hits += [(s, spec["cymbal"], 90 if s % 4 == 0 else 70 if s % 2 == 0 else 55) for s in cymbal_steps]
    if spec["cymbal"] == RIDE:
        hits += [(s, PEDAL_HAT, 60) for s in (4, 12)]
    return Groove(f"groove-{index:02d}", style, tuple(sorted(hits)))


def _contour(rng: np.random.Generator) -> tuple[int, ...]:
    """A melodic random walk in scale steps from the chord root, starting on a chord tone."""
    value = int(rng.choice((0, 2, 4)))
    values = [value]
    for _ in range(int(rng.integers(5, 12))):
        value = int(np.clip(value + rng.choice((-2, -1, -1, 0, 1, 1, 2, 3)), -3, 9))
        values.append(value)
    return tuple(values)


@lru_cache(maxsize=1)
def shared_pools() -> Pools:
    """The pools, built once per process from the fixed pool seed."""
    rng = np.random.default_rng(_POOL_SEED)
    styles = list(_GROOVE_STYLES)
    grooves = [_groove(rng, i, style, vary=False) for i, style in enumerate(styles)]
    while len(grooves) < _POOL_SIZES["grooves"]:
        grooves.append(_groove(rng, len(grooves), str(rng.choice(styles)), vary=True))
    fills = tuple(Fill(f"fill-{i:02d}", start, hits) for i, (start, hits) in enumerate(_FILLS))
    quarters, eighths = tuple((s, 4) for s in range(0, 16, 4)), tuple((s, 2) for s in range(0, 16, 2))
    rhythms = {
        "bass": _rhythm_pool(rng, "bass", (quarters, eighths, ((0, 8), (8, 8))), _POOL_SIZES["bass"],
                             length=16, grids=(2, 4), density=(0.4, 0.9), gate=(0.5, 1.0), syncopation=0.2),
        "comping": _rhythm_pool(rng, "comp", (((0, 16),), ((0, 8), (8, 8)), ((0, 3), (6, 10)),
                                              tuple((s, 2) for s in (2, 6, 10, 14))),
                                _POOL_SIZES["comping"], length=16, grids=(2, 4), density=(0.3, 0.7),
                                gate=(0.6, 1.0), syncopation=0.25),
        "arpeggio": _rhythm_pool(rng, "arp", (eighths, tuple((s, 1) for s in range(16))),
                                 _POOL_SIZES["arpeggio"], length=16, grids=(1, 2), density=(0.6, 1.0),
                                 gate=(0.7, 1.0), syncopation=0.0),
        "pad": tuple(Rhythm(f"pad-r{i:02d}", 16, notes) for i, notes in enumerate(
            (((0, 16),), ((0, 8), (8, 8)), ((0, 12), (12, 4)), ((0, 14),)))),
        "melody": _rhythm_pool(rng, "mel", (), _POOL_SIZES["melody"], length=32, grids=(1, 2, 2, 4),
                               density=(0.35, 0.8), gate=(0.6, 1.0), syncopation=0.2),
    }
    contours = []
    while len(contours) < _POOL_SIZES["contour"]:
        candidate = _contour(rng)
        if candidate not in contours:
            contours.append(candidate)
    figures = {
        "bass": tuple(Figure(f"bass-f{i:02d}", v) for i, v in enumerate(_BASS_FIGURES)),
        "voicing": tuple(Figure(f"voicing-{i:02d}", v) for i, v in enumerate(_VOICINGS)),
        "arpeggio": tuple(Figure(f"arp-f{i:02d}", v) for i, v in enumerate(_ARPEGGIOS)),
        "contour": tuple(Figure(f"contour-{i:02d}", v) for i, v in enumerate(contours)),
    }
    progressions = tuple(Progression(f"prog-{i:02d}", mode, degrees)
                         for i, (mode, degrees) in enumerate(_PROGRESSIONS))
    return Pools(progressions, tuple(grooves), fills, rhythms, figures, REGISTERS, VELOCITIES)
