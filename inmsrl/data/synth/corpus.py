"""Writing a synthetic corpus in the Slakh2100 redux layout, resumably and deterministically.

``DIR/{train,validation,test}/TrackXXXXX/`` each hold ``all_src.mid``, ``MIDI/SXX.mid``,
``stems/SXX.flac``, ``mix.flac`` and ``metadata.yaml`` with Slakh's fields, plus ``inmsrl_attributes``
per stem and ``inmsrl_song`` (the hidden attributes). ``DIR/corpus.yaml`` records the options; a re-run
with the same options skips every track whose ``metadata.yaml`` exists (it is written last, atomically)
and a re-run with different options is refused.

Levels follow Slakh: every rendered stem is scaled to a common level (``normalization_factor``, here
an RMS level in dBFS where Slakh uses LUFS), moved by a random offset of at most ``LEVEL_OFFSET_DB``
(kept as ``level_offset_db``) so mixes are not perfectly balanced; then all stems get one common
``overall_gain`` that makes the mix (and no stem) peak above ``target_peak`` dBFS. The mix is the sum
of the 16-bit stems, so summing the stem files gives the mix file exactly (up to clipping, which the
peak target leaves no room for). ``integrated_loudness`` is the RMS level in dBFS of the stem as
written (Slakh: its loudness in LUFS as written); unrendered stems have none, as in Slakh.

Every track's randomness comes from ``(seed, track index)`` alone, so a track is the same whichever
process renders it and whatever ``--jobs`` is.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pretty_midi
import yaml

from inmsrl.audio.io import SAMPLE_RATE, write_audio
from inmsrl.data.synth import programs
from inmsrl.data.synth.music import Part, Song, compose_song
from inmsrl.data.synth.pools import POOLS_VERSION
from inmsrl.data.synth.render import SoundFontError, default_soundfont, render_notes, soundfont_sha256
from inmsrl.version import __version__

GENERATOR_VERSION = 2  # 2: songs in sections (form, per-section arrangements)
CORPUS_FILE = "corpus.yaml"
SPLIT_NAMES = ("train", "validation", "test")
TARGET_PEAK_DB = -1.0
STEM_LEVEL_DB = -13.0
# Slakh leaves some stems unrendered; dropping a few on purpose exercises the readers' skip rule.
DROP_PROBABILITY = 0.05
# Each stem sits a random amount around the common level, so mixes are not perfectly balanced.
LEVEL_OFFSET_DB = 3.0
SILENCE_PEAK = 1e-4
PCM_SCALE = 32768.0


class SynthError(RuntimeError):
    """Bad options, a corpus directory made with other options, or a SoundFont that cannot be used."""


@dataclass(frozen=True)
class SynthOptions:
    """Everything that determines the corpus's content (the output folder and job count do not)."""

    num_tracks: int
    duration: float
    seed: int
    soundfont: Path | None = None
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)
    sample_rate: int = SAMPLE_RATE
    eval_duration: float | None = None  # validation and test tracks' length (None: ``duration``)
    vocal_chance: float = 0.0  # chance of a sung line (GM voice/lead program) per song; MUSDB layout

    def __post_init__(self) -> None:
        if self.num_tracks < 1:
            raise SynthError(f"--num-tracks must be at least 1, got {self.num_tracks}")
        if not self.duration > 0:
            raise SynthError(f"--duration must be positive, got {self.duration}")
        if self.eval_duration is not None and not self.eval_duration > 0:
            raise SynthError(f"--eval-duration must be positive, got {self.eval_duration}")
        if self.seed < 0:
            raise SynthError(f"--seed must be non-negative, got {self.seed}")
        if not 0 <= self.vocal_chance <= 1:
            raise SynthError(f"--vocal-chance must be between 0 and 1, got {self.vocal_chance}")
        if self.sample_rate < 8000:
            raise SynthError(f"--sample-rate must be at least 8000, got {self.sample_rate}")
        if len(self.splits) != 3 or any(s < 0 for s in self.splits) or abs(sum(self.splits) - 1) > 1e-6:
            raise SynthError(f"--splits needs three non-negative fractions (train, validation, test) "
                             f"summing to 1, got {','.join(map(str, self.splits))}")

    def soundfont_path(self) -> Path:
        return Path(self.soundfont) if self.soundfont is not None else default_soundfont()

    def duration_of(self, split: str) -> float:
        """Seconds per track of ``split``: the music-ID vote of evaluation (validation and test) needs
        several segments per song, training does not need longer songs."""
        evaluation = split in ("validation", "test") and self.eval_duration is not None
        return float(self.eval_duration) if evaluation else float(self.duration)


@dataclass(frozen=True)
class TrackPlan:
    index: int  # 0-based; the track id counts from 1 across all splits
    split: str

    @property
    def track_id(self) -> str:
        return f"Track{self.index + 1:05d}"


