"""Slakh2100: read the corpus (either release layout), split it, and write per-class submixes.

The paper (§4.1) follows the official Slakh submix recipe: every rendered stem is assigned to a class
by its 0-based General MIDI ``program_num`` (piano 0–7, guitar 24–31, bass 32–39; drums by
``is_drum``), each class's stems are summed into one source, and every other stem sums into
``residuals``. The resulting data directories follow :mod:`inmsrl.data.datadir`, with every track
listing every source (a class a track lacks becomes a silent file).

Two layouts are read:

* ``redux`` — ``slakh2100_flac_redux``: ``train/ validation/ test/ omitted/``; the folder is the split
  and ``omitted/`` is ignored. The synthetic corpus of ``inmsrl synth`` uses this layout too.
* ``original`` — ``slakh2100_flac``: ``TrackXXXXX`` folders either all in one folder or in
  ``train/ validation/ test/``; the split follows the track number (≤1500 train, ≤1875 validation,
  the rest test) and the duplicate-MIDI tracks that ``redux.json`` marks ``omit`` are dropped.

Folders that are not ``TrackNNNNN`` where tracks are expected are named in a warning, never dropped
without a word. Metadata that Slakh's defaults would silently misread is warned about too: a stem that
looks like drums (``inst_class: Drums`` or a program above 127) without ``is_drum: true`` is mixed
into residuals, and a track without any rendered stem gives silent sources next to a full mix. A
stereo stem is mixed down to mono with a warning, louder when its channels cancel (anti-phase).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from inmsrl.audio.io import audio_info, mix_down, read_audio, write_audio
from inmsrl.data.datadir import DataDir, DataDirError, TrackRecord, validate_data_dir
from inmsrl.data.preparation import prepare_tracks

logger = logging.getLogger(__name__)

SOURCES = ("drums", "bass", "piano", "guitar", "residuals")
RESIDUALS = "residuals"
# Official Slakh submix classes by 0-based General MIDI program number (drums go by ``is_drum``).
PROGRAM_CLASSES = {"piano": range(0, 8), "guitar": range(24, 32), "bass": range(32, 40)}
SPLITS = ("train", "validation", "test")
# The original release splits by track number: the last number of each split but the last.
ORIGINAL_LAST_ID = {"train": 1500, "validation": 1875}
PAPER_TRAIN_TRACKS = 1200
LAYOUTS = ("auto", "redux", "original")
SPLIT_CHOICES = ("paper", "redux")
TRACK_DIR = re.compile(r"^Track(\d+)$")
METADATA = "metadata.yaml"
MIX_FILE = "mix.flac"
MANIFEST = "submix.json"


AMBIGUOUS_LAYOUT = ("split folders without omitted/ and no redux.json to tell the releases apart; "
                    "if this is the original release, pass --layout original --redux-json PATH")


class SlakhError(ValueError):
    """The corpus (or a track's metadata) is not what Slakh looks like; the message names the file."""


@dataclass(frozen=True)
class Stem:
    """One ``stems: SXX:`` entry of ``metadata.yaml``; ``extra`` keeps keys Slakh does not define."""

    key: str
    program_num: int
    is_drum: bool
    audio_rendered: bool
    inst_class: str | None = None
    midi_program_name: str | None = None
    plugin_name: str | None = None
    integrated_loudness: float | None = None
    midi_saved: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    defaulted: tuple[str, ...] = ()  # flags the metadata left out, which took Slakh's defaults


@dataclass(frozen=True)
class TrackMetadata:
    """A track folder and its parsed ``metadata.yaml``; ``fields`` holds the top-level keys as read."""

    track_id: str
    directory: Path
    stems: Mapping[str, Stem]
    fields: Mapping[str, Any]
    audio_dir: str = "stems"

    @property
    def mix_path(self) -> Path:
        return self.directory / MIX_FILE

    def stem_path(self, key: str) -> Path:
        return self.directory / self.audio_dir / f"{key}.flac"


@dataclass(frozen=True)
class CorpusTrack:
    """A track folder found in the corpus and the redux split it belongs to."""

    track_id: str
    directory: Path
    split: str


def stem_class(stem: Stem) -> str:
    """The source class a stem is mixed into (one of :data:`SOURCES`)."""
    if stem.is_drum:
        return "drums"
    for name, programs in PROGRAM_CLASSES.items():
        if stem.program_num in programs:
            return name
    return RESIDUALS


def class_stems(meta: TrackMetadata, sources: Sequence[str] = SOURCES) -> dict[str, list[str]]:
    """Rendered stem keys of each source class, sorted; a class without stems maps to ``[]``."""
    groups: dict[str, list[str]] = {name: [] for name in sources}
    for key in sorted(meta.stems):
        stem = meta.stems[key]
        if stem.audio_rendered:
            groups[stem_class(stem)].append(key)
    return groups


def track_number(track_id: str) -> int:
    """``Track01234`` → 1234."""
    match = TRACK_DIR.match(track_id)
    if match is None:
        raise SlakhError(f"{track_id!r} is not a Slakh track name (TrackNNNNN)")
    return int(match.group(1))


def original_split(track_id: str) -> str:
    """The split the original release assigns by track number."""
    number = track_number(track_id)
    for split, last in ORIGINAL_LAST_ID.items():
        if number <= last:
            return split
    return "test"


_STEM_FIELDS = {"program_num", "is_drum", "audio_rendered", "inst_class", "midi_program_name", "plugin_name",
                "integrated_loudness", "midi_saved"}


def _parse_stem(path: Path, key: str, entry: Any) -> Stem:
    if not isinstance(entry, Mapping):
        raise SlakhError(f"{path}: stem {key}: expected a mapping of stem fields, got {entry!r}")
    if "program_num" not in entry:
        raise SlakhError(f"{path}: stem {key}: no 'program_num'")
    program = entry["program_num"]
    if isinstance(program, bool) or not isinstance(program, int) or program < 0:
        raise SlakhError(f"{path}: stem {key}: program_num {program!r} is not a non-negative integer")
    flags = {}
    for name, default in (("is_drum", False), ("audio_rendered", True)):
        value = entry.get(name, default)
        if not isinstance(value, bool):
            raise SlakhError(f"{path}: stem {key}: {name} {value!r} is not true/false")
        flags[name] = value
    return Stem(key=key, program_num=program, inst_class=entry.get("inst_class"),
                midi_program_name=entry.get("midi_program_name"), plugin_name=entry.get("plugin_name"),
                integrated_loudness=entry.get("integrated_loudness"), midi_saved=entry.get("midi_saved"),
                extra={k: v for k, v in entry.items() if k not in _STEM_FIELDS},
                defaulted=tuple(name for name in flags if name not in entry), **flags)


def read_track_metadata(track_dir: str | Path) -> TrackMetadata:
    """Parse ``track_dir/metadata.yaml`` and check that the mix and every rendered stem exist.

    Raises :class:`SlakhError` naming the file (and the stem key) for a YAML syntax error, a missing
    ``stems`` mapping, a stem without ``program_num``, or a rendered stem whose FLAC is missing. Keys
    Slakh does not define (e.g. the synthetic corpus's ``inmsrl_song``/``inmsrl_attributes``) are kept.
    """
    track_dir = Path(track_dir)
    path = track_dir / METADATA
    try:
        text = path.read_text()
    except OSError as err:
        raise SlakhError(f"{path}: cannot read: {err.strerror or err}") from err
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise SlakhError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(data, Mapping):
        raise SlakhError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    entries = data.get("stems")
    if not isinstance(entries, Mapping) or not entries:
        raise SlakhError(f"{path}: no 'stems' mapping (SXX: {{program_num: ..., ...}})")
    stems = {str(key): _parse_stem(path, str(key), entry) for key, entry in entries.items()}
    audio_dir = data.get("audio_dir")
    if not (isinstance(audio_dir, str) and audio_dir and not os.path.isabs(audio_dir)
            and (track_dir / audio_dir).is_dir()):
        audio_dir = "stems"
    meta = TrackMetadata(track_id=track_dir.name, directory=track_dir, stems=stems,
                         fields={k: v for k, v in data.items() if k != "stems"}, audio_dir=audio_dir)
    if not meta.mix_path.is_file():
        raise SlakhError(f"{meta.mix_path}: missing (every Slakh track has a mix)")
    for key, stem in stems.items():
        if stem.audio_rendered and not meta.stem_path(key).is_file():
            raise SlakhError(f"{path}: stem {key} has audio_rendered: true but "
                             f"{meta.stem_path(key)} is missing")
    return meta


def metadata_warnings(meta: TrackMetadata) -> list[str]:
    """What in a track's metadata is probably wrong although it parses: drum-like stems that are not
    marked ``is_drum`` (they go to residuals) and a track without any rendered stem (silent sources)."""
    path = meta.directory / METADATA
    warnings = []
    for key in sorted(meta.stems):
        stem = meta.stems[key]
        if stem.is_drum or not (stem.inst_class == "Drums" or stem.program_num > 127):
            continue
        evidence = "inst_class Drums" if stem.inst_class == "Drums" else f"program_num {stem.program_num}"
        flag = "has no is_drum" if "is_drum" in stem.defaulted else "has is_drum: false"
        warnings.append(f"{path}: stem {key} looks like drums ({evidence}) but {flag}: it is mixed into "
                        f"{stem_class(stem)}, not drums")
    if not any(stem.audio_rendered for stem in meta.stems.values()):
        warnings.append(f"{path}: no stem has audio_rendered: true; every source of {meta.track_id} will be "
                        f"silent next to its mix ({meta.mix_path})")
    return warnings


def read_redux_json(path: str | Path) -> dict[str, str]:
    """Tracks that ``redux.json`` (slakh-utils) omits, mapped to their original split."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise SlakhError(f"{path}: cannot read: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        raise SlakhError(f"{path}: invalid JSON: {err}") from err
    if not isinstance(data, Mapping):
        raise SlakhError(f"{path}: expected an object of TrackNNNNN: {{action: ...}}")
    omitted = {}
    for track_id, entry in data.items():
        if not isinstance(entry, Mapping) or "action" not in entry:
            raise SlakhError(f"{path}: {track_id}: expected {{\"action\": null | \"omit\", ...}}")
        if entry["action"] == "omit":
            omitted[track_id] = str(entry.get("source_split") or original_split(track_id))
        elif entry["action"] is not None:
            raise SlakhError(f"{path}: {track_id}: unknown action {entry['action']!r}")
    return omitted


def _track_dirs(folder: Path) -> list[Path]:
    """``TrackNNNNN`` sub-folders of ``folder``, sorted by name (see :func:`_other_dirs` for the rest)."""
    if not folder.is_dir():
        return []
    tracks = [p for p in folder.iterdir() if p.is_dir() and TRACK_DIR.match(p.name)]
    return sorted(tracks, key=lambda p: p.name)


def _other_dirs(folder: Path, expected: Callable[[str], bool]) -> list[Path]:
    """Sub-folders of ``folder`` whose names ``expected`` does not accept (files are not looked at)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not expected(p.name))


