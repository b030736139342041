"""Running a corpus's per-track preparation (``prepare-slakh``'s submixes, ``prepare-musdb``'s mono
sources) over processes, with the progress lines and warning count both tools print."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from inmsrl.data.datadir import TrackRecord

# What one track's preparation returns: its record, whether it wrote anything, its warnings.
TrackResult = tuple[TrackRecord, int, list[str]]


def prepare_tracks(work: Callable[..., TrackResult], jobs: Sequence[tuple[Any, ...]], n_jobs: int,
                   label: str, log: Callable[[str], None], warn: logging.Logger
                   ) -> tuple[list[TrackRecord], int]:
    """``work(*job)`` for every job (in ``n_jobs`` processes; ``work`` must be a module-level function),
    logging progress about every 5 % or 30 s and each warning on ``warn``; returns the records, in the
    order they finished, and how many warnings were logged. A failing track stops the rest at once."""
    records: list[TrackRecord] = []
    written_tracks = warned = 0
    total = len(jobs)
    step, last_report = max(1, total // 20), time.monotonic()

    def collect(result: TrackResult) -> None:
        nonlocal written_tracks, warned, last_report
        record, written, warnings = result
        records.append(record)
        written_tracks += bool(written)
        warned += len(warnings)
        for warning in warnings:
            warn.warning("%s", warning)
        count = len(records)
        if count == total or count % step == 0 or time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            log(f"{label}: {count}/{total} tracks ({written_tracks} written, "
                f"{count - written_tracks} already up to date)")

    if n_jobs <= 1:
        for job in jobs:
            collect(work(*job))
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            futures = [pool.submit(work, *job) for job in jobs]
            try:
                for future in as_completed(futures):
                    collect(future.result())
            except BaseException:
                pool.shutdown(cancel_futures=True)  # report the failure now, not after every other track
                raise
    return records, warned
