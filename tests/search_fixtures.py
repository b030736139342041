"""A tiny corpus whose instruments a model can tell apart, and a tiny Cascade trained on it in seconds.

Each song's four instruments sit in their own frequency band (drums: short bursts high up, bass low
tones, piano middle tones, guitar upper-middle tones), at pitches and rhythms drawn per song, so that
the same instrument differs from song to song and a briefly trained Cascade separates the bands and
embeds each instrument. Audio is at 8 kHz with a small STFT to keep training to seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inmsrl.audio.io import write_audio
from inmsrl.data.datadir import DataDir, TrackRecord
from inmsrl.data.dump import dump_data_dir
from inmsrl.data.segments import ensure_segment_tables
from inmsrl.train.config import resolve_config
from inmsrl.train.trainer import train

SR = 8000
SOURCES = ("drums", "bass", "piano", "guitar")
SONGS = 8
SECONDS = 12
BANDS = {"drums": (2600, 3800), "bass": (60, 200), "piano": (300, 900), "guitar": (1100, 2200)}
MODEL = {"type": "cascade", "target_sources": list(SOURCES), "unet": {"channels": [4, 8, 8]},
         "mel_bands": 32, "embedding_dim": 16, "stft": {"n_fft": 256, "hop_length": 128, "sample_rate": SR}}


def instrument(song: int, source: str, seconds: float = SECONDS) -> np.ndarray:
    """One song's part of one instrument: a repeating pattern in the instrument's band."""
    rng = np.random.default_rng([song, SOURCES.index(source)])
    t = np.arange(int(seconds * SR)) / SR
    beat = rng.uniform(0.15, 0.5)
    phase = (t % beat) / beat
    if source == "drums":  # short bursts of a song's own high tones, with some noise
        tones = rng.uniform(*BANDS["drums"], size=2)
        noise = 0.3 * rng.standard_normal(len(t))
        return (0.2 * (np.sin(2 * np.pi * tones[0] * t) + np.sin(2 * np.pi * tones[1] * t) + noise)
                * np.exp(-6 * phase)).astype(np.float32)
    low, high = BANDS[source]
    notes = rng.uniform(low, high, size=3)
    which = (t // beat).astype(int) % len(notes)
    return (0.25 * np.sin(2 * np.pi * notes[which] * t) * np.exp(-3 * phase)).astype(np.float32)


def make_dump(root: Path) -> Path:
    """Data directory and dump (8 kHz, 1 s and 2 s segment tables) of the tiny corpus under ``root``."""
    records = []
    for song in range(SONGS):
        paths = {}
        for name in SOURCES:
            paths[name] = root / "audio" / f"S{song}" / f"{name}.wav"
            write_audio(paths[name], instrument(song, name), SR)
        mix = root / "audio" / f"S{song}" / "mix.wav"
        write_audio(mix, sum(instrument(song, name) for name in SOURCES), SR)
        records.append(TrackRecord(f"S{song}", mix, paths, float(SECONDS)))
    DataDir.from_tracks(SOURCES, records).write(root / "data")
    dump = dump_data_dir(root / "data", root / "dump", sample_rate=SR)
    ensure_segment_tables(dump, [1.0, 2.0])
    return root / "dump"


def train_cascade(dump: Path, exp: Path, epochs: int = 8) -> Path:
    """A Cascade trained end to end (triplet + separation loss) for a few seconds; returns ``exp``."""
    config = resolve_config({
        "task": {"name": "triplet", "train_dump": str(dump), "valid_dump": str(dump), "segment_seconds": 1,
                 "valid_segment_seconds": 1, "train_examples": 64, "valid_examples": 8, "batch_size": 8,
                 "fresh_every_epoch": True, "train_separators": True, "separation_weight": 1.0},
        "model": MODEL, "optim": {"lr": 3e-3},
        "trainer": {"max_epochs": epochs, "patience": epochs, "device": "cpu", "tensorboard": False,
                    "progress_bar": False}})
    train(config, exp)
    return exp