def _is_track(name: str) -> bool:
    return TRACK_DIR.match(name) is not None


def _skipped_folders(corpus: Path, layout: str) -> list[tuple[Path, str]]:
    """Folders of ``corpus`` that the ``layout`` does not read where it looks for tracks, each with
    what it expects there."""
    split_dirs = [corpus / split for split in SPLITS if (corpus / split).is_dir()]
    if layout == "original" and not split_dirs:
        return [(folder, "TrackNNNNN") for folder in _other_dirs(corpus, _is_track)]
    splits = (*SPLITS, "omitted")
    skipped = [(folder, "/".join(splits)) for folder in _other_dirs(corpus, lambda name: name in splits)]
    for split_dir in split_dirs:
        skipped += [(folder, "TrackNNNNN") for folder in _other_dirs(split_dir, _is_track)]
    return skipped


def detect_layout(corpus: Path, omitted: Mapping[str, str] | None) -> tuple[str, str]:
    """``("redux" | "original", why)`` for ``corpus``.

    Split folders with an ``omitted/`` folder are the redux release; ``TrackNNNNN`` folders directly
    in the corpus are the original one. Split folders alone are the original release only when every
    track sits where its number puts it and some present track is one ``redux.json`` omits — a redux
    copy never holds those, and where no such track is present the two layouts give the same result.
    """
    split_dirs = [split for split in SPLITS if (corpus / split).is_dir()]
    flat = _track_dirs(corpus)
    if flat and split_dirs:
        raise SlakhError(f"{corpus}: holds both TrackNNNNN folders and {'/'.join(split_dirs)}/ folders; "
                         "pass the folder of one release")
    if flat:
        return "original", "TrackNNNNN folders directly in the corpus folder"
    if not split_dirs:
        raise SlakhError(f"{corpus}: no TrackNNNNN folders and no train/validation/test folders")
    if (corpus / "omitted").is_dir():
        return "redux", "an omitted/ folder beside the split folders"
    for split in split_dirs:
        for track in _track_dirs(corpus / split):
            if original_split(track.name) != split:
                return "redux", f"{split}/{track.name} is not where the original release's numbering puts it"
    if omitted is None:
        return "redux", AMBIGUOUS_LAYOUT
    for split in split_dirs:
        duplicates = [t.name for t in _track_dirs(corpus / split) if t.name in omitted]
        if duplicates:
            return "original", f"{split}/{duplicates[0]} is a duplicate that redux.json omits"
    return "redux", "no track present is omitted by redux.json"