@dataclass
class CorpusSummary:
    generated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def split_counts(num_tracks: int, splits: tuple[float, float, float]) -> tuple[int, int, int]:
    """Tracks per split: validation and test rounded, train takes the rest."""
    validation = min(num_tracks, round(num_tracks * splits[1]))
    test = min(num_tracks - validation, round(num_tracks * splits[2]))
    return num_tracks - validation - test, validation, test


def plan_tracks(options: SynthOptions) -> list[TrackPlan]:
    """Track ids numbered globally: train first, then validation, then test."""
    plans = []
    for split, count in zip(SPLIT_NAMES, split_counts(options.num_tracks, options.splits), strict=True):
        plans += [TrackPlan(len(plans) + i, split) for i in range(count)]
    return plans


def corpus_description(options: SynthOptions, plans: list[TrackPlan]) -> dict:
    """What ``corpus.yaml`` holds; all but ``inmsrl_version`` and ``soundfont_path`` must match on resume."""
    soundfont = options.soundfont_path()
    return {
        "generator": "inmsrl.data.synth",
        "generator_version": GENERATOR_VERSION,
        "pools_version": POOLS_VERSION,
        "inmsrl_version": __version__,
        "options": {
            "num_tracks": options.num_tracks, "duration": float(options.duration), "seed": options.seed,
            "eval_duration": float(options.duration_of("test")),
            "splits": [float(s) for s in options.splits], "sample_rate": options.sample_rate,
            "soundfont": soundfont.name, "soundfont_sha256": soundfont_sha256(soundfont),
            # only when set, so that corpora made before the option compare equal
            **({"vocal_chance": float(options.vocal_chance)} if options.vocal_chance else {}),
        },
        "soundfont_path": str(soundfont.resolve()),
        "splits": {name: [p.track_id for p in plans if p.split == name] for name in SPLIT_NAMES},
    }


_NOT_COMPARED = ("inmsrl_version", "soundfont_path")


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        if not prefix and key in _NOT_COMPARED:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "splits":
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {_short(a)} (existing) vs {_short(b)} (now)")
    return found


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _dump_yaml(path: Path, data: dict) -> None:
    """Write YAML under a temporary name and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True))
    os.replace(tmp, path)


def prepare_output(out_dir: Path, description: dict) -> None:
    """Create ``corpus.yaml``, or check that the existing one was written with the same options."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CORPUS_FILE
    if path.exists():
        try:
            existing = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise SynthError(f"{path}: not valid YAML ({err}); delete it or choose another --out") from err
        if not isinstance(existing, dict):
            raise SynthError(f"{path}: expected a mapping, got {type(existing).__name__}")
        differences = _differences(existing, description)
        if differences:
            raise SynthError(f"{path}: this corpus was generated with different options; use another "
                             "--out or delete it. Differences: " + "; ".join(differences))
    _dump_yaml(path, description)


def track_dir(out_dir: Path, plan: TrackPlan) -> Path:
    return Path(out_dir) / plan.split / plan.track_id


def is_complete(directory: Path) -> bool:
    """A track is finished exactly when its metadata.yaml (written last) exists."""
    return (directory / "metadata.yaml").is_file()


def generate_corpus(out_dir: str | Path, options: SynthOptions, jobs: int = 1,
                    log: Callable[[str], None] | None = None) -> CorpusSummary:
    """Write every track that is not complete yet; returns which tracks were written and skipped."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    try:
        plans = plan_tracks(options)
        prepare_output(out_dir, corpus_description(options, plans))
    except SoundFontError as err:
        raise SynthError(str(err)) from err
    summary = CorpusSummary()
    summary.skipped = [p.track_id for p in plans if is_complete(track_dir(out_dir, p))]
    pending = [p for p in plans if p.track_id not in summary.skipped]
    if summary.skipped:
        log(f"synth: {len(summary.skipped)} of {len(plans)} tracks already complete in {out_dir}, skipping")
    started = time.perf_counter()

    def report(plan: TrackPlan, rendered: tuple[int, int]) -> None:
        summary.generated.append(plan.track_id)
        log(f"synth: [{len(summary.generated)}/{len(pending)}] {plan.split}/{plan.track_id} "
            f"{rendered[0]}/{rendered[1]} stems rendered ({time.perf_counter() - started:.1f} s)")

    try:
        if jobs <= 1 or len(pending) <= 1:
            for plan in pending:
                report(plan, write_track(out_dir, plan, options))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=context) as pool:
                futures = {pool.submit(write_track, out_dir, plan, options): plan for plan in pending}
                for future in as_completed(futures):
                    report(futures[future], future.result())
    except SoundFontError as err:  # e.g. a SoundFont lacking a program some track needs
        raise SynthError(str(err)) from err
    summary.generated.sort()
    return summary


def _uuid(seed: int, index: int) -> str:
    """A 32-hex-digit id like Slakh's, fixed by the seed and the track index."""
    return hashlib.md5(f"inmsrl-synth/{seed}/{index}".encode()).hexdigest()


def _rms_db(audio: np.ndarray) -> float:
    return float(10 * np.log10(max(float(np.mean(np.square(audio))), 1e-20)))


