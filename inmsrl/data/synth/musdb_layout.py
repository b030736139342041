"""A synthetic corpus in MUSDB18-HQ's layout, grouped from a synthetic corpus in Slakh's layout.

``DIR/slakh/`` is a corpus of :func:`~inmsrl.data.synth.corpus.generate_corpus` (with a vocal line
in most songs); each of its tracks becomes ``DIR/{train,test}/TrackNNNNN/`` holding the mixture and
one stereo 16-bit WAV per MUSDB source, the file names taken from the ``musdb`` package's
configuration as :mod:`inmsrl.data.musdb` reads them. Stems are grouped by
:func:`~inmsrl.data.synth.programs.musdb_source` (drums; bass GM 32–39; vocals = GM voice and synth
lead programs; other = everything else) and panned with a constant-power law — vocals, bass and drums
near the centre, the other parts anywhere — so the channels differ as in a real mix. A common gain
keeps the mixture and every source at most ``TARGET_PEAK_DB``; the mixture is the sum of the sources'
16-bit samples. Slakh's validation tracks go to ``train/`` and are listed in
``DIR/validation_tracks.txt``, MUSDB's way of naming its validation split.

A track is finished when its mixture (written last, atomically) exists, so a re-run resumes;
``DIR/corpus.yaml`` repeats the Slakh corpus's description, and a re-run with other options is refused
as :func:`generate_corpus` refuses it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from inmsrl.audio.io import audio_info, read_audio, write_audio
from inmsrl.data.musdb import MusdbError, MusdbLayout, read_layout
from inmsrl.data.synth import programs
from inmsrl.data.synth.corpus import (
    PCM_SCALE,
    TARGET_PEAK_DB,
    CorpusSummary,
    SynthOptions,
    corpus_description,
    generate_corpus,
    plan_tracks,
    prepare_output,
    track_dir,
)

SLAKH_FOLDER = "slakh"
DEFAULT_VOCAL_CHANCE = 0.9  # most MUSDB songs are sung
VALIDATION_LIST = "validation_tracks.txt"
# Largest pan (-1 left … 1 right) per MUSDB source: lead vocal, bass and kit sit near the centre.
PAN_WIDTH = {"vocals": 0.15, "bass": 0.15, "drums": 0.25, "other": 0.8}


def _pan_gains(pan: float) -> np.ndarray:
    """Left and right gains of the constant-power pan law (both 1/√2 in the centre)."""
    angle = (pan + 1) * np.pi / 4
    return np.array([np.cos(angle), np.sin(angle)])


def musdb_track_dir(out_dir: Path, split: str, track_id: str) -> Path:
    """``train/`` holds Slakh's train and validation tracks; ``test/`` its test tracks."""
    return Path(out_dir) / ("test" if split == "test" else "train") / track_id


def write_musdb_track(slakh_track: Path, target: Path, layout: MusdbLayout, seed: int, index: int) -> None:
    """Group, pan and write one track's sources and mixture (the mixture last)."""
    metadata = yaml.safe_load((slakh_track / "metadata.yaml").read_text())
    rng = np.random.default_rng([seed, index, 1])
    mix_info = audio_info(slakh_track / "mix.flac")
    sources: dict[str, np.ndarray] = {}
    for stem_id, stem in sorted(metadata["stems"].items()):
        source = programs.musdb_source(int(stem["program_num"]), bool(stem["is_drum"]))
        if source not in layout.sources:
            raise MusdbError(f"{slakh_track}: stem {stem_id} groups into {source!r}, which the musdb "
                             f"configuration {layout.path} does not name ({', '.join(layout.sources)})")
        pan = float(rng.uniform(-PAN_WIDTH[source], PAN_WIDTH[source]))  # drawn for every stem: stable
        if not stem.get("audio_rendered"):
            continue
        audio, _ = read_audio(slakh_track / "stems" / f"{stem_id}.flac", sample_rate=None, mono=True)
        stereo = _pan_gains(pan)[:, None] * audio.reshape(1, -1)
        sources[source] = sources[source] + stereo if source in sources else stereo
    silent = np.zeros((2, mix_info.frames))
    stereo_sources = {name: sources.get(name, silent) for name in layout.sources}
    mixture = np.sum(list(stereo_sources.values()), axis=0)
    loudest = max([np.abs(mixture).max()] + [np.abs(a).max() for a in stereo_sources.values()])
    gain = min(1.0, 10 ** (TARGET_PEAK_DB / 20) / loudest) if loudest > 0 else 1.0
    quantised = {name: np.round(audio * gain * PCM_SCALE) for name, audio in stereo_sources.items()}
    target.mkdir(parents=True, exist_ok=True)
    for name, pcm in quantised.items():
        write_audio(target / layout.files[name], (pcm / PCM_SCALE).astype(np.float32), mix_info.samplerate)
    mixture_pcm = np.clip(np.sum(list(quantised.values()), axis=0), -PCM_SCALE, PCM_SCALE - 1)
    write_audio(target / layout.mixture, (mixture_pcm / PCM_SCALE).astype(np.float32), mix_info.samplerate)


def generate_musdb_corpus(out_dir: str | Path, options: SynthOptions, jobs: int = 1,
                          layout: MusdbLayout | None = None,
                          log: Callable[[str], None] | None = None) -> CorpusSummary:
    """Generate (or resume) ``DIR/slakh`` and group every track not yet grouped into MUSDB's layout."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    layout = layout or read_layout()
    plans = plan_tracks(options)
    prepare_output(out_dir, corpus_description(options, plans))
    generate_corpus(out_dir / SLAKH_FOLDER, options, jobs=jobs, log=log)
    summary = CorpusSummary()
    for plan in plans:
        target = musdb_track_dir(out_dir, plan.split, plan.track_id)
        if (target / layout.mixture).is_file():
            summary.skipped.append(plan.track_id)
            continue
        write_musdb_track(track_dir(out_dir / SLAKH_FOLDER, plan), target, layout, options.seed, plan.index)
        summary.generated.append(plan.track_id)
    validation = [p.track_id for p in plans if p.split == "validation"]
    (out_dir / VALIDATION_LIST).write_text("".join(f"{name}\n" for name in validation))
    log(f"synth: {len(summary.generated)} tracks grouped into MUSDB's layout, {len(summary.skipped)} "
        f"already there, in {out_dir} (validation tracks: {out_dir / VALIDATION_LIST})")
    return summary