def list_corpus(corpus: str | Path, layout: str = "auto",
                redux_json: str | Path | None = None) -> tuple[list[CorpusTrack], str]:
    """The corpus's kept tracks (sorted by id) with their redux split, and the layout used."""
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise SlakhError(f"{corpus}: corpus folder not found")
    if layout not in LAYOUTS:
        raise SlakhError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    omitted = read_redux_json(redux_json) if redux_json is not None else None
    if layout == "auto":
        layout, why = detect_layout(corpus, omitted)
        level = logging.WARNING if why == AMBIGUOUS_LAYOUT else logging.INFO
        logger.log(level, "%s: %s layout (%s)", corpus, layout, why)
    tracks: list[CorpusTrack] = []
    if layout == "redux":
        for split in SPLITS:
            tracks += [CorpusTrack(t.name, t, split) for t in _track_dirs(corpus / split)]
    else:
        if omitted is None:
            raise SlakhError("the original Slakh2100 layout needs --redux-json (slakh-utils "
                             "splits/redux.json) to drop the duplicate-MIDI tracks")
        folders = [corpus / split for split in SPLITS if (corpus / split).is_dir()] or [corpus]
        found = [t for folder in folders for t in _track_dirs(folder)]
        dropped = [t for t in found if t.name in omitted]
        tracks = [CorpusTrack(t.name, t, original_split(t.name)) for t in found if t.name not in omitted]
        logger.info("%s: dropped %d duplicate-MIDI tracks that redux.json omits", corpus, len(dropped))
    counts = Counter(t.track_id for t in tracks)
    twice = sorted(track_id for track_id, count in counts.items() if count > 1)
    if twice:
        raise SlakhError(f"{corpus}: track(s) found in more than one folder: {', '.join(twice[:5])}")
    for folder, expected in _skipped_folders(corpus, layout):
        logger.warning("%s: skipped: the %s layout expects %s folders here", folder, layout, expected)
    if not tracks:
        raise SlakhError(f"{corpus}: no tracks found in the {layout} layout")
    return sorted(tracks, key=lambda t: t.track_id), layout


