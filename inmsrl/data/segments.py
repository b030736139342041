"""Fixed-length segment tables over a dump, with per-source activity.

A table lists every non-overlapping segment of ``length`` samples of every track (the tail shorter
than a segment is dropped) and, per source, whether the source is active in it. The silence rule is the
authors' (docs/design.md §3): a source is *silent* in a segment if some window of a quarter of the segment
length, taken every 5000 samples from the segment's start, has max − min below 1e-4 — a part that
drops out for a quarter of the segment does not count as playing there. Running max/min filters make
this linear in the audio length, so tables for all of Slakh take minutes, not hours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from inmsrl.data.dump import INT16_SCALE, Dump

SILENCE_HOP = 5000
SILENCE_THRESHOLD = 1e-4
SILENCE_WINDOW_FRACTION = 0.25


@dataclass(frozen=True)
class SegmentTable:
    """Segments ``i``: track index ``track[i]``, first sample ``start[i]``, ``active[i, s]`` per source."""

    length: int
    track: np.ndarray
    start: np.ndarray
    active: np.ndarray

    def __len__(self) -> int:
        return len(self.track)

    def save(self, path: str | Path) -> None:
        """Write as ``.npz`` under a temporary name first, so a reader never sees half a table."""
        path = Path(path)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, length=self.length, track=self.track, start=self.start, active=self.active)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> SegmentTable:
        with np.load(path) as table:
            return cls(int(table["length"]), table["track"], table["start"], table["active"])

    def segments_of(self, track: int) -> np.ndarray:
        """Indices of the segments of ``track``, in time order."""
        return np.flatnonzero(self.track == track)


def segment_length(seconds: float, sample_rate: int) -> int:
    """Samples in a segment of ``seconds``."""
    return int(round(seconds * sample_rate))


def table_path(dump_root: str | Path, seconds: float) -> Path:
    """Where the table of ``seconds``-long segments of a dump is kept (``segments_3s.npz``)."""
    return Path(dump_root) / f"segments_{seconds:g}s.npz"


def active_in_segments(signal: np.ndarray, starts: np.ndarray, length: int,
                       threshold: float = SILENCE_THRESHOLD, hop: int = SILENCE_HOP,
                       window_fraction: float = SILENCE_WINDOW_FRACTION) -> np.ndarray:
    """For each segment ``[start, start + length)`` of ``signal``, whether it is active (not silent)."""
    window = max(1, int(length * window_fraction))
    # range_at[i] = max - min of signal[i : i + window] (forward-looking windows).
    origin = -(window // 2)
    range_at = (maximum_filter1d(signal, window, origin=origin, mode="nearest")
                - minimum_filter1d(signal, window, origin=origin, mode="nearest"))
    window_offsets = np.arange(0, length - window + 1, hop)
    window_starts = starts[:, None] + window_offsets[None, :]
    return ~(range_at[window_starts] < threshold).any(axis=1)


def build_segment_table(dump: Dump, seconds: float) -> SegmentTable:
    """All non-overlapping ``seconds``-long segments of ``dump`` with their per-source activity."""
    length = segment_length(seconds, dump.sample_rate)
    tracks, starts, actives = [], [], []
    for t in range(dump.num_tracks):
        count = int(dump.lengths[t]) // length
        if count == 0:
            continue
        seg_starts = np.arange(count, dtype=np.int64) * length
        begin, end = int(dump.offsets[t]), int(dump.offsets[t] + dump.lengths[t])
        active = np.stack([
            active_in_segments(dump.audio[s, begin:end].astype(np.float32) / INT16_SCALE, seg_starts,
                               length)
            for s in range(len(dump.sources))], axis=1)
        tracks.append(np.full(count, t, dtype=np.int32))
        starts.append(seg_starts)
        actives.append(active)
    if not tracks:
        return SegmentTable(length, np.zeros(0, np.int32), np.zeros(0, np.int64),
                            np.zeros((0, len(dump.sources)), bool))
    return SegmentTable(length, np.concatenate(tracks), np.concatenate(starts), np.concatenate(actives))


def ensure_segment_tables(dump: Dump, seconds: list[float]) -> dict[float, SegmentTable]:
    """Load or build (and save) the tables of ``seconds`` for ``dump``; built ones are skipped on re-runs."""
    tables = {}
    for sec in seconds:
        path = table_path(dump.root, sec)
        if path.exists():
            tables[sec] = SegmentTable.load(path)
        else:
            tables[sec] = build_segment_table(dump, sec)
            tables[sec].save(path)
    return tables
