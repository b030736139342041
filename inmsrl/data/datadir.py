"""The Kaldi-style data directory: the one contract between a corpus recipe and every later stage.

A data directory ``data/<set>/`` holds

* ``sources`` — the source names in order on one line (e.g. ``vocals drums bass other``); models
  read their instrument list from here, never from code;
* ``mix.scp`` and one ``<source>.scp`` per source — ``<track_id> <audio path>`` per line, sorted by id
  (byte order, as ``LC_ALL=C sort``), every file listing the SAME ids: a track without an instrument
  points at a silent file, so no later stage special-cases absence;
* ``track2dur`` — ``<track_id> <seconds>``, same ids, same order.

Paths are stored as written; relative ones are relative to the working directory of the process that
reads them (the recipe directory), as in Kaldi. :func:`validate_data_dir` reports every problem at
once, each naming the file and line, so that a broken ``local/data.sh`` is fixed in one round.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

MIX = "mix"
SOURCES_FILE = "sources"
DURATION_FILE = "track2dur"
SCP_SUFFIX = ".scp"
# A source name becomes a file name (``<name>.scp``) and a YAML/CLI token, so keep it plain.
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
DEFAULT_DURATION_TOLERANCE = 0.05  # seconds


class DataDirError(ValueError):
    """A data directory breaks the contract; ``errors`` lists every problem found, one per entry."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class TrackRecord:
    """One track's row in every file of a data directory."""

    track_id: str
    mix: str | Path
    sources: Mapping[str, str | Path]
    duration: float


