"""Composing one song: a tempo, a key, a form of sections, and parts drawn from the shared pools.

A song has drums, a bass line following the chord roots, piano and guitar parts that comp or arpeggiate
the chords, one to three "other" parts (pad, melody, ostinato) that land in the residuals and, where
asked (``vocal_chance``, for corpora in MUSDB's layout), a sung melody on a voice or lead program. Like a
real song it changes over its length: its *form* strings sections together (verse, chorus, bridge,
each 4 or 8 bars, each kind with its own chord progression), and every part has an *arrangement* per
section kind — its rhythm, figure (voicing, arpeggio order, contour; groove and fill for drums), role
(piano and guitar may switch between comping and arpeggio), register and dynamics may change from
verse to chorus, and a part may rest in a section (parts enter and leave). A section kind that comes
back is played the same way again. What stays with a part for the whole song is its instrument (GM
program or drum kit): that, the key and the tempo, not a looped pattern, is what ties the segments of
one song together. Small timing and velocity jitter keep two songs that share a pattern from being
sample-identical.

A part's hidden attributes: ``source_class`` (drums, bass, piano, guitar, residuals, vocals), ``program`` (GM
program, the kit preset for drums), and per section of the song (``sections``: ``kind``,
``start_bar``, ``end_bar``, ``playing``, ``role`` — groove, bassline, comping, arpeggio, pad, melody,
ostinato —, ``rhythm_id`` — the groove for drums —, ``figure_id`` — bass figure, chord voicing,
arpeggio order or melodic contour; the fill for drums, None without one —, ``register`` — lowest MIDI
pitch of the part's root or tonic; None for drums —, ``velocity`` — base MIDI velocity — and
``density`` — onsets per bar; drum hits per bar). The top level repeats the values of the first
section the part plays in (``role``, ``rhythm_id``, ...) and ``entry_bar`` (its first bar).
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
TIMING_JITTER_S, VELOCITY_JITTER = 0.004, 6
# Song forms (cycled to fill the song) and how a part changes between section kinds.
FORMS = (("verse", "chorus"), ("verse", "verse", "chorus", "chorus"), ("verse", "chorus", "bridge", "chorus"),
         ("chorus", "verse", "chorus", "bridge"), ("verse", "chorus", "verse", "bridge"))
DYNAMICS = {"verse": -10, "chorus": 12, "bridge": -2}  # MIDI velocity offset per section kind
P_NEW_RHYTHM, P_NEW_FIGURE, P_SWITCH_ROLE, P_OCTAVE_SHIFT = 0.6, 0.6, 0.25, 0.15
P_REST = {"drums": 0.1, "bass": 0.1, "piano": 0.3, "guitar": 0.3, "residuals": 0.35, "vocals": 0.3}
REST_FACTOR = {"verse": 1.0, "chorus": 0.3, "bridge": 1.5}  # the chorus is the fullest section
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
    """Key and chords of a song (one chord per bar, as scale degrees), turning degrees into pitches."""

    tonic: int
    mode: str
    degrees: tuple[int, ...]

    def chord_degree(self, bar: int) -> int:
        return self.degrees[min(max(bar, 0), len(self.degrees) - 1)]

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


def _repeat(rhythm: Rhythm, bars: range):
    """``(bar, step, length, index_in_pattern)`` for every note of ``rhythm`` repeated over ``bars``,
    the pattern starting on the first of them."""
    first, end = bars.start * STEPS_PER_BAR, bars.stop * STEPS_PER_BAR
    for start in range(first, end, rhythm.length):
        for index, (on, length) in enumerate(rhythm.notes):
            step = start + on
            if step < end:
                yield step // STEPS_PER_BAR, step, length, index


def _drums(time: _Timeline, groove: Groove, fill: Fill | None, bars: range, velocity: int) -> list[Note]:
    """The groove in every bar, the fill in the last bar of every four-bar phrase, a crash after it."""
    notes = []
    scale = velocity / 96.0
    for bar in bars:
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


def _bass(time: _Timeline, harmony: Harmony, rhythm: Rhythm, figure: Figure, low: int, bars: range,
          velocity: int) -> list[Note]:
    """Chord roots (and fifths, octaves, approach notes) on the rhythm's onsets."""
    notes = []
    for bar, step, length, index in _repeat(rhythm, bars):
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


