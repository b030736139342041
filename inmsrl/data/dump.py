"""The dump: every (track, source) of a data directory decoded once into one memory-mapped array.

Training never decodes FLAC (docs/design.md §3). ``dump_data_dir`` writes, for one data directory,

* ``audio.int16`` — a raw ``(num_sources, total_samples)`` int16 array (C order): row ``s`` is source
  ``s`` of every track, tracks one after another, so any segment of any (track, source) is one slice;
  every source of a track is cut or zero-padded to the length of the track's mix;
* ``dump.yaml`` — sources, sample rate, and per track its id, offset and length; written last, so its
  presence means the dump is complete;
* ``progress.txt`` while it runs — the ids already written, so a killed dump resumes where it stopped.

Audio that is not at the dump's sample rate or not mono is resampled and mixed down on the way in
(``inmsrl.audio.io.read_audio``); an unreadable or truncated file, or one with NaN/inf samples, stops
the dump with an error naming it.

A dump records two fingerprints of what it was made from: *which* data (sources, track ids, audio
paths, sample rate) and *what content* (every audio file's size and modification time). Asked to dump
other data into a finished dump is an error; the same data whose audio changed (e.g. regenerated
submixes) is dumped again, and the segment tables built from the old audio are removed with it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from inmsrl.audio.io import SAMPLE_RATE, audio_info, read_audio
from inmsrl.data.datadir import MIX, DataDir

AUDIO_FILE = "audio.int16"
INDEX_FILE = "dump.yaml"
PROGRESS_FILE = "progress.txt"
LAYOUT_FILE = "layout.yaml"  # the planned index, written before any audio, for resuming
SEGMENT_TABLES = "segments_*s.npz"  # inmsrl.data.segments.table_path: derived from the audio
INT16_SCALE = 32768.0


class DumpError(RuntimeError):
    """A dump cannot be written or read as asked."""


@dataclass(frozen=True)
class Dump:
    """A finished dump, memory-mapped read-only; ``audio[s, offsets[t]:offsets[t] + lengths[t]]``."""

    root: Path
    sources: tuple[str, ...]
    sample_rate: int
    track_ids: tuple[str, ...]
    offsets: np.ndarray
    lengths: np.ndarray
    audio: np.ndarray

    @classmethod
    def open(cls, root: str | Path) -> Dump:
        """Map the dump in ``root``; raises :class:`DumpError` if it is missing or unfinished."""
        root = Path(root)
        index_path = root / INDEX_FILE
        if not index_path.is_file():
            hint = " (unfinished: re-run the dump to resume it)" if (root / LAYOUT_FILE).exists() else ""
            raise DumpError(f"no finished dump in {root}: {index_path} is missing{hint}")
        index = _read_yaml(index_path)
        try:
            sources = tuple(index["sources"])
            tracks = index["tracks"]
            track_ids = tuple(str(t["id"]) for t in tracks)
            offsets = np.array([int(t["offset"]) for t in tracks], dtype=np.int64)
            lengths = np.array([int(t["length"]) for t in tracks], dtype=np.int64)
            total = int(index["total_samples"])
            sample_rate = int(index["sample_rate"])
        except (KeyError, TypeError, ValueError) as err:
            raise DumpError(f"{index_path}: malformed dump index ({err!r})") from err
        audio_path = root / AUDIO_FILE
        expected = len(sources) * total * np.dtype(np.int16).itemsize
        if not audio_path.is_file() or audio_path.stat().st_size != expected:
            raise DumpError(f"{audio_path}: missing or not {expected} bytes as {index_path} says")
        audio = np.memmap(audio_path, dtype=np.int16, mode="r", shape=(len(sources), total))
        return cls(root, sources, sample_rate, track_ids, offsets, lengths, audio)

    def __reduce__(self):
        # Loader workers started by "spawn" re-map the file instead of receiving a copy of the audio.
        return (Dump.open, (self.root,))

    @property
    def num_tracks(self) -> int:
        return len(self.track_ids)

    def segment(self, track: int, start: int, length: int, sources: Sequence[int] | None = None
                ) -> np.ndarray:
        """Float32 audio ``(len(sources), length)`` of ``track`` from sample ``start`` (all sources
        by default); the region must lie inside the track."""
        if start < 0 or start + length > self.lengths[track]:
            raise IndexError(f"segment [{start}, {start + length}) outside track {self.track_ids[track]} "
                             f"of {self.lengths[track]} samples")
        begin = self.offsets[track] + start
        rows = slice(None) if sources is None else list(sources)
        return self.audio[rows, begin:begin + length].astype(np.float32) / INT16_SCALE

    def pcm(self, track: int, source: int, start: int, length: int) -> np.ndarray:
        """The raw int16 samples of one (track, source) region: a view of the map, no copy, no checks
        beyond the track's bounds (the hot path of the training loaders)."""
        if start < 0 or start + length > self.lengths[track]:
            raise IndexError(f"segment [{start}, {start + length}) outside track {self.track_ids[track]}")
        begin = self.offsets[track] + start
        return self.audio[source, begin:begin + length]