def assign_sets(tracks: Iterable[CorpusTrack], split: str = "paper",
                paper_train: int = PAPER_TRAIN_TRACKS) -> dict[str, list[CorpusTrack]]:
    """Tracks of each set, sorted by id.

    ``redux``: the redux splits as they are. ``paper`` (§4.1): the first ``paper_train`` redux-train
    tracks by id, all redux validation tracks, and all redux test tracks — the paper evaluates 136 of
    the 151, but that list is not public.
    """
    by_split: dict[str, list[CorpusTrack]] = {name: [] for name in SPLITS}
    for track in sorted(tracks, key=lambda t: t.track_id):
        by_split[track.split].append(track)
    if split == "redux":
        return by_split
    if split != "paper":
        raise SlakhError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_CHOICES)}")
    train = sorted(by_split["train"], key=lambda t: track_number(t.track_id))
    if len(train) < paper_train:
        logger.warning("paper split: only %d redux-train tracks, fewer than the paper's %d; using all",
                       len(train), paper_train)
    by_split["train"] = sorted(train[:paper_train], key=lambda t: t.track_id)
    logger.info("paper split: train = first %d of %d redux-train tracks by id, validation = %d, "
                "test = all %d redux-test tracks (the paper's 136-track test list is not public)",
                len(by_split["train"]), len(train), len(by_split["validation"]), len(by_split["test"]))
    return by_split


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def _stem_stamps(meta: TrackMetadata, keys: Sequence[str]) -> list[list[Any]]:
    """``[key, size, mtime_ns]`` of each stem file: what a submix was made from, content included."""
    stamps = []
    for key in keys:
        path = meta.stem_path(key)
        try:
            stat = path.stat()
        except OSError as err:
            raise SlakhError(f"{path}: cannot read: {err.strerror or err}") from err
        stamps.append([key, stat.st_size, stat.st_mtime_ns])
    return stamps


