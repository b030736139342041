"""Builders of tiny Slakh-format corpora (1 s FLACs) in either release layout, for the data tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from inmsrl.audio.io import write_audio

RATE = 16000
SECONDS = 1.0


@dataclass(frozen=True)
class StemSpec:
    """What a fixture stem is: its GM program, drum flag and whether Slakh rendered it."""

    program_num: int
    is_drum: bool = False
    audio_rendered: bool = True
    inst_class: str = "Other"


# A band with every class, two piano stems, a residual stem and a stem Slakh did not render.
FULL_BAND = {
    "S00": StemSpec(0, is_drum=True, inst_class="Drums"),
    "S01": StemSpec(33, inst_class="Bass"),
    "S02": StemSpec(0, inst_class="Piano"),
    "S03": StemSpec(25, inst_class="Guitar"),
    "S04": StemSpec(48, inst_class="Strings"),
    "S05": StemSpec(4, inst_class="Piano"),
    "S06": StemSpec(80, audio_rendered=False, inst_class="Synth Lead"),
}
NO_PIANO = {key: spec for key, spec in FULL_BAND.items() if spec.inst_class != "Piano"}


def stem_metadata(spec: StemSpec) -> dict:
    """A ``stems: SXX:`` entry with every field Slakh writes."""
    return {"audio_rendered": spec.audio_rendered, "inst_class": spec.inst_class,
            "integrated_loudness": -20.0 if spec.audio_rendered else None, "is_drum": spec.is_drum,
            "midi_program_name": f"Program {spec.program_num}", "midi_saved": True,
            "plugin_name": "fixture.nkm", "program_num": spec.program_num}


def make_track(track_dir: Path, stems: Mapping[str, StemSpec] = FULL_BAND, seed: int = 0,
               extra: Mapping | None = None) -> dict[str, np.ndarray]:
    """Write a Slakh track folder (metadata.yaml, stems/SXX.flac, mix.flac = sum of rendered stems).

    Returns each rendered stem's audio as it decodes from disk (16-bit quantised), keyed by stem.
    """
    rng = np.random.default_rng(seed)
    frames = int(RATE * SECONDS)
    audio = {}
    for key, spec in stems.items():
        if spec.audio_rendered:
            # Quantise to 16-bit steps first, so that the FLAC holds exactly these values.
            audio[key] = np.round(rng.uniform(-0.1, 0.1, frames) * 32768).astype(np.float32) / 32768
            write_audio(track_dir / "stems" / f"{key}.flac", audio[key], RATE)
    write_audio(track_dir / "mix.flac", sum(audio.values(), np.zeros(frames, np.float32)), RATE)
    metadata = {"UUID": f"uuid-{track_dir.name}", "audio_dir": "stems", "lmd_midi_dir": "lmd/x.mid",
                "midi_dir": "MIDI", "normalization_factor": -13.0, "normalized": True,
                "overall_gain": 0.5, "target_peak": -1.0,
                "stems": {key: stem_metadata(spec) for key, spec in stems.items()}}
    metadata.update(extra or {})
    (track_dir / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=True))
    return audio


def make_corpus(root: Path, folders: Mapping[str, Iterable[str]],
                special: Mapping[str, Mapping[str, StemSpec]] | None = None) -> dict[str, dict]:
    """Write tracks ``root/<folder>/<TrackNNNNN>`` (folder ``""`` = directly in ``root``).

    ``special`` gives some tracks other stems than :data:`FULL_BAND`. Returns each track's stems.
    """
    special = special or {}
    audio = {}
    for seed, (folder, track_id) in enumerate((f, t) for f, ids in folders.items() for t in ids):
        track_dir = root / folder / track_id if folder else root / track_id
        audio[track_id] = make_track(track_dir, special.get(track_id, FULL_BAND), seed=seed)
    return audio


def write_redux_json(path: Path, omitted: Mapping[str, str], kept: Iterable[str] = ()) -> Path:
    """A ``redux.json`` in slakh-utils' format: ``omitted`` maps track → source split."""
    data = {track: {"action": None} for track in kept}
    data.update({track: {"action": "omit", "source_split": split} for track, split in omitted.items()})
    path.write_text(json.dumps(dict(sorted(data.items())), indent=4))
    return path