def _chords(time: _Timeline, harmony: Harmony, rhythm: Rhythm, voicing: Figure, low: int, bars: range,
            velocity: int, strum: bool, left_hand: bool = False) -> list[Note]:
    """Block chords on the rhythm's onsets; a guitar strums them (down on beats, up off them), a piano
    adds the root an octave below with its left hand."""
    notes = []
    for bar, step, length, _ in _repeat(rhythm, bars):
        pitches = sorted(harmony.chord_tone(bar, tone, low) + 12 * octave for tone, octave in voicing.values)
        if left_hand:
            pitches.insert(0, harmony.chord_tone(bar, 0, low) - 12)
        if strum and step % 4 != 0:
            pitches = pitches[::-1]
        for order, pitch in enumerate(pitches):
            offset = order * STRUM_SPREAD_S if strum else 0.0
            note = time.note(pitch, step, length, velocity - (4 * order if strum else 0), offset)
            if note:
                notes.append(note)
    return notes


def _arpeggio(time: _Timeline, harmony: Harmony, rhythm: Rhythm, figure: Figure, low: int, bars: range,
              velocity: int) -> list[Note]:
    """Chord tones (root, third, fifth, octave) in the figure's order, restarting every bar."""
    notes = []
    tones = ((0, 0), (1, 0), (2, 0), (0, 1))
    for bar, step, length, index in _repeat(rhythm, bars):
        tone, octave = tones[figure.values[index % len(figure.values)]]
        accent = 10 if step % 4 == 0 else 0
        note = time.note(harmony.chord_tone(bar, tone, low) + 12 * octave, step, length, velocity + accent)
        if note:
            notes.append(note)
    return notes


def _melody(time: _Timeline, harmony: Harmony, rhythm: Rhythm, contour: Figure, low: int, bars: range,
            velocity: int) -> list[Note]:
    """The contour's scale steps above each bar's chord root, on the (two-bar) rhythm's onsets."""
    notes = []
    base = place(harmony.tonic, low)
    for bar, step, length, index in _repeat(rhythm, bars):
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


def _lineup(rng: np.random.Generator, vocal_chance: float = 0.0) -> list[tuple[str, str]]:
    """(source class, role) of every part of a song; some songs lack a class. Without a
    ``vocal_chance`` no random number is drawn for vocals, so Slakh-style corpora stay as they were."""
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
    if vocal_chance > 0 and rng.random() < vocal_chance:
        lineup.append(("vocals", "melody"))
    return lineup


@dataclass(frozen=True)
class Section:
    """One section of a song's form: its kind and its bars ``[start_bar, end_bar)``."""

    kind: str
    start_bar: int
    end_bar: int

    @property
    def bars(self) -> range:
        return range(self.start_bar, self.end_bar)


@dataclass(frozen=True)
class Arrangement:
    """How a part plays one kind of section (None pools ids where it rests)."""

    playing: bool
    role: str
    rhythm: Rhythm | Groove | None
    figure: Figure | Fill | None
    register: int | None
    velocity: int


def _form(rng: np.random.Generator, bars: int, tempo: int) -> list[Section]:
    """The song's sections, the form cycled until the song's bars are filled (the last one cut)."""
    form = _pick(rng, FORMS)
    # Sections of 4 or 8 bars; at slow tempi mostly 4, so that short songs still change.
    long_chance = 0.3 if tempo < 100 else 0.7
    length = {kind: 8 if rng.random() < long_chance else 4 for kind in ("verse", "chorus", "bridge")}
    sections, bar, position = [], 0, 0
    while bar < bars:
        kind = form[position % len(form)]
        end = min(bars, bar + length[kind])
        sections.append(Section(kind, bar, end))
        bar, position = end, position + 1
    return sections