def _write_midi(path: Path, song: Song, parts: list[tuple[str, Part]]) -> None:
    midi = pretty_midi.PrettyMIDI(initial_tempo=float(song.attributes["tempo"]))
    midi.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    minor = 12 if song.attributes["mode"] == "minor" else 0
    midi.key_signature_changes.append(pretty_midi.KeySignature(song.attributes["tonic"] + minor, 0.0))
    for stem_id, part in parts:
        instrument = pretty_midi.Instrument(program=part.program, is_drum=part.is_drum, name=stem_id)
        instrument.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in part.notes]
        midi.instruments.append(instrument)
    midi.write(str(path))


def write_track(out_dir: Path, plan: TrackPlan, options: SynthOptions) -> tuple[int, int]:
    """Compose, render and write one track; returns (stems rendered, stems)."""
    rng = np.random.default_rng([options.seed, plan.index])
    duration = options.duration_of(plan.split)
    song = compose_song(rng, duration, options.vocal_chance)
    order = rng.permutation(len(song.parts))
    stems = [(f"S{k:02d}", song.parts[i]) for k, i in enumerate(order)]
    dropped = {stem_id for stem_id, _ in stems if rng.random() < DROP_PROBABILITY}
    offsets_db = {stem_id: round(float(rng.uniform(-LEVEL_OFFSET_DB, LEVEL_OFFSET_DB)), 2)
                  for stem_id, _ in stems}
    soundfont = options.soundfont_path()
    num_samples = round(duration * options.sample_rate)

    # Render, then bring every stem to the common level (as Slakh does before mixing).
    levelled: dict[str, np.ndarray] = {}
    for stem_id, part in stems:
        if stem_id in dropped or not part.notes:
            continue
        audio = render_notes(part.notes, part.program, part.is_drum, soundfont, options.sample_rate,
                             num_samples)
        if np.abs(audio).max() >= SILENCE_PEAK:
            target_db = STEM_LEVEL_DB + offsets_db[stem_id]
            levelled[stem_id] = audio * 10 ** ((target_db - _rms_db(audio)) / 20)
    peak_limit = 10 ** (TARGET_PEAK_DB / 20)
    overall_gain = 1.0
    if levelled:
        mix = np.sum(list(levelled.values()), axis=0)
        loudest = max([np.abs(mix).max()] + [np.abs(a).max() for a in levelled.values()])
        overall_gain = float(peak_limit / loudest)
    quantised = {stem_id: np.clip(np.round(audio * overall_gain * PCM_SCALE), -PCM_SCALE, PCM_SCALE - 1)
                 for stem_id, audio in levelled.items()}

    directory = track_dir(out_dir, plan)
    if directory.exists():
        shutil.rmtree(directory)  # an incomplete earlier attempt
    (directory / "MIDI").mkdir(parents=True)
    _write_midi(directory / "all_src.mid", song, stems)
    plugin = soundfont.name
    stem_meta = {}
    for stem_id, part in stems:
        _write_midi(directory / "MIDI" / f"{stem_id}.mid", song, [(stem_id, part)])
        entry = {
            "audio_rendered": stem_id in quantised,
            "inst_class": programs.inst_class(part.program, part.is_drum),
            "is_drum": part.is_drum,
            "midi_program_name": programs.program_name(part.program, part.is_drum),
            "midi_saved": True,
            "plugin_name": plugin,
            "program_num": programs.SLAKH_DRUM_PROGRAM if part.is_drum else part.program,
            "inmsrl_attributes": {**part.attributes, "dropped": stem_id in dropped,
                                  "level_offset_db": offsets_db[stem_id]},
        }
        if stem_id in quantised:
            samples = quantised[stem_id] / PCM_SCALE
            write_audio(directory / "stems" / f"{stem_id}.flac", samples.astype(np.float32),
                        options.sample_rate)
            entry["integrated_loudness"] = round(_rms_db(samples), 4)
        stem_meta[stem_id] = entry
    mix_pcm = np.sum(list(quantised.values()), axis=0) if quantised else np.zeros(num_samples)
    write_audio(directory / "mix.flac", (np.clip(mix_pcm, -PCM_SCALE, PCM_SCALE - 1) / PCM_SCALE)
                .astype(np.float32), options.sample_rate)
    metadata = {
        "UUID": _uuid(options.seed, plan.index),
        "audio_dir": "stems",
        "lmd_midi_dir": None,  # no Lakh MIDI source: the song is composed here
        "midi_dir": "MIDI",
        "normalization_factor": STEM_LEVEL_DB,
        "normalized": True,
        "overall_gain": round(overall_gain, 8),
        "target_peak": TARGET_PEAK_DB,
        "stems": stem_meta,
        "inmsrl_song": {**song.attributes, "seed": options.seed, "track_index": plan.index},
    }
    _dump_yaml(directory / "metadata.yaml", metadata)
    return len(quantised), len(stems)