def _read_stem(path: Path, warnings: list[str]) -> tuple[np.ndarray, int]:
    """A stem as mono float32 and its rate; a stereo stem is mixed down with a warning, and called
    out when its channels cancel in the mix-down (anti-phase)."""
    audio, rate = read_audio(path, sample_rate=None, mono=False)
    if len(audio) == 1:
        return audio[0], rate
    mono, cancelled = mix_down(audio)
    if cancelled:
        warnings.append(f"{path}: {len(audio)} channels that cancel in the mono mix-down ({cancelled}): "
                        "anti-phase? the stem is lost in its submix")
    else:
        warnings.append(f"{path}: {len(audio)} channels, mixed down to mono (Slakh stems are mono)")
    return mono, rate


def write_track_submixes(meta: TrackMetadata, out_dir: str | Path,
                         sources: Sequence[str] = SOURCES) -> tuple[TrackRecord, int, list[str]]:
    """Write ``out_dir/<source>.flac`` for every source: the sum of that class's rendered stems.

    Every submix has the mix's length and sample rate (a class without stems gives silence). Each
    submix's stems — keys, file sizes and modification times — are recorded in ``out_dir/submix.json``
    after it is written, so a re-run skips a submix whose file exists and whose stems are unchanged,
    and remakes it when a stem was added, removed or rewritten. Returns the track's data-directory
    record, how many submixes were written, and warnings (clipping, length mismatch, stereo stems).
    """
    out_dir = Path(out_dir)
    info = audio_info(meta.mix_path)
    frames, rate = info.frames, info.samplerate
    groups = class_stems(meta, sources)
    manifest_path = out_dir / MANIFEST
    manifest = _read_manifest(manifest_path)
    if manifest.get("frames") != frames or manifest.get("sample_rate") != rate:
        manifest = {"frames": frames, "sample_rate": rate, "sources": {}}
    done: dict[str, Any] = manifest.setdefault("sources", {})
    written, warnings = 0, []
    if info.channels > 1:
        warnings.append(f"{meta.mix_path}: {info.channels} channels; later stages mix it down to mono")
    for source in sources:
        target = out_dir / f"{source}.flac"
        stamps = _stem_stamps(meta, groups[source])
        if target.is_file() and done.get(source) == stamps:
            continue
        submix = np.zeros(frames, dtype=np.float32)
        for key in groups[source]:
            stem_path = meta.stem_path(key)
            stem, stem_rate = _read_stem(stem_path, warnings)
            if stem_rate != rate:
                raise SlakhError(f"{stem_path}: sample rate {stem_rate} differs from "
                                 f"{meta.mix_path}'s {rate}")
            if len(stem) != frames:
                warnings.append(f"{stem_path}: {len(stem)} samples, mix has {frames}; padded/cut to the mix")
            n = min(len(stem), frames)
            submix[:n] += stem[:n]
        clipped = int(np.count_nonzero(np.abs(submix) > 1.0))
        if clipped:
            warnings.append(f"{target}: {clipped} samples beyond full scale clipped")
        out_dir.mkdir(parents=True, exist_ok=True)
        write_audio(target, submix, rate)
        done[source] = stamps
        _write_json_atomic(manifest_path, manifest)
        written += 1
    record = TrackRecord(meta.track_id, meta.mix_path,
                         {source: out_dir / f"{source}.flac" for source in sources}, frames / rate)
    return record, written, warnings


