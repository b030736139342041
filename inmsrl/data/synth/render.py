"""Rendering a part's notes to mono audio with a General MIDI SoundFont (tinysoundfont).

Each stem gets a fresh synthesizer so that no voice or controller state leaks from one stem into the
next, and events are applied at exact sample positions, so a render depends only on its notes: the
same notes give the same samples in any process and any order.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import tinysoundfont

from inmsrl.data.synth.music import Note

DEFAULT_SOUNDFONT_NAME = "TimGM6mb.sf2"
DRUM_CHANNEL, MELODIC_CHANNEL, DRUM_BANK = 9, 0, 128


class SoundFontError(RuntimeError):
    """A SoundFont is missing, unreadable or lacks a program a stem needs."""


def default_soundfont() -> Path:
    """The GM SoundFont shipped inside the pretty_midi package."""
    path = Path(str(importlib.resources.files("pretty_midi") / DEFAULT_SOUNDFONT_NAME))
    if not path.is_file():
        raise SoundFontError(f"default SoundFont {path} not found in the pretty_midi package; "
                             "pass --soundfont PATH")
    return path


@lru_cache(maxsize=4)
def soundfont_bytes(path: str) -> bytes:
    """The SoundFont file's contents, read once per process and checked to parse."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as err:
        raise SoundFontError(f"SoundFont not found: {path}") from err
    except OSError as err:
        raise SoundFontError(f"cannot read SoundFont {path}: {err}") from err
    try:
        tinysoundfont.Synth().sfload(data)
    except RuntimeError as err:
        raise SoundFontError(f"cannot load SoundFont {path}: not a valid .sf2/.sf3 file ({err})") from err
    return data


def soundfont_sha256(path: str | Path) -> str:
    """Content hash that identifies a SoundFont wherever it is stored."""
    return hashlib.sha256(soundfont_bytes(str(path))).hexdigest()


def _select_program(synth: tinysoundfont.Synth, sfid: int, program: int, is_drum: bool,
                    soundfont: str) -> int:
    """Select ``program`` (a kit preset for drums) on the part's channel; falls back to preset 0 of
    the same bank when the SoundFont lacks it. Returns the channel."""
    channel, bank = (DRUM_CHANNEL, DRUM_BANK) if is_drum else (MELODIC_CHANNEL, 0)
    for preset in (program, 0):
        try:
            synth.program_select(channel, sfid, bank, preset, is_drums=is_drum)
            return channel
        except RuntimeError:
            continue
    raise SoundFontError(f"SoundFont {soundfont} has neither preset {program} nor 0 in bank {bank}")


def render_notes(notes: Sequence[Note], program: int, is_drum: bool, soundfont: str | Path,
                 sample_rate: int, num_samples: int) -> np.ndarray:
    """``num_samples`` of mono float64 audio: the notes played by one GM program (or drum kit)."""
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    sfid = synth.sfload(soundfont_bytes(str(soundfont)))
    channel = _select_program(synth, sfid, program, is_drum, str(soundfont))
    # (sample, 0 = off / 1 = on, key, velocity); note-offs first where they coincide with a note-on.
    events = sorted([(round(n.start * sample_rate), 1, n.pitch, n.velocity) for n in notes]
                    + [(round(n.end * sample_rate), 0, n.pitch, 0) for n in notes])
    stereo = np.zeros((num_samples, 2), dtype=np.float32)
    position = 0
    for sample, is_on, key, velocity in events:
        sample = min(sample, num_samples)
        if sample > position:
            stereo[position:sample] = _generate(synth, sample - position)
            position = sample
        if is_on:
            synth.noteon(channel, key, velocity)
        else:
            synth.noteoff(channel, key)
    if position < num_samples:
        stereo[position:] = _generate(synth, num_samples - position)
    return stereo.astype(np.float64).mean(axis=1)


def _generate(synth: tinysoundfont.Synth, frames: int) -> np.ndarray:
    return np.frombuffer(synth.generate_simple(frames), dtype=np.float32).reshape(frames, 2)
