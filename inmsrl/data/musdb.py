"""MUSDB18-HQ: check the corpus, split it, and write its sources as mono files for the data directories.

MUSDB18-HQ (sigsep; the uncompressed release of MUSDB18) holds ``train/`` (100 tracks) and ``test/``
(50), each track a folder ``<Artist - Title>/`` with the mixture and one WAV per source, stereo,
44.1 kHz, all of one length. What a track holds — the source names and their files, the mixture's file
— and the standard validation split (14 of the train tracks) are read from the configuration of
sigsep's ``musdb`` package (``musdb/configs/mus.yaml``, installed with museval), which defines the
corpus for every MUSDB tool, rather than restated here. The sets are ``train`` (train/ without the
validation tracks), ``validation`` (those) and ``test`` (test/); a synthetic corpus in this layout may
name its own validation tracks instead.

A track's id is its folder name with every run of characters other than letters, digits, ``.``,
``_`` and ``-`` replaced by ``_`` (ids hold no whitespace): ``Actions - One Minute Smile`` →
``Actions_-_One_Minute_Smile``.

Every track is checked before any audio is written, and every problem of every track is reported at
once, naming the track folder and the file: a missing file, one that cannot be read, a mono file where
stereo is expected, a sample rate or length that differs from the mixture's. Each source is mixed down
to mono as ``prepare-slakh`` mixes down a stereo stem (the mean of the channels; channels that cancel,
anti-phase, are called out) into ``AUDIO_OUT/<set>/<id>/<source>.flac``. ``mix.scp`` lists the corpus's
own stereo mixture, which later stages mix down on the way in. A re-run keeps a mono file while its
WAV is unchanged (size and modification time) and makes it again when the WAV changed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inmsrl.audio.io import AudioReadError, audio_info, mix_down, read_audio, write_audio
from inmsrl.data.datadir import DataDir, DataDirError, TrackRecord, source_name_errors, validate_data_dir
from inmsrl.data.preparation import prepare_tracks

logger = logging.getLogger(__name__)

SETS = ("train", "validation", "test")
CHANNELS = 2  # MUSDB18-HQ is stereo
MANIFEST = "mono.json"
_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


class MusdbError(ValueError):
    """The corpus (or the musdb configuration) is not what MUSDB18-HQ looks like; the message names
    the folder or file."""


@dataclass(frozen=True)
class MusdbLayout:
    """What a MUSDB track folder holds and the standard validation split, from musdb's configuration."""

    sources: tuple[str, ...]          # source names, in the configuration's order
    files: Mapping[str, str]          # source name -> file name in a track folder
    mixture: str                      # the mixture's file name
    validation_tracks: tuple[str, ...]
    path: Path                        # the configuration file it was read from


def musdb_config_path() -> Path:
    """``configs/mus.yaml`` of the installed ``musdb`` package (found without importing it)."""
    spec = importlib.util.find_spec("musdb")
    if spec is None or not spec.submodule_search_locations:
        raise MusdbError("the musdb package is not installed (tools/requirements.txt; it comes with "
                         "museval): its configs/mus.yaml defines MUSDB18's sources and validation tracks")
    path = Path(next(iter(spec.submodule_search_locations))) / "configs" / "mus.yaml"
    if not path.is_file():
        raise MusdbError(f"{path}: missing from the installed musdb package")
    return path