def _progressions(rng: np.random.Generator, pools: Pools, kinds: list[str]) -> dict[str, Progression]:
    """A progression per section kind, all in one mode (the song's key does not change)."""
    first = _pick(rng, pools.progressions)
    same_mode = tuple(p for p in pools.progressions if p.mode == first.mode)
    chosen = {kinds[0]: first}
    for kind in kinds[1:]:
        chosen[kind] = _pick(rng, same_mode)
    return chosen


def _rhythm_pool_of(role: str) -> str:
    return {"bassline": "bass", "ostinato": "arpeggio"}.get(role, role)


def _figure_pool_of(role: str) -> str:
    return {"bassline": "bass", "comping": "voicing", "pad": "voicing", "arpeggio": "arpeggio",
            "ostinato": "arpeggio"}.get(role, "contour")


def _arrangements(rng: np.random.Generator, pools: Pools, source: str, role: str, kinds: list[str],
                  velocity: int, register: int | None) -> dict[str, Arrangement]:
    """A part's arrangement for each section kind: the first kind's patterns are drawn, later kinds keep
    or change them (rhythm, figure, role, octave), set their dynamics, or rest."""
    arrangements: dict[str, Arrangement] = {}
    previous: Arrangement | None = None
    for kind in kinds:
        dynamics = int(np.clip(velocity + DYNAMICS[kind] + rng.integers(-4, 5), 30, 127))
        playing = previous is None or rng.random() >= P_REST[source] * REST_FACTOR[kind]
        if source == "drums":
            rhythm = _pick(rng, pools.grooves) if previous is None or rng.random() < P_NEW_RHYTHM \
                else previous.rhythm
            fill = (_pick(rng, pools.fills) if rng.random() < 0.8 else None) \
                if previous is None or rng.random() < P_NEW_FIGURE else previous.figure
            current = Arrangement(playing, "groove", rhythm, fill, None, dynamics)
        else:
            kind_role = role
            if previous is not None and source in ("piano", "guitar") and rng.random() < P_SWITCH_ROLE:
                kind_role = "arpeggio" if previous.role == "comping" else "comping"
            same_role = previous is not None and previous.role == kind_role
            rhythm = previous.rhythm if same_role and rng.random() >= P_NEW_RHYTHM else \
                _pick(rng, pools.rhythms[_rhythm_pool_of(kind_role)])
            figure = previous.figure if same_role and rng.random() >= P_NEW_FIGURE else \
                _pick(rng, pools.figures[_figure_pool_of(kind_role)])
            kind_register = register
            if previous is not None and source != "bass" and rng.random() < P_OCTAVE_SHIFT:
                kind_register = int(np.clip(register + int(rng.choice((-12, 12))), 36, 84))
            current = Arrangement(playing, kind_role, rhythm, figure, kind_register, dynamics)
        arrangements[kind] = current
        previous = current if current.playing or previous is None else previous
    return arrangements


def _section_notes(time: _Timeline, harmony: Harmony, source: str, arrangement: Arrangement,
                   bars: range) -> list[Note]:
    a = arrangement
    if source == "drums":
        return _drums(time, a.rhythm, a.figure, bars, a.velocity)
    if a.role == "bassline":
        return _bass(time, harmony, a.rhythm, a.figure, a.register, bars, a.velocity)
    if a.role in ("comping", "pad"):
        return _chords(time, harmony, a.rhythm, a.figure, a.register, bars, a.velocity,
                       strum=source == "guitar", left_hand=source == "piano")
    if a.role in ("arpeggio", "ostinato"):
        return _arpeggio(time, harmony, a.rhythm, a.figure, a.register, bars, a.velocity)
    return _melody(time, harmony, a.rhythm, a.figure, a.register, bars, a.velocity)