def default_audio_out(out: str | Path) -> Path:
    """Where submixes go by default: ``audio/`` beside the data folder (``data/`` → ``audio/``)."""
    return Path(out).parent / "audio"


def prepare_slakh(corpus: str | Path, out: str | Path, audio_out: str | Path | None = None,
                  layout: str = "auto", split: str = "paper", redux_json: str | Path | None = None,
                  sets: Sequence[str] = SPLITS, jobs: int = 1, max_tracks: int | None = None,
                  paper_train: int = PAPER_TRAIN_TRACKS, log: Callable[[str], None] = logger.info,
                  ) -> dict[str, Path]:
    """Recipe stage 1: write ``out/<set>/`` data directories and ``audio_out/<set>/<track>/<source>.flac``.

    Every track's metadata is read and checked before any audio is written, so that a broken corpus
    is reported (all problems at once) without leaving partial output. Submixes already written from
    the same stem files are kept, so an interrupted run resumes. Paths in the scp files are written as
    given here (relative ones stay relative to the working directory). Every warning about the corpus
    (see the module docstring) is logged, and their number at the end. Returns the written folders.
    """
    unknown = [name for name in sets if name not in SPLITS]
    if unknown or not sets:
        raise SlakhError(f"unknown set(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SPLITS)}")
    audio_out = Path(audio_out) if audio_out is not None else default_audio_out(out)
    tracks, layout = list_corpus(corpus, layout, redux_json)
    warned = len(_skipped_folders(Path(corpus), layout))  # list_corpus warned about each
    chosen = assign_sets(tracks, split, paper_train)
    selected: dict[str, list[CorpusTrack]] = {}
    for name in sets:
        selected[name] = chosen[name][:max_tracks] if max_tracks is not None else chosen[name]
        if not selected[name]:
            raise SlakhError(f"{corpus}: no {name} tracks in the {layout} layout")
        log(f"{name}: {len(selected[name])} tracks")

    errors, metas = [], {}
    for name, set_tracks in selected.items():
        for track in set_tracks:
            try:
                metas[name, track.track_id] = read_track_metadata(track.directory)
            except SlakhError as err:
                errors.append(str(err))
    if errors:
        raise SlakhError(f"{len(errors)} track(s) with bad metadata:\n" + "\n".join(errors))
    for meta in metas.values():
        for warning in metadata_warnings(meta):
            logger.warning("%s", warning)
            warned += 1

    written = {}
    for name, set_tracks in selected.items():
        job_list = [(metas[name, t.track_id], audio_out / name / t.track_id) for t in set_tracks]
        records, set_warned = prepare_tracks(write_track_submixes, job_list, jobs, name, log, logger)
        warned += set_warned
        target = Path(out) / name
        DataDir.from_tracks(SOURCES, records).write(target)
        problems = validate_data_dir(target, check_audio=True)
        if problems:
            raise DataDirError(problems)
        hours = sum(r.duration for r in records) / 3600
        log(f"{name}: wrote {target} ({len(records)} tracks, {hours:.2f} h, sources: {' '.join(SOURCES)})")
        written[name] = target
    if warned:
        logger.warning("%d warning(s) about the corpus above: check them before training", warned)
    return written