def read_layout(path: str | Path | None = None) -> MusdbLayout:
    """Parse a musdb configuration (default: the installed package's ``configs/mus.yaml``)."""
    path = Path(path) if path is not None else musdb_config_path()
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise MusdbError(f"{path}: cannot read: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise MusdbError(f"{path}: invalid YAML: {err}") from err
    sources = data.get("sources") if isinstance(data, Mapping) else None
    if not isinstance(sources, Mapping) or not all(isinstance(f, str) for f in sources.values()):
        raise MusdbError(f"{path}: no 'sources' mapping of source name to file name")
    errors = source_name_errors([str(name) for name in sources], where=f"{path}: sources")
    if errors:
        raise MusdbError("\n".join(errors))
    mixture, validation = data.get("mixture"), data.get("validation_tracks")
    if not isinstance(mixture, str):
        raise MusdbError(f"{path}: no 'mixture' file name")
    if not isinstance(validation, list) or not all(isinstance(name, str) for name in validation):
        raise MusdbError(f"{path}: no 'validation_tracks' list of track names")
    return MusdbLayout(tuple(str(name) for name in sources), {str(k): v for k, v in sources.items()},
                       mixture, tuple(validation), path)


def read_track_list(path: str | Path) -> tuple[str, ...]:
    """Track folder names, one per line (blank lines and ``#`` comments skipped)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise MusdbError(f"{path}: cannot read: {err.strerror or err}") from err
    names = tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not names:
        raise MusdbError(f"{path}: lists no track")
    return names


def track_id(name: str) -> str:
    """The data-directory id of a track folder: runs of other characters than ``[A-Za-z0-9._-]``
    become ``_`` (``Actions - One Minute Smile`` → ``Actions_-_One_Minute_Smile``)."""
    return _ID_CHARACTERS.sub("_", name.strip()).strip("_") or "_"


@dataclass(frozen=True)
class MusdbTrack:
    """A track folder of the corpus, the set it goes to, and (once checked) its rate and length."""

    name: str
    directory: Path
    set_name: str
    sample_rate: int = 0
    frames: int = 0

    @property
    def track_id(self) -> str:
        return track_id(self.name)


def list_tracks(corpus: str | Path, validation: Sequence[str]) -> dict[str, list[MusdbTrack]]:
    """The track folders of each set, sorted by id; ``validation`` names the train/ folders that form
    the validation set. Names of ``validation`` that train/ lacks are warned about; none found, two
    folders with one id, or a missing train/ or test/ folder are errors."""
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise MusdbError(f"{corpus}: corpus folder not found")
    if not validation:
        raise MusdbError("no validation tracks given")
    found: dict[str, list[Path]] = {}
    for folder in ("train", "test"):
        if not (corpus / folder).is_dir():
            raise MusdbError(f"{corpus}: no {folder}/ folder (MUSDB18-HQ holds train/ and test/ folders "
                             "of track folders)")
        found[folder] = sorted(p for p in (corpus / folder).iterdir()
                               if p.is_dir() and not p.name.startswith("."))
        if not found[folder]:
            raise MusdbError(f"{corpus / folder}: no track folders")
    names = {p.name for p in found["train"]}
    missing = [name for name in validation if name not in names]
    if len(missing) == len(validation):
        raise MusdbError(f"{corpus / 'train'}: holds none of the {len(validation)} validation tracks "
                         f"(e.g. {validation[0]!r})")
    if missing:
        logger.warning("%s: %d of the %d validation tracks are missing, so the validation set has %d: %s",
                       corpus / "train", len(missing), len(validation), len(validation) - len(missing),
                       "; ".join(missing))
    chosen = set(validation)
    tracks: dict[str, list[MusdbTrack]] = {name: [] for name in SETS}
    for folder, paths in found.items():
        for path in paths:
            set_name = "validation" if folder == "train" and path.name in chosen else folder
            tracks[set_name].append(MusdbTrack(path.name, path, set_name))
    by_id: dict[str, list[MusdbTrack]] = {}
    for track in (t for set_tracks in tracks.values() for t in set_tracks):
        by_id.setdefault(track.track_id, []).append(track)
    twice = [f"{' and '.join(str(t.directory) for t in same)} both become track id {tid}"
             for tid, same in by_id.items() if len(same) > 1]
    if twice:
        raise MusdbError("track folders whose ids collide (rename one):\n" + "\n".join(twice))
    if not tracks["train"]:
        raise MusdbError(f"{corpus / 'train'}: every track is a validation track; none is left to train on")
    return {name: sorted(set_tracks, key=lambda t: t.track_id) for name, set_tracks in tracks.items()}


def check_track(track: MusdbTrack, layout: MusdbLayout) -> tuple[MusdbTrack, list[str]]:
    """The track with its sample rate and length, and its problems, each naming the folder or file:
    missing or unreadable files, a file that is not stereo, a rate or length unlike the mixture's."""
    errors = []
    headers = {}
    for name, file_name in (("mixture", layout.mixture), *((s, layout.files[s]) for s in layout.sources)):
        path = track.directory / file_name
        if not path.is_file():
            errors.append(f"{track.directory}: {file_name} is missing")
            continue
        try:
            info = audio_info(path)
        except AudioReadError as err:
            errors.append(str(err))
            continue
        if info.channels != CHANNELS:
            kind = "mono" if info.channels == 1 else f"{info.channels} channels"
            errors.append(f"{path}: {kind}, but MUSDB18-HQ files are stereo")
        headers[name] = (path, info.samplerate, info.frames)
    if not headers:
        return track, errors
    reference, rate, frames = headers.get("mixture") or next(iter(headers.values()))
    for path, file_rate, file_frames in headers.values():
        if file_rate != rate:
            errors.append(f"{path}: sample rate {file_rate} Hz, but {reference.name} has {rate} Hz")
        elif file_frames != frames:
            errors.append(f"{path}: {file_frames} samples, but {reference.name} has {frames} (every file "
                          "of a track has the mixture's length)")
    return MusdbTrack(track.name, track.directory, track.set_name, rate, frames), errors


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_track_sources(track: MusdbTrack, layout: MusdbLayout, out_dir: str | Path
                        ) -> tuple[TrackRecord, int, list[str]]:
    """Write ``out_dir/<source>.flac``, each source mixed down to mono, unless it is there from the
    same WAV (``out_dir/mono.json`` records each file's size and modification time). Returns the
    track's data-directory record, how many files were written, and warnings (anti-phase sources)."""
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST
    manifest = _read_manifest(manifest_path)
    done: dict[str, Any] = manifest.setdefault("sources", {})
    written, warnings = 0, []
    for source in layout.sources:
        wav = track.directory / layout.files[source]
        target = out_dir / f"{source}.flac"
        stamp = _stamp(wav)
        if target.is_file() and done.get(source) == stamp:
            continue
        audio, _ = read_audio(wav, sample_rate=None, mono=False)
        mono, cancelled = mix_down(audio)
        if cancelled:
            warnings.append(f"{wav}: its {len(audio)} channels cancel in the mono mix-down ({cancelled}): "
                            f"anti-phase? {source} is lost in {target}")
        write_audio(target, mono, track.sample_rate)
        done[source] = stamp
        tmp = manifest_path.with_name(f".{manifest_path.name}.tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        tmp.replace(manifest_path)
        written += 1
    record = TrackRecord(track.track_id, track.directory / layout.mixture,
                         {source: out_dir / f"{source}.flac" for source in layout.sources},
                         track.frames / track.sample_rate)
    return record, written, warnings


def prepare_musdb(corpus: str | Path, out: str | Path, audio_out: str | Path | None = None,
                  validation_tracks: Sequence[str] | None = None, layout: MusdbLayout | None = None,
                  jobs: int = 1, log: Callable[[str], None] = logger.info) -> dict[str, Path]:
    """Recipe stage 1: write ``out/<set>/`` data directories and ``audio_out/<set>/<id>/<source>.flac``.

    ``validation_tracks`` (default: musdb's standard list) are the train/ folders of the validation
    set. Every track is checked first and all problems are raised at once (:class:`MusdbError`), so a
    broken corpus leaves no partial output; ``audio_out`` defaults to ``audio/`` beside ``out``.
    Returns the written data directories.
    """
    layout = layout or read_layout()
    validation = tuple(validation_tracks) if validation_tracks is not None else layout.validation_tracks
    audio_out = Path(audio_out) if audio_out is not None else Path(out).parent / "audio"
    sets = list_tracks(corpus, validation)
    errors, checked = [], {}
    for name, tracks in sets.items():
        log(f"{name}: {len(tracks)} tracks")
        checked[name] = []
        for track in tracks:
            track, problems = check_track(track, layout)
            checked[name].append(track)
            errors += problems
    if errors:
        raise MusdbError(f"{len(errors)} problem(s) in {corpus}:\n" + "\n".join(errors))

    written, warned = {}, 0
    for name, tracks in checked.items():
        records, set_warned = prepare_tracks(write_track_sources,
                                             [(t, layout, audio_out / name / t.track_id) for t in tracks],
                                             jobs, name, log, logger)
        warned += set_warned
        target = Path(out) / name
        DataDir.from_tracks(layout.sources, records).write(target)
        problems = validate_data_dir(target, check_audio=True)
        if problems:
            raise DataDirError(problems)
        hours = sum(r.duration for r in records) / 3600
        log(f"{name}: wrote {target} ({len(records)} tracks, {hours:.2f} h, sources: "
            f"{' '.join(layout.sources)})")
        written[name] = target
    if warned:
        logger.warning("%d warning(s) about the corpus above: check them before training", warned)
    return written