@dataclass(frozen=True)
class DataDir:
    """A loaded (or about to be written) data directory; ``paths[name][track_id]`` is an audio path.

    ``name`` is a source or ``"mix"``. Build one with :meth:`from_tracks` or :meth:`load`.
    """

    sources: tuple[str, ...]
    track_ids: tuple[str, ...]
    paths: Mapping[str, Mapping[str, str]]
    durations: Mapping[str, float]
    root: Path | None = field(default=None, compare=False)

    @classmethod
    def from_tracks(cls, sources: Iterable[str], tracks: Iterable[TrackRecord]) -> DataDir:
        """Collect track records into a data directory (sorted by id); raises on contract breaks."""
        sources = tuple(sources)
        errors = source_name_errors(sources, where="sources")
        records = sorted(tracks, key=lambda record: record.track_id)
        paths: dict[str, dict[str, str]] = {name: {} for name in (MIX, *sources)}
        durations: dict[str, float] = {}
        for record in records:
            tid = record.track_id
            if not tid or any(ch.isspace() for ch in tid):
                errors.append(f"track id {tid!r} is empty or contains whitespace")
            if tid in durations:
                errors.append(f"track id {tid!r} given twice")
            if not (math.isfinite(record.duration) and record.duration > 0):
                errors.append(f"track {tid}: duration {record.duration!r} is not a positive number")
            durations[tid] = float(record.duration)
            missing = [name for name in sources if name not in record.sources]
            extra = [name for name in record.sources if name not in sources]
            if missing or extra:
                errors.append(f"track {tid}: sources {sorted(record.sources)} do not match {list(sources)}")
            for name, value in ((MIX, record.mix), *record.sources.items()):
                text = str(value)
                if not text or text != text.strip() or "\n" in text:
                    errors.append(f"track {tid}: {name} path {text!r} is empty or has surrounding whitespace")
                if name in paths:
                    paths[name][tid] = text
        if errors:
            raise DataDirError(errors)
        return cls(sources, tuple(durations), paths, durations)

    @classmethod
    def load(cls, root: str | Path, check_paths: bool = True) -> DataDir:
        """Read ``root`` after validating it (audio not opened); raises :class:`DataDirError`."""
        root = Path(root)
        errors = validate_data_dir(root, check_paths=check_paths)
        if errors:
            raise DataDirError(errors)
        sources = tuple(_read_sources(root / SOURCES_FILE, []))
        paths = {name: dict(_parse_table(root / f"{name}{SCP_SUFFIX}", [])[0]) for name in (MIX, *sources)}
        durations = {tid: float(value) for tid, value in _parse_table(root / DURATION_FILE, [])[0]}
        return cls(sources, tuple(paths[MIX]), paths, durations, root)

    def __len__(self) -> int:
        return len(self.track_ids)

    def audio_path(self, track_id: str, name: str) -> Path:
        """Audio file of ``track_id`` for source ``name`` (or ``"mix"``)."""
        return Path(self.paths[name][track_id])

    def write(self, root: str | Path) -> None:
        """Write the directory so that readers never see a half-written one.

        The files are written into a temporary sibling directory which then replaces ``root`` (any
        previous content of ``root`` is discarded: a data directory is produced whole by one tool).
        """
        root = Path(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
        try:
            (staging / SOURCES_FILE).write_text(" ".join(self.sources) + "\n")
            for name in (MIX, *self.sources):
                table = self.paths[name]
                lines = "".join(f"{tid} {table[tid]}\n" for tid in self.track_ids)
                (staging / f"{name}{SCP_SUFFIX}").write_text(lines)
            (staging / DURATION_FILE).write_text(
                "".join(f"{tid} {self.durations[tid]:.6f}\n" for tid in self.track_ids))
            os.chmod(staging, 0o755)
            if root.exists():
                retired = root.with_name(f".{root.name}.old")
                shutil.rmtree(retired, ignore_errors=True)
                root.rename(retired)
                staging.rename(root)
                shutil.rmtree(retired)
            else:
                staging.rename(root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def source_name_errors(names: Iterable[str], where: str) -> list[str]:
    """Problems with a list of source names: none, invalid characters, duplicates, the reserved ``mix``."""
    names = list(names)
    errors = []
    if not names:
        errors.append(f"{where}: no source names")
    seen: set[str] = set()
    for name in names:
        if not SOURCE_NAME.match(name):
            errors.append(f"{where}: source name {name!r} must match {SOURCE_NAME.pattern}")
        elif name == MIX:
            errors.append(f"{where}: source name 'mix' is reserved for mix.scp")
        if name in seen:
            errors.append(f"{where}: source name {name!r} is duplicated")
        seen.add(name)
    return errors


def _read_sources(path: Path, errors: list[str]) -> list[str]:
    """Source names from the ``sources`` file (one non-empty line), appending problems to ``errors``."""
    if not path.is_file():
        errors.append(f"{path}: missing (it must list the source names on one line)")
        return []
    lines = [(number, line) for number, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    if len(lines) > 1:
        errors.append(f"{path}:{lines[1][0]}: source names must be on one line")
    names = lines[0][1].split() if lines else []
    errors.extend(source_name_errors(names, where=f"{path}:{lines[0][0] if lines else 1}"))
    return names


def _parse_table(path: Path, errors: list[str]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """``(id, value)`` rows of a two-column Kaldi table and each id's line number.

    Appends to ``errors``: empty lines, lines without a value, duplicated and unsorted ids. The value is
    the rest of the line, so a path may contain spaces.
    """
    rows: list[tuple[str, str]] = []
    line_of: dict[str, int] = {}
    previous = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.strip().split(maxsplit=1)
        if not fields:
            errors.append(f"{path}:{number}: empty line")
            continue
        if len(fields) < 2:
            errors.append(f"{path}:{number}: expected '<track_id> <value>', got {line.strip()!r}")
            continue
        tid, value = fields
        if tid in line_of:
            errors.append(f"{path}:{number}: track id {tid!r} duplicated (first on line {line_of[tid]})")
            continue
        if previous is not None and tid < previous:
            errors.append(f"{path}:{number}: track id {tid!r} after {previous!r}: not sorted "
                          "(sort with LC_ALL=C sort)")
        previous = tid
        line_of[tid] = number
        rows.append((tid, value))
    return rows, line_of


def _compare_ids(path: Path, line_of: Mapping[str, int], reference: Path, ref_ids: Iterable[str],
                 errors: list[str]) -> None:
    """Report ids of ``path`` missing from, or absent in, the reference table (``mix.scp``)."""
    ref_ids = set(ref_ids)
    for tid in sorted(set(line_of) - ref_ids):
        errors.append(f"{path}:{line_of[tid]}: track id {tid!r} is not in {reference.name}")
    missing = sorted(ref_ids - set(line_of))
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        errors.append(f"{path}: {len(missing)} track id(s) of {reference.name} missing: {shown}")


def validate_data_dir(root: str | Path, check_paths: bool = True, check_audio: bool = False,
                      sample_rate: int | None = None,
                      duration_tolerance: float = DEFAULT_DURATION_TOLERANCE, decode: bool = False,
                      jobs: int = 1, progress: bool = False) -> list[str]:
    """Every way ``root`` breaks the contract, as ``file:line: message`` strings (empty when valid).

    ``check_paths`` checks that each audio path exists; ``check_audio`` also opens each file's header
    (once the text files are valid): it must be readable, have the same sample rate as the track's
    other files (and ``sample_rate`` if given), and last ``track2dur`` seconds within
    ``duration_tolerance``. ``decode`` (with ``check_audio``) decodes every file to its end, in ``jobs``
    processes: a truncated file or one with NaN/inf samples is an error naming the file and sample.
    ``progress`` shows a progress bar on stderr when it is a terminal.
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a directory"]
    errors: list[str] = []
    sources = _read_sources(root / SOURCES_FILE, errors)
    names = [MIX] + [name for name in dict.fromkeys(sources) if SOURCE_NAME.match(name) and name != MIX]
    tables: dict[str, tuple[Path, list[tuple[str, str]], dict[str, int]]] = {}
    for name in names:
        path = root / f"{name}{SCP_SUFFIX}"
        if not path.is_file():
            errors.append(f"{path}: missing" + (" (listed in sources)" if name != MIX else ""))
            continue
        rows, line_of = _parse_table(path, errors)
        if not rows and not line_of:
            errors.append(f"{path}: no tracks")
        tables[name] = (path, rows, line_of)
        if check_paths:
            for tid, value in rows:
                if not Path(value).is_file():
                    errors.append(f"{path}:{line_of[tid]}: {tid}: audio file {value} does not exist")

    reference = tables.get(MIX)
    if reference is None:  # compare against the first scp that could be read
        reference = next(iter(tables.values()), None)
    if reference is not None:
        ref_path, _, ref_lines = reference
        for path, _, line_of in tables.values():
            if path != ref_path:
                _compare_ids(path, line_of, ref_path, ref_lines, errors)

    durations: dict[str, float] = {}
    dur_path = root / DURATION_FILE
    if not dur_path.is_file():
        errors.append(f"{dur_path}: missing (it must give '<track_id> <seconds>' per track)")
    else:
        rows, line_of = _parse_table(dur_path, errors)
        for tid, value in rows:
            try:
                seconds = float(value)
            except ValueError:
                seconds = math.nan
            if not (math.isfinite(seconds) and seconds > 0):
                errors.append(f"{dur_path}:{line_of[tid]}: duration {value!r} of {tid} "
                              "is not a positive number")
                continue
            durations[tid] = seconds
        if reference is not None:
            _compare_ids(dur_path, line_of, reference[0], reference[2], errors)

    if check_audio and not errors:
        errors.extend(_audio_errors(tables, durations, sample_rate, duration_tolerance, decode, jobs,
                                    progress))
    return errors


def _audio_header(path: str, decode: bool) -> tuple[int, int] | str:
    """``(sample rate, frames)`` of ``path``, reading its header or (``decode``) all of it; or the error."""
    from inmsrl.audio.io import AudioReadError, audio_info, check_audio_file

    try:
        info = check_audio_file(path) if decode else audio_info(path)
    except AudioReadError as err:
        return str(err)
    return info.samplerate, info.frames


def _audio_headers(values: list[str], decode: bool, jobs: int) -> Iterator[tuple[int, int] | str]:
    """:func:`_audio_header` of every file in order, in ``jobs`` processes."""
    if jobs <= 1 or len(values) <= 1:
        yield from (_audio_header(value, decode) for value in values)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_audio_header, values, [decode] * len(values),
                            chunksize=max(1, len(values) // (8 * jobs)))


def _audio_errors(tables: Mapping[str, tuple[Path, list[tuple[str, str]], dict[str, int]]],
                  durations: Mapping[str, float], sample_rate: int | None, tolerance: float,
                  decode: bool = False, jobs: int = 1, progress: bool = False) -> list[str]:
    """Open (or decode) every file: readable, one sample rate per track, length matching ``track2dur``."""
    from tqdm import tqdm

    files = [(path, line_of[tid], tid, value) for path, rows, line_of in tables.values()
             for tid, value in rows]
    values = [value for *_, value in files]
    with tqdm(total=len(files), desc="decoding" if decode else "reading headers", unit="file",
              file=sys.stderr, disable=None if progress else True, dynamic_ncols=True) as bar:
        headers = []
        for header in _audio_headers(values, decode, jobs):
            headers.append(header)
            bar.update()

    errors = []
    rate_of: dict[str, tuple[int, Path, int]] = {}
    for (path, line, tid, value), header in zip(files, headers, strict=True):
        where = f"{path}:{line}"
        if isinstance(header, str):
            errors.append(f"{where}: {header}")
            continue
        rate, frames = header
        if sample_rate is not None and rate != sample_rate:
            errors.append(f"{where}: {value} has sample rate {rate}, expected {sample_rate}")
        first = rate_of.setdefault(tid, (rate, path, line))
        if first[0] != rate:
            errors.append(f"{where}: {value} has sample rate {rate} but "
                          f"{first[1].name}:{first[2]} has {first[0]} for the same track")
        seconds = frames / rate
        if abs(seconds - durations[tid]) > tolerance:
            errors.append(f"{where}: {value} lasts {seconds:.3f} s but track2dur gives "
                          f"{durations[tid]:.3f} s for {tid} (tolerance {tolerance} s)")
    return errors
