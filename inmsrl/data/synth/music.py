"""Composing one song: a tempo, a key and a progression, and parts drawn from the shared pools.

A song has drums, a bass line following the chord roots, piano and guitar parts that comp or arpeggiate
the chords, and one to three "other" parts (pad, melody, ostinato) that land in the residuals. Each
part remembers the pool ids it was built from (its hidden attributes); small timing and velocity
jitter keep two songs that share a pattern from being sample-identical.

A part's hidden attributes: ``source_class`` (drums, bass, piano, guitar, residuals), ``role``
(groove, bassline, comping, arpeggio, pad, melody, ostinato), ``program`` (GM program, the kit preset
for drums), ``rhythm_id`` (the groove for drums), ``figure_id`` (bass figure, chord voicing, arpeggio
order or melodic contour; the fill for drums, None without one), ``register`` (lowest MIDI pitch of
the part's root or tonic; None for drums), ``velocity`` (base MIDI velocity), ``density`` (onsets per
bar; drum hits per bar) and ``entry_bar`` (the bar the part comes in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from inmsrl.data.synth import programs
from inmsrl.data.synth.pools import (
    CRASH,
    STEPS_PER_BAR,
    Figure,
    Fill,
    Groove,
    Pools,
    Progression,
    Rhythm,
    shared_pools,
)

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
TEMPO_RANGE = (80, 140)
# How often a song has each part; at least one "other" part always plays.
P_DRUMS, P_BASS, P_PIANO, P_GUITAR, P_SECOND_GUITAR = 0.95, 0.95, 0.85, 0.85, 0.15
OTHER_ROLES, OTHER_ROLE_WEIGHTS = ("pad", "melody", "ostinato"), (0.4, 0.4, 0.2)
P_LATE_ENTRY = 0.2
TIMING_JITTER_S, VELOCITY_JITTER = 0.004, 6
STRUM_SPREAD_S = 0.012
MIN_NOTE_S = 0.03


@dataclass(frozen=True)
class Note:
    pitch: int
    start: float
    end: float
    velocity: int


@dataclass
class Part:
    """One stem: its GM program (the kit preset for drums), its notes and its hidden attributes."""

    program: int
    is_drum: bool
    notes: list[Note]
    attributes: dict = field(default_factory=dict)


@dataclass
class Song:
    parts: list[Part]
    attributes: dict


@dataclass(frozen=True)
class Harmony:
    """Key and chords of a song, turning scale degrees into MIDI pitches."""

    tonic: int
    mode: str
    progression: Progression

    def chord_degree(self, bar: int) -> int:
        return self.progression.degrees[bar % len(self.progression.degrees)]

    def semitones(self, degree: int) -> int:
        """Semitones above the tonic of scale degree ``degree`` (any integer, octaves included)."""
        scale = SCALES[self.mode]
        return scale[degree % 7] + 12 * (degree // 7)

    def chord_tone(self, bar: int, tone: int, low: int) -> int:
        """Chord tone ``tone`` (0 root, 1 third, ...) of ``bar``'s chord, root placed at or above ``low``."""
        degree = self.chord_degree(bar)
        root = place(self.tonic + self.semitones(degree), low)
        return root + self.semitones(degree + 2 * tone) - self.semitones(degree)


def place(pitch_class: int, low: int) -> int:
    """The lowest MIDI pitch of ``pitch_class`` at or above ``low``."""
    return low + (pitch_class - low) % 12


class _Timeline:
    """Converts steps to seconds with jitter and keeps notes inside the song."""

    def __init__(self, rng: np.random.Generator, tempo: float, duration: float):
        self.rng, self.step_s, self.duration = rng, 15.0 / tempo, duration

    def note(self, pitch: int, step: float, length: float, velocity: int,
             offset_s: float = 0.0) -> Note | None:
        """A jittered note, or None where it would fall outside the song or the MIDI range."""
        start = max(0.0, step * self.step_s + offset_s + self.rng.normal(0.0, TIMING_JITTER_S))
        end = min(self.duration, (step + length) * self.step_s + offset_s)
        velocity = int(np.clip(velocity + self.rng.integers(-VELOCITY_JITTER, VELOCITY_JITTER + 1), 1, 127))
        if end - start < MIN_NOTE_S or not 0 <= pitch <= 127:
            return None
        return Note(int(pitch), round(start, 5), round(end, 5), velocity)


def _pick(rng: np.random.Generator, items: tuple):
    return items[int(rng.integers(len(items)))]


