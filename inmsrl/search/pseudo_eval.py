"""Does per-instrument search find what the weights ask for? Hit rates on pseudo pieces of a test dump.

A pseudo piece (the paper's MES-Pseudo construction, §4.2) takes one instrument, the *target*, from a
segment of song A and every other source from a segment of song B. The test songs' mixtures are
indexed in windows; each pseudo piece is the query. Weighting only the target (``piano=1``) should
find A — the song the query's piano comes from — and weighting another instrument (``drums=1``)
should find B. For each target instrument and each weighting, this reports how often the top hit is
A (shares the target) and how often B (shares the rest); chance is 1 / number of songs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inmsrl.data.dump import Dump
from inmsrl.data.segments import ensure_segment_tables
from inmsrl.search.embedder import Embedder
from inmsrl.search.index import Index


class PseudoEvalError(ValueError):
    """The dump or the options cannot give the pseudo pieces asked for."""


def index_dump(embedder: Embedder, dump: Dump) -> Index:
    """The mixtures (sum of the stems) of every track of ``dump``, embedded in windows and indexed."""
    tracks = []
    for t, track_id in enumerate(dump.track_ids):
        mixture = dump.segment(t, 0, int(dump.lengths[t])).sum(axis=0)
        tracks.append(embedder.embed_array(mixture, dump.sample_rate, track_id))
    return Index.build(tracks)


def pseudo_piece_rates(embedder: Embedder, dump: Dump, instruments: Sequence[str], queries: int = 50,
                       seed: int = 0, index: Index | None = None) -> dict[str, Any]:
    """``rates[target][weighted] = {"shares_target", "shares_rest", "queries"}`` and the chance rate."""
    unknown = [name for name in instruments if name not in embedder.sources or name not in dump.sources]
    if unknown or len(instruments) < 2:
        raise PseudoEvalError(f"need two or more instruments that both the model "
                              f"({', '.join(embedder.sources)}) and {dump.root} ({', '.join(dump.sources)}) "
                              f"have; got {', '.join(instruments)}")
    if dump.sample_rate != embedder.sample_rate:
        raise PseudoEvalError(f"{dump.root} is at {dump.sample_rate} Hz, the model takes "
                              f"{embedder.sample_rate} Hz")
    index = index or index_dump(embedder, dump)
    table = ensure_segment_tables(dump, [embedder.window])[embedder.window]
    rng = np.random.default_rng(seed)
    rates: dict[str, Any] = {}
    for target in instruments:
        s = dump.sources.index(target)
        others = [dump.sources.index(name) for name in instruments if name != target]
        with_target = np.flatnonzero(table.active[:, s])
        with_others = np.flatnonzero(table.active[:, others].all(axis=1))
        pairs = []
        for _ in range(100 * queries):
            if len(pairs) == queries or not len(with_target) or not len(with_others):
                break
            a, b = rng.choice(with_target), rng.choice(with_others)
            if table.track[a] != table.track[b]:
                pairs.append((a, b))
        if not pairs:
            raise PseudoEvalError(f"{dump.root}: no two songs where {target} and the others "
                                  f"({', '.join(n for n in instruments if n != target)}) are audible")
        found = {name: {"A": 0, "B": 0} for name in instruments}
        for a, b in pairs:
            stems = dump.segment(int(table.track[b]), int(table.start[b]), table.length)
            stems[s] = dump.segment(int(table.track[a]), int(table.start[a]), table.length, [s])[0]
            query = embedder.embed_array(stems.sum(axis=0), dump.sample_rate, "pseudo piece")
            for weighted in instruments:
                top = index.search(query, {weighted: 1.0}, k=1)[0].track_id
                found[weighted]["A"] += top == dump.track_ids[table.track[a]]
                found[weighted]["B"] += top == dump.track_ids[table.track[b]]
        rates[target] = {weighted: {"shares_target": counts["A"] / len(pairs),
                                    "shares_rest": counts["B"] / len(pairs), "queries": len(pairs)}
                         for weighted, counts in found.items()}
    return {"rates": rates, "chance": 1 / dump.num_tracks, "songs": dump.num_tracks,
            "window": embedder.window, "model": embedder.name}


def format_rates(result: dict[str, Any]) -> str:
    """The rates as a table: one row per (target instrument, weighting)."""
    lines = [f"Per-instrument search on pseudo pieces ({result['model']}, {result['songs']} songs, "
             f"{result['window']:g} s windows; chance {100 * result['chance']:.1f} %)",
             f"{'target (from A)':<16}{'weights':<14}{'top hit A (shares target) %':>30}"
             f"{'top hit B (shares the rest) %':>32}{'queries':>9}"]
    for target, row in result["rates"].items():
        for weighted, rate in row.items():
            lines.append(f"{target:<16}{weighted + '=1':<14}{100 * rate['shares_target']:>30.1f}"
                         f"{100 * rate['shares_rest']:>32.1f}{rate['queries']:>9d}")
    return "\n".join(lines)
