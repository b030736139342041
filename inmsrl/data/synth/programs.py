"""General MIDI program pools per part role, and the class names Slakh's metadata uses.

Programs are 0-based GM numbers. The official Slakh submix rule keys on them (piano 0–7, guitar 24–31,
bass 32–39, drums = ``is_drum``, everything else in ``residuals``), so every pool below stays inside
its class's range and the "other" pools stay outside all three. The MUSDB-style rule
(``musdb_source``) makes the GM voice (52–54) and synth lead (80–87) programs the "vocals".
"""

from __future__ import annotations

import pretty_midi

# Slakh writes program_num 128 for drum stems; the MIDI files carry the kit preset as the program.
SLAKH_DRUM_PROGRAM = 128

PIANO_PROGRAMS = tuple(range(0, 8))
GUITAR_PROGRAMS = tuple(range(24, 32))
BASS_PROGRAMS = tuple(range(32, 40))
# GS drum-kit presets (bank 128): Standard, Room, Power, Electronic, TR-808, Jazz, Brush.
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)

# Residual ("other") parts by role: sustained pads, lead melodies, repeated mallet/pluck figures.
PAD_PROGRAMS = (16, 19, 48, 49, 50, 52, 61, 88, 89, 90, 91, 95)
MELODY_PROGRAMS = (22, 40, 41, 56, 57, 64, 65, 66, 68, 71, 73, 80, 81)
OSTINATO_PROGRAMS = (8, 9, 11, 12, 13, 21, 45, 46)
# A sung line for corpora in MUSDB's layout: choir/voice presets and synth leads.
VOCAL_PROGRAMS = (52, 53, 54, 80, 81, 82, 83, 84, 85, 86, 87)

PROGRAMS_BY_SOURCE = {"piano": PIANO_PROGRAMS, "guitar": GUITAR_PROGRAMS, "bass": BASS_PROGRAMS,
                      "drums": DRUM_KITS, "vocals": VOCAL_PROGRAMS}
PROGRAMS_BY_OTHER_ROLE = {"pad": PAD_PROGRAMS, "melody": MELODY_PROGRAMS, "ostinato": OSTINATO_PROGRAMS}

# Slakh's class names follow the GM families but call programs 48–55 "Strings (continued)".
_SLAKH_FAMILY_NAMES = ("Piano", "Chromatic Percussion", "Organ", "Guitar", "Bass", "Strings",
                       "Strings (continued)", "Brass", "Reed", "Pipe", "Synth Lead", "Synth Pad",
                       "Synth Effects", "Ethnic", "Percussive", "Sound Effects")


def source_class(program_num: int, is_drum: bool) -> str:
    """The separation target a stem sums into, by the official Slakh submix rule."""
    if is_drum:
        return "drums"
    if 0 <= program_num <= 7:
        return "piano"
    if 24 <= program_num <= 31:
        return "guitar"
    if 32 <= program_num <= 39:
        return "bass"
    return "residuals"


def musdb_source(program_num: int, is_drum: bool) -> str:
    """The MUSDB18 source a stem sums into: drums, bass (GM 32–39), vocals (GM voice 52–54 and synth
    lead 80–87) or other (everything else)."""
    if is_drum:
        return "drums"
    if 32 <= program_num <= 39:
        return "bass"
    if program_num in VOCAL_PROGRAMS:
        return "vocals"
    return "other"


def inst_class(program: int, is_drum: bool) -> str:
    """Slakh's ``inst_class`` for a stem: the GM family name, or "Drums"."""
    return "Drums" if is_drum else _SLAKH_FAMILY_NAMES[program // 8]


def program_name(program: int, is_drum: bool) -> str:
    """Slakh's ``midi_program_name``: the GM instrument name, or "Drums"."""
    return "Drums" if is_drum else pretty_midi.program_to_instrument_name(program)


def _check_pools() -> None:
    """Fail at import if a pool breaks the class rule the data preparation relies on."""
    for source, programs in PROGRAMS_BY_SOURCE.items():
        if source == "vocals":
            assert all(musdb_source(p, False) == source for p in programs), source
        elif source != "drums":
            assert all(source_class(p, False) == source for p in programs), source
    for role, programs in PROGRAMS_BY_OTHER_ROLE.items():
        assert all(source_class(p, False) == "residuals" for p in programs), role


_check_pools()