def _describe(arrangement: Arrangement, section: Section) -> dict:
    """The hidden attributes of one section of a part."""
    a = arrangement
    density = len(a.rhythm.hits) if isinstance(a.rhythm, Groove) else a.rhythm.onsets_per_bar
    return {"kind": section.kind, "start_bar": section.start_bar, "end_bar": section.end_bar,
            "playing": a.playing, "role": a.role, "rhythm_id": a.rhythm.id,
            "figure_id": a.figure.id if a.figure is not None else None, "register": a.register,
            "velocity": a.velocity, "density": round(float(density), 3)}


MIN_REGISTER_GAP = 7  # semitones between the registers of two chordal parts, where the pools allow


def _register(rng: np.random.Generator, pool: tuple[int, ...], taken: list[int]) -> int:
    """A register of ``pool`` at least MIN_REGISTER_GAP from every register ``taken`` by the song's
    other chordal parts (any of the pool where none is): arrangers keep parts out of each other's way."""
    free = tuple(r for r in pool if all(abs(r - t) >= MIN_REGISTER_GAP for t in taken))
    return int(_pick(rng, free or pool))


def _part(rng: np.random.Generator, pools: Pools, time: _Timeline, harmony: Harmony,
          sections: list[Section], kinds: list[str], source: str, role: str, taken: list[int]) -> Part:
    """Draw one part's program, register (away from those in ``taken``, to which it is added), dynamics
    and arrangements, and write its notes."""
    velocity = int(_pick(rng, pools.velocities))
    if source == "drums":
        program, register = int(_pick(rng, programs.DRUM_KITS)), None
    else:
        pool = programs.PROGRAMS_BY_OTHER_ROLE[role] if source == "residuals" else \
            programs.PROGRAMS_BY_SOURCE[source]
        program = int(_pick(rng, pool))
        if role == "bassline":
            register = int(_pick(rng, pools.registers["bass"]))
        else:
            register = _register(rng, pools.registers[role], taken)
            taken.append(register)
    arrangements = _arrangements(rng, pools, source, role, kinds, velocity, register)
    notes, described = [], []
    for section in sections:
        arrangement = arrangements[section.kind]
        described.append(_describe(arrangement, section))
        if arrangement.playing:
            notes += _section_notes(time, harmony, source, arrangement, section.bars)
    first = next(d for d in described if d["playing"])
    attributes = {"source_class": source, "program": program,
                  **{key: first[key] for key in ("role", "rhythm_id", "figure_id", "register", "velocity",
                                                 "density")},
                  "entry_bar": first["start_bar"], "sections": described}
    return Part(program, source == "drums", _without_overlaps(notes), attributes)


def compose_song(rng: np.random.Generator, duration: float, vocal_chance: float = 0.0) -> Song:
    """A song of ``duration`` seconds, with a vocal line with probability ``vocal_chance``; everything
    random comes from ``rng``."""
    pools = shared_pools()
    tempo = int(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1))
    bars = math.ceil(duration * tempo / 240.0)
    sections = _form(rng, bars, tempo)
    kinds = list(dict.fromkeys(section.kind for section in sections))
    progressions = _progressions(rng, pools, kinds)
    degrees = []
    for section in sections:
        progression = progressions[section.kind].degrees
        degrees += [progression[(bar - section.start_bar) % len(progression)] for bar in section.bars]
    first = progressions[kinds[0]]
    harmony = Harmony(int(rng.integers(12)), first.mode, tuple(degrees))
    time = _Timeline(rng, tempo, duration)
    taken: list[int] = []
    parts = [_part(rng, pools, time, harmony, sections, kinds, source, role, taken)
             for source, role in _lineup(rng, vocal_chance)]
    attributes = {
        "tempo": tempo, "key": f"{PITCH_NAMES[harmony.tonic]} {harmony.mode}", "tonic": harmony.tonic,
        "mode": harmony.mode, "progression_id": first.id, "progression": list(first.degrees),
        "bars": bars, "duration": duration,
        "sections": [{"kind": section.kind, "start_bar": section.start_bar, "end_bar": section.end_bar,
                      "progression_id": progressions[section.kind].id,
                      "progression": list(progressions[section.kind].degrees)} for section in sections],
    }
    return Song(parts, attributes)
