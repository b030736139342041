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


# What :func:`timbre_signature` plays: the kit's main pieces, or a few notes across the keyboard.
_DRUM_PROBE = (35, 36, 38, 40, 42, 44, 46, 45, 48, 50, 49, 51, 57)
_MELODIC_PROBE = (36, 48, 60, 72, 84)
_PROBE_RATE, _PROBE_NOTE_S = 22050, 0.25


@lru_cache(maxsize=512)
def timbre_signature(program: int, is_drum: bool, soundfont: str) -> str:
    """A hash of what ``soundfont`` renders for ``program`` (a kit preset for drums) on a fixed probe.

    Two presets with the same signature sound the same: a SoundFont may map several GM programs or
    GS kits to one set of samples (TimGM6mb renders the Jazz kit, 32, exactly as the Standard kit, 0),
    and a missing preset falls back to preset 0. Listeners hear the sound, not the preset number.
    """
    probe = _DRUM_PROBE if is_drum else _MELODIC_PROBE
    notes = [Note(pitch, k * _PROBE_NOTE_S, (k + 0.8) * _PROBE_NOTE_S, 100) for k, pitch in enumerate(probe)]
    audio = render_notes(notes, program, is_drum, soundfont, _PROBE_RATE,
                         round((len(probe) + 1) * _PROBE_NOTE_S * _PROBE_RATE))
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    return hashlib.sha256(pcm.tobytes()).hexdigest()[:16]


def _generate(synth: tinysoundfont.Synth, frames: int) -> np.ndarray:
    return np.frombuffer(synth.generate_simple(frames), dtype=np.float32).reshape(frames, 2)