def _entry_bar(rng: np.random.Generator, bars: int) -> int:
    return int(rng.integers(1, max(2, bars // 2))) if bars > 2 and rng.random() < P_LATE_ENTRY else 0


def _repeat(rhythm: Rhythm, bars: int, entry_bar: int):
    """``(bar, step, length, index_in_pattern)`` for every note of ``rhythm`` repeated over the song."""
    for start in range(0, bars * STEPS_PER_BAR, rhythm.length):
        for index, (on, length) in enumerate(rhythm.notes):
            step = start + on
            if step // STEPS_PER_BAR >= entry_bar and step < bars * STEPS_PER_BAR:
                yield step // STEPS_PER_BAR, step, length, index


def _drums(time: _Timeline, groove: Groove, fill: Fill | None, bars: int, entry_bar: int,
           velocity: int) -> list[Note]:
    """The groove in every bar, the fill in the last bar of every four-bar phrase, a crash after it."""
    notes = []
    scale = velocity / 96.0
    for bar in range(entry_bar, bars):
        base = bar * STEPS_PER_BAR
        filled = fill is not None and bar % 4 == 3
        hits = [h for h in groove.hits if not (filled and h[0] >= fill.start)]
        if filled:
            hits += list(fill.hits)
        if bar % 4 == 0 and bar > 0 and fill is not None:
            hits.append((0, CRASH, 100))
        for step, key, vel in hits:
            note = time.note(key, base + step, 1, int(vel * scale))
            if note:
                notes.append(note)
    return notes


def _bass(time: _Timeline, harmony: Harmony, rhythm: Rhythm, figure: Figure, low: int, bars: int,
          entry_bar: int, velocity: int) -> list[Note]:
    """Chord roots (and fifths, octaves, approach notes) on the rhythm's onsets."""
    notes = []
    for bar, step, length, index in _repeat(rhythm, bars, entry_bar):
        token = figure.values[index % len(figure.values)]
        if token == "A":
            pitch = harmony.chord_tone(bar + 1, 0, low) - 1
            pitch = pitch if pitch >= low else pitch + 2
        else:
            tone, octave = {"R": (0, 0), "3": (1, 0), "5": (2, 0), "8": (0, 1)}[token]
            pitch = harmony.chord_tone(bar, tone, low) + 12 * octave
        note = time.note(pitch, step, length, velocity)
        if note:
            notes.append(note)
    return notes


def _chords(time: _Timeline, harmony: Harmony, rhythm: Rhythm, voicing: Figure, low: int, bars: int,
            entry_bar: int, velocity: int, strum: bool) -> list[Note]:
    """Block chords on the rhythm's onsets; a guitar strums them (down on beats, up off them)."""
    notes = []
    for bar, step, length, _ in _repeat(rhythm, bars, entry_bar):
        pitches = sorted(harmony.chord_tone(bar, tone, low) + 12 * octave for tone, octave in voicing.values)
        if strum and step % 4 != 0:
            pitches = pitches[::-1]
        for order, pitch in enumerate(pitches):
            offset = order * STRUM_SPREAD_S if strum else 0.0
            note = time.note(pitch, step, length, velocity - (4 * order if strum else 0), offset)
            if note:
                notes.append(note)
    return notes


def _arpeggio(time: _Timeline, harmony: Harmony, rhythm: Rhythm, figure: Figure, low: int, bars: int,
              entry_bar: int, velocity: int) -> list[Note]:
    """Chord tones (root, third, fifth, octave) in the figure's order, restarting every bar."""
    notes = []
    tones = ((0, 0), (1, 0), (2, 0), (0, 1))
    for bar, step, length, index in _repeat(rhythm, bars, entry_bar):
        tone, octave = tones[figure.values[index % len(figure.values)]]
        accent = 10 if step % 4 == 0 else 0
        note = time.note(harmony.chord_tone(bar, tone, low) + 12 * octave, step, length, velocity + accent)
        if note:
            notes.append(note)
    return notes


def _melody(time: _Timeline, harmony: Harmony, rhythm: Rhythm, contour: Figure, low: int, bars: int,
            entry_bar: int, velocity: int) -> list[Note]:
    """The contour's scale steps above each bar's chord root, on the (two-bar) rhythm's onsets."""
    notes = []
    base = place(harmony.tonic, low)
    for bar, step, length, index in _repeat(rhythm, bars, entry_bar):
        degree = harmony.chord_degree(bar) + contour.values[index % len(contour.values)]
        note = time.note(base + harmony.semitones(degree), step, length, velocity)
        if note:
            notes.append(note)
    return notes


def _without_overlaps(notes: list[Note]) -> list[Note]:
    """End a note where the next note of the same pitch starts, so no key is struck while held."""
    notes = sorted(notes, key=lambda n: (n.pitch, n.start))
    cleaned = []
    for i, note in enumerate(notes):
        nxt = notes[i + 1] if i + 1 < len(notes) else None
        if nxt is not None and nxt.pitch == note.pitch and nxt.start < note.end:
            note = Note(note.pitch, note.start, round(max(note.start + 0.005, nxt.start - 0.001), 5),
                        note.velocity)
        if note.end > note.start:
            cleaned.append(note)
    return sorted(cleaned, key=lambda n: (n.start, n.pitch))


def _lineup(rng: np.random.Generator) -> list[tuple[str, str]]:
    """(source class, role) of every part of a song; some songs lack a class."""
    lineup = []
    if rng.random() < P_DRUMS:
        lineup.append(("drums", "groove"))
    if rng.random() < P_BASS:
        lineup.append(("bass", "bassline"))
    for source, chance in (("piano", P_PIANO), ("guitar", P_GUITAR)):
        if rng.random() < chance:
            lineup.append((source, "comping" if rng.random() < 0.6 else "arpeggio"))
    if any(s == "guitar" for s, _ in lineup) and rng.random() < P_SECOND_GUITAR:
        first = next(r for s, r in lineup if s == "guitar")
        lineup.append(("guitar", "arpeggio" if first == "comping" else "comping"))
    for _ in range(int(rng.integers(1, 4))):
        lineup.append(("residuals", str(rng.choice(OTHER_ROLES, p=OTHER_ROLE_WEIGHTS))))
    return lineup


def _part(rng: np.random.Generator, pools: Pools, time: _Timeline, harmony: Harmony, bars: int,
          source: str, role: str) -> Part:
    """Draw one part's program, patterns, register and dynamics from the pools and write its notes."""
    velocity = int(_pick(rng, pools.velocities))
    entry_bar = _entry_bar(rng, bars)
    register = None
    if source == "drums":
        program = int(_pick(rng, programs.DRUM_KITS))
        groove = _pick(rng, pools.grooves)
        fill = _pick(rng, pools.fills) if rng.random() < 0.8 else None
        notes = _drums(time, groove, fill, bars, entry_bar, velocity)
        rhythm_id, figure_id, onsets_per_bar = groove.id, fill.id if fill else None, len(groove.hits)
    else:
        if source == "residuals":
            program = int(_pick(rng, programs.PROGRAMS_BY_OTHER_ROLE[role]))
        else:
            program = int(_pick(rng, programs.PROGRAMS_BY_SOURCE[source]))
        rhythm_pool = {"bassline": "bass", "ostinato": "arpeggio"}.get(role, role)
        rhythm = _pick(rng, pools.rhythms[rhythm_pool])
        register = int(_pick(rng, pools.registers[{"bassline": "bass"}.get(role, role)]))
        if role == "bassline":
            figure = _pick(rng, pools.figures["bass"])
            notes = _bass(time, harmony, rhythm, figure, register, bars, entry_bar, velocity)
        elif role in ("comping", "pad"):
            figure = _pick(rng, pools.figures["voicing"])
            notes = _chords(time, harmony, rhythm, figure, register, bars, entry_bar, velocity,
                            strum=source == "guitar")
        elif role in ("arpeggio", "ostinato"):
            figure = _pick(rng, pools.figures["arpeggio"])
            notes = _arpeggio(time, harmony, rhythm, figure, register, bars, entry_bar, velocity)
        else:
            figure = _pick(rng, pools.figures["contour"])
            notes = _melody(time, harmony, rhythm, figure, register, bars, entry_bar, velocity)
        rhythm_id, figure_id, onsets_per_bar = rhythm.id, figure.id, rhythm.onsets_per_bar
    attributes = {
        "source_class": source, "role": role, "program": program, "rhythm_id": rhythm_id,
        "figure_id": figure_id, "register": register, "velocity": velocity,
        "density": round(float(onsets_per_bar), 3), "entry_bar": entry_bar,
    }
    return Part(program, source == "drums", _without_overlaps(notes), attributes)


def compose_song(rng: np.random.Generator, duration: float) -> Song:
    """A song of ``duration`` seconds; everything random comes from ``rng``."""
    pools = shared_pools()
    tempo = int(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1))
    progression = _pick(rng, pools.progressions)
    harmony = Harmony(int(rng.integers(12)), progression.mode, progression)
    bars = math.ceil(duration * tempo / 240.0)
    time = _Timeline(rng, tempo, duration)
    parts = [_part(rng, pools, time, harmony, bars, source, role) for source, role in _lineup(rng)]
    attributes = {
        "tempo": tempo, "key": f"{PITCH_NAMES[harmony.tonic]} {harmony.mode}", "tonic": harmony.tonic,
        "mode": harmony.mode, "progression_id": progression.id, "progression": list(progression.degrees),
        "bars": bars, "duration": duration,
    }
    return Song(parts, attributes)