def dump_data_dir(data_dir: str | Path, out: str | Path, sample_rate: int = SAMPLE_RATE, jobs: int = 1,
                  progress: Callable[[str], None] | None = None) -> Dump:
    """Dump ``data_dir`` into ``out`` (resuming an interrupted dump of the same data) and open it.

    ``progress`` receives one line per track written. A finished dump of the same data and sample rate
    is returned as it is; one of different data is an error rather than silently overwritten.
    """
    data = DataDir.load(data_dir)
    out = Path(out)
    fingerprint = _fingerprint(data, sample_rate)
    content = content_stamp(data)
    if (out / INDEX_FILE).exists():
        index = _read_yaml(out / INDEX_FILE)
        if index.get("fingerprint") != fingerprint:
            raise DumpError(f"{out} holds a dump of other data (or another sample rate) than {data_dir}; "
                            f"remove it to dump again")
        if index.get("content") == content:
            return Dump.open(out)
        if progress:
            progress(f"{out}: the audio of {data_dir} changed since it was dumped (file sizes or "
                     "modification times differ); dumping again")
        (out / INDEX_FILE).unlink()

    out.mkdir(parents=True, exist_ok=True)
    layout = _plan_or_resume(data, out, sample_rate, fingerprint, content)
    done = _read_progress(out / PROGRESS_FILE)
    todo = [i for i, t in enumerate(layout["tracks"]) if t["id"] not in done]
    total = int(layout["total_samples"])
    audio_path = out / AUDIO_FILE
    if not audio_path.exists():
        np.memmap(audio_path, dtype=np.int16, mode="w+", shape=(len(data.sources), total)).flush()

    jobs_args = [(str(audio_path), len(data.sources), total, int(layout["tracks"][i]["offset"]),
                  int(layout["tracks"][i]["length"]),
                  [str(data.audio_path(layout["tracks"][i]["id"], s)) for s in data.sources], sample_rate)
                 for i in todo]
    with open(out / PROGRESS_FILE, "a") as progress_file:
        def record(i: int) -> None:
            track_id = layout["tracks"][i]["id"]
            progress_file.write(track_id + "\n")
            progress_file.flush()
            if progress:
                progress(f"dumped {track_id} ({len(done) + 1}/{len(layout['tracks'])})")
            done.add(track_id)

        if jobs <= 1:
            for i, args in zip(todo, jobs_args, strict=True):
                _write_track(*args)
                record(i)
        else:
            # Not forked from this process: resampling may have started torch's thread pool here,
            # and a forked child that resamples too would wait forever on its locks.
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("forkserver")
                                     ) as pool:
                futures = {pool.submit(_write_track, *args): i
                           for i, args in zip(todo, jobs_args, strict=True)}
                for future in as_completed(futures):
                    future.result()
                    record(futures[future])

    _write_yaml(out / INDEX_FILE, layout)
    (out / PROGRESS_FILE).unlink(missing_ok=True)
    (out / LAYOUT_FILE).unlink(missing_ok=True)
    return Dump.open(out)


def _fingerprint(data: DataDir, sample_rate: int) -> str:
    """A hash of what the dump is made from: sources, ids, paths and the sample rate."""
    digest = hashlib.sha256(f"{sample_rate} {' '.join(data.sources)}\n".encode())
    for tid in data.track_ids:
        digest.update(" ".join([tid, *(str(data.audio_path(tid, s)) for s in data.sources)]).encode())
    return digest.hexdigest()[:16]


def content_stamp(data: DataDir) -> str:
    """A hash of every audio file's size and modification time (ns): changes when any file is rewritten."""
    digest = hashlib.sha256()
    for tid in data.track_ids:
        for name in (MIX, *data.sources):
            path = data.audio_path(tid, name)
            try:
                stat = path.stat()
            except OSError as err:
                raise DumpError(f"{path}: cannot read: {err.strerror or err}") from err
            digest.update(f"{path} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _plan_or_resume(data: DataDir, out: Path, sample_rate: int, fingerprint: str, content: str) -> dict:
    """The index to fill: reused from an interrupted run of the same data and audio, else planned anew
    (dropping the audio, progress and segment tables of the old plan)."""
    layout_path = out / LAYOUT_FILE
    if layout_path.exists():
        layout = _read_yaml(layout_path)
        if layout.get("fingerprint") == fingerprint and layout.get("content") == content:
            return layout
    for stale in (AUDIO_FILE, PROGRESS_FILE, *(p.name for p in out.glob(SEGMENT_TABLES))):
        (out / stale).unlink(missing_ok=True)
    tracks, offset = [], 0
    for tid in data.track_ids:
        info = audio_info(data.audio_path(tid, MIX))
        length = int(round(info.frames * sample_rate / info.samplerate))
        tracks.append({"id": tid, "offset": offset, "length": length})
        offset += length
    layout = {"sources": list(data.sources), "sample_rate": sample_rate, "total_samples": offset,
              "tracks": tracks, "fingerprint": fingerprint, "content": content}
    _write_yaml(layout_path, layout)
    return layout


def _write_track(audio_path: str, num_sources: int, total: int, offset: int, length: int,
                 paths: list[str], sample_rate: int) -> None:
    """Decode one track's sources and write them into their slice of the shared array."""
    audio = np.memmap(audio_path, dtype=np.int16, mode="r+", shape=(num_sources, total))
    for row, path in enumerate(paths):
        signal, _ = read_audio(path, sample_rate=sample_rate)
        signal = signal[:length]
        pcm = np.zeros(length, dtype=np.int16)
        pcm[:len(signal)] = np.clip(np.round(signal * INT16_SCALE), -32768, 32767).astype(np.int16)
        audio[row, offset:offset + length] = pcm
    audio.flush()
    del audio


def _read_progress(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _read_yaml(path: Path) -> dict:
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DumpError(f"cannot read {path}: {err}") from err
    if not isinstance(content, dict):
        raise DumpError(f"{path}: expected a mapping")
    return content


def _write_yaml(path: Path, content: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(content, sort_keys=False))
    os.replace(tmp, path)
