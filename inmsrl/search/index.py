"""An index of tracks' window embeddings and per-instrument search over it.

**Metric.** A query and a catalogue window are compared instrument by instrument with the Euclidean
distance the models are trained with (the triplet loss of paper Eq. 1); the instruments' distances are
summed with the user's weights, ``d(q, x) = Σ_s w_s ‖q_s − x_s‖``. A track's distance is that of its
best-matching pair (query window, track window), which is reported with each hit, so a hit says *where*
in both pieces the instruments sound alike.

**Exact search** (the default) computes every distance with matrix products (``‖q‖² + ‖x‖² − 2 q·x``
per instrument), in chunks of windows so memory stays bounded, for any weights at query time. The
vectors are stored instrument-major, ``(instruments, windows, dim)``, so each instrument's are one
contiguous matrix (one BLAS call, and only the weighted instruments are read). That pass is float32;
the pairs that can decide the top ``k``, given a bound on its rounding, are computed again in float64,
so the ranking and the reported distances are exact.

**Approximate search** (for large catalogues) ranks only candidate tracks, exactly: those whose mean
vectors are nearest to a query window in the weighted distance (a scan of one 8-bit vector a track and
instrument; instruments weighing under half the heaviest join only among the tracks the heavy ones
chose), and those of the windows nearest to a query window in HNSW graphs (faiss) of the heavy
instruments, for a track that matches in one passage only. Their windows' distances are computed by
compiled kernels straight from the arrays (``inmsrl.search.kernels``), from a 16-bit copy of the
windows made on first use (half the memory to read; its error joins the rounding bound, so the
float64 pass still makes the ranking exact): a track's windows are one contiguous range of rows. Its
recall against exact search is measured by ``tests/test_search_index.py`` and ``bench/search.py``.

**Storage.** A directory: ``manifest.json`` (sources, model, tracks in the order of their windows, the
array files) and ``.npy`` arrays of vectors and start times (memory-mapped when searched). An update
writes new array files, then replaces the manifest atomically, then removes the old arrays, so a
killed update leaves the previous index intact.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inmsrl.memory import use_huge_pages
from inmsrl.search.embedding_file import TrackEmbedding

MANIFEST = "manifest.json"
FORMAT = "inmsrl-index"
FORMAT_VERSION = 1
CHUNK_WINDOWS = 32768   # catalogue windows per distance block (bounds memory: queries × chunk floats)
HNSW_NEIGHBOURS = 32    # faiss HNSW M
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 16     # at least; a search for more neighbours explores as many
PRIMARY_WEIGHT = 0.5    # approximate: instruments weighing less than this share of the heaviest ...
PRIMARY_FACTOR = 8      # ... are scanned only in this many times the candidates the heavy ones choose
# What must agree between an index and the embeddings added to it (vectors from other settings are not
# comparable).
COMPATIBLE_KEYS = ("model_digest", "window", "hop")
FLOAT32_EPS = float(np.finfo(np.float32).eps)


class SearchIndexError(ValueError):
    """An index that cannot be read, or an operation it refuses; the message says which and why."""


@dataclass(frozen=True)
class TrackEntry:
    """A track of the index: its id, audio file, duration, and its windows' place in the arrays."""

    track_id: str
    path: str
    duration: float
    first: int
    count: int
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.track_id, "path": self.path, "duration": self.duration, "count": self.count,
                "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class Hit:
    """One result: the track, its distance, and the best-matching window pair."""

    rank: int
    track_id: str
    path: str
    distance: float
    query_time: float   # start (s) of the query window of the best pair
    match_time: float   # start (s) of the track's window of the best pair
    per_source: dict[str, float]  # each instrument's distance in that pair

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "track": self.track_id, "path": self.path,
                "distance": round(self.distance, 6), "query_time": round(self.query_time, 3),
                "match_time": round(self.match_time, 3),
                "per_source": {k: round(v, 6) for k, v in self.per_source.items()}}


def parse_weights(text: str | Mapping[str, float] | None, sources: Sequence[str]) -> dict[str, float]:
    """Instrument weights from ``"piano=0.7,drums=0.3"`` (or a mapping); every source weighs 1 if none."""
    if text is None or text == "" or text == {}:
        return {name: 1.0 for name in sources}
    if isinstance(text, Mapping):
        pairs = list(text.items())
    else:
        pairs = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise SearchIndexError(f"weight {item!r} is not NAME=VALUE (e.g. piano=0.7,drums=0.3)")
            try:
                pairs.append((name.strip(), float(value)))
            except ValueError as err:
                raise SearchIndexError(f"weight {item!r}: {value!r} is not a number") from err
    weights: dict[str, float] = {}
    for name, value in pairs:
        if name not in sources:
            raise SearchIndexError(f"unknown instrument {name!r} in the weights (the index has "
                                   f"{', '.join(sources)})")
        if not np.isfinite(value) or value < 0:
            raise SearchIndexError(f"weight of {name} must be a finite number ≥ 0, got {value}")
        weights[name] = float(value)
    if not any(weights.values()):
        raise SearchIndexError("every weight is 0: give at least one instrument a positive weight")
    return weights


@dataclass(frozen=True)
class Weighting:
    """Search weights in the arrays the distance code uses. ``weighting`` caches them per distinct
    weights: an approximate query takes about a millisecond, of which parsing would be a visible part."""

    sources: np.ndarray     # the weighted instruments (positions), ascending
    weights: np.ndarray     # their weights, float64
    weights32: np.ndarray   # the same, float32, for the float32 kernels
    primary: np.ndarray     # the heavy instruments: weighing at least PRIMARY_WEIGHT of the heaviest
    primary_weights32: np.ndarray  # their weights, float32
    shares: tuple[float, ...]  # their weights over the heaviest


@functools.lru_cache(maxsize=256)
def _weighting(weights: str | tuple[tuple[str, float], ...] | None, sources: tuple[str, ...]) -> Weighting:
    named = parse_weights(dict(weights) if isinstance(weights, tuple) else weights, sources)
    per_source = np.array([named.get(name, 0.0) for name in sources])
    weighted = np.flatnonzero(per_source)
    heaviest = per_source.max()
    primary = weighted[per_source[weighted] >= PRIMARY_WEIGHT * heaviest]
    return Weighting(weighted, per_source[weighted], per_source[weighted].astype(np.float32),
                     primary, per_source[primary].astype(np.float32),
                     tuple(float(per_source[s] / heaviest) for s in primary))


def weighting(weights: str | Mapping[str, float] | None, sources: Sequence[str]) -> Weighting:
    """The ``Weighting`` of ``weights`` (see ``parse_weights``) over ``sources``."""
    key = tuple(weights.items()) if isinstance(weights, Mapping) else weights
    return _weighting(key, tuple(sources))


class Index:
    """Tracks' window embeddings, searchable by per-instrument weighted distance."""

    def __init__(self, sources: Sequence[str], vectors: np.ndarray, starts: np.ndarray,
                 tracks: Sequence[TrackEntry], model: Mapping[str, Any], root: Path | None = None):
        self.sources = tuple(sources)
        self.vectors, self.starts = vectors, starts  # (sources, windows, dim), (windows,)
        self.tracks = list(tracks)
        self.model = dict(model)
        self.root = root
        self._by_id = {t.track_id: i for i, t in enumerate(self.tracks)}
        self._extents: tuple[np.ndarray, np.ndarray] | None = None  # tracks' first rows and counts
        self._window_track: np.ndarray | None = None
        self._norms: dict[int, np.ndarray] = {}  # squared norms of one source's vectors, (windows,)
        self._means: tuple[np.ndarray, ...] | None = None  # see _track_means
        self._means_done: set[int] = set()  # the sources whose means are computed
        self._codes: tuple[np.ndarray, ...] | None = None  # see _window_codes
        self._codes_done: set[int] = set()
        self._norm_max: np.ndarray | None = None  # each source's largest vector norm (NaN: not yet)
        self._all_tracks: np.ndarray | None = None  # arange(len(tracks))
        self._hnsw: dict[str, Any] = {}
        self._lazy = threading.Lock()  # one thread at a time fills the caches above (threaded searches)
        self._graph_files: dict[str, Path] = {}  # stored HNSW graphs of an opened index

    # --------------------------------------------------------------------------------- building
    @classmethod
    def empty_like(cls, track: TrackEmbedding) -> Index:
        """An empty index for tracks embedded like ``track`` (same instruments, model and windowing)."""
        model = {k: v for k, v in track.meta.items() if k != "fingerprint"}
        sources, dim = track.vectors.shape[1:]
        return cls(track.sources, np.zeros((sources, 0, dim), np.float32), np.zeros(0), [], model)

    @classmethod
    def build(cls, embeddings: Iterable[TrackEmbedding | str | Path]) -> Index:
        """An index of the given track embeddings (objects or embedding files)."""
        index: Index | None = None
        batch = []
        for item in embeddings:
            track = item if isinstance(item, TrackEmbedding) else TrackEmbedding.load(item)
            if index is None:
                index = cls.empty_like(track)
            batch.append(track)
        if index is None:
            raise SearchIndexError("no track embeddings to index")
        index.add(batch)
        return index

    def _check(self, track: TrackEmbedding, where: str) -> None:
        if track.sources != self.sources or track.vectors.shape[-1] != self.vectors.shape[-1]:
            raise SearchIndexError(f"{where}: embeds {', '.join(track.sources)} in {track.vectors.shape[-1]} "
                                   f"dimensions; the index holds {', '.join(self.sources)} in "
                                   f"{self.vectors.shape[-1]}")
        if not np.isfinite(track.vectors).all():
            raise SearchIndexError(f"{where}: its vectors are not all finite numbers (NaN or infinity): "
                                   f"embed it again")
        for key in COMPATIBLE_KEYS:
            if key in self.model and track.meta.get(key) != self.model[key]:
                raise SearchIndexError(f"{where}: its {key} is {track.meta.get(key)!r}, the index's is "
                                       f"{self.model[key]!r}: vectors of another model or windowing cannot "
                                       f"be compared (embed it again with the index's model and settings)")

    def add(self, tracks: Iterable[TrackEmbedding]) -> tuple[int, int, int]:
        """Add tracks, replacing those of the same id whose embeddings changed.

        Returns (added, replaced, unchanged)."""
        new, replaced, unchanged = [], set(), 0
        for track in tracks:
            self._check(track, f"track {track.track_id!r}" + (f" ({track.path})" if track.path else ""))
            known = self._by_id.get(track.track_id)
            fingerprint = str(track.meta.get("fingerprint", ""))
            if known is not None and fingerprint and self.tracks[known].fingerprint == fingerprint:
                unchanged += 1
                continue
            if known is not None:
                replaced.add(track.track_id)
            new.append(track)
        if not new:
            return 0, 0, unchanged
        self.remove(replaced)
        offset = self.num_windows
        entries = []
        for track in new:
            entries.append(TrackEntry(track.track_id, track.path, track.duration, offset, len(track.vectors),
                                      str(track.meta.get("fingerprint", ""))))
            offset += len(track.vectors)
        added = [t.vectors.transpose(1, 0, 2) for t in new]  # to (sources, windows, dim)
        self._set(np.concatenate([np.asarray(self.vectors), *added], axis=1),
                  np.concatenate([np.asarray(self.starts), *(t.starts for t in new)]), self.tracks + entries)
        return len(new) - len(replaced), len(replaced), unchanged

    def remove(self, track_ids: Iterable[str]) -> int:
        """Remove tracks by id (an unknown id is an error naming it); returns how many were removed."""
        ids = set(track_ids)
        if not ids:
            return 0
        unknown = sorted(ids - set(self._by_id))
        if unknown:
            raise SearchIndexError(f"not in the index: {', '.join(unknown)}")
        keep = np.ones(self.num_windows, bool)
        entries, offset = [], 0
        for track in self.tracks:
            if track.track_id in ids:
                keep[track.first: track.first + track.count] = False
            else:
                entries.append(TrackEntry(track.track_id, track.path, track.duration, offset, track.count,
                                          track.fingerprint))
                offset += track.count
        self._set(np.asarray(self.vectors)[:, keep], np.asarray(self.starts)[keep], entries)
        return len(ids)

    def _set(self, vectors: np.ndarray, starts: np.ndarray, tracks: list[TrackEntry]) -> None:
        self.vectors, self.starts, self.tracks = vectors, starts, tracks
        self._by_id = {t.track_id: i for i, t in enumerate(tracks)}
        self._extents = self._window_track = self._norm_max = self._all_tracks = None
        self._norms, self._hnsw, self._graph_files = {}, {}, {}
        self._means, self._means_done, self._codes, self._codes_done = None, set(), None, set()

    # ---------------------------------------------------------------------------------- storage
    def save(self, root: str | Path, hnsw: bool = False) -> None:
        """Write the index into the directory ``root`` (atomically: see the module docstring)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        arrays = {"vectors": f"vectors-{tag}.npy", "starts": f"starts-{tag}.npy"}
        np.save(root / arrays["vectors"], np.ascontiguousarray(self.vectors, dtype=np.float32))
        np.save(root / arrays["starts"], np.asarray(self.starts, dtype=np.float64))
        graphs = {}
        if hnsw:
            import faiss

            for source in self.sources:
                name = f"windows-{source}"
                graphs[name] = f"hnsw-{name}-{tag}.faiss"
                faiss.write_index(self._hnsw_of(source), str(root / graphs[name]))
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "sources": list(self.sources),
                    "dim": int(self.vectors.shape[-1]), "model": self.model, "arrays": arrays, "hnsw": graphs,
                    "tracks": [t.to_dict() for t in self.tracks]}
        for name in [*arrays.values(), *graphs.values()]:
            _fsync(root / name)
        tmp = root / f".{MANIFEST}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(manifest, indent=1))
        _fsync(tmp)
        os.replace(tmp, root / MANIFEST)
        referenced = {MANIFEST, *arrays.values(), *graphs.values()}
        for stale in root.iterdir():
            if stale.name not in referenced and stale.suffix in (".npy", ".faiss"):
                stale.unlink()
        self.root = root

    @classmethod
    def open(cls, root: str | Path) -> Index:
        """The index in directory ``root`` (vectors memory-mapped)."""
        root = Path(root)
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except FileNotFoundError as err:
            raise SearchIndexError(f"{root} is not an index (no {MANIFEST}); build one with inmsrl index"
                                   ) from err
        except json.JSONDecodeError as err:
            raise SearchIndexError(f"{root / MANIFEST} is damaged: {err}") from err
        if manifest.get("format") != FORMAT or manifest.get("format_version", 0) > FORMAT_VERSION:
            raise SearchIndexError(f"{root / MANIFEST} is not an inmsrl index of a version this inmsrl reads")
        vectors = np.load(root / manifest["arrays"]["vectors"], mmap_mode="r", allow_pickle=False)
        starts = np.load(root / manifest["arrays"]["starts"], allow_pickle=False)
        tracks, first = [], 0
        for item in manifest["tracks"]:
            tracks.append(TrackEntry(item["id"], item["path"], float(item["duration"]), first,
                                     int(item["count"]), item.get("fingerprint", "")))
            first += int(item["count"])
        if vectors.ndim != 3 or first != vectors.shape[1] or len(starts) != first:
            raise SearchIndexError(f"{root}: the manifest's tracks hold {first} windows, the arrays "
                                   f"{vectors.shape} and {starts.shape}: the index is damaged; build it "
                                   f"again")
        index = cls(manifest["sources"], vectors, starts, tracks, manifest.get("model", {}), root)
        index._graph_files = {name: root / file for name, file in manifest.get("hnsw", {}).items()}
        return index

    # ----------------------------------------------------------------------------------- search
    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def num_windows(self) -> int:
        return self.vectors.shape[1]

    def track(self, track_id: str) -> TrackEntry:
        if track_id not in self._by_id:
            raise SearchIndexError(f"track {track_id!r} is not in the index")
        return self.tracks[self._by_id[track_id]]

    def track_vectors(self, track_id: str) -> TrackEmbedding:
        """An indexed track's embeddings (to query with it)."""
        entry = self.track(track_id)
        rows = slice(entry.first, entry.first + entry.count)
        vectors = np.array(self.vectors[:, rows]).transpose(1, 0, 2)
        return TrackEmbedding(entry.track_id, self.sources, vectors,
                              np.array(self.starts[rows]), entry.duration, entry.path, dict(self.model))

    @property
    def track_extents(self) -> tuple[np.ndarray, np.ndarray]:
        """Each track's first window row and its number of windows, ``(tracks,)`` arrays each."""
        if self._extents is None:
            self._extents = (np.array([t.first for t in self.tracks], np.int64),
                             np.array([t.count for t in self.tracks], np.int64))
        return self._extents

    @property
    def window_track(self) -> np.ndarray:
        """The track (position in ``tracks``) of each window."""
        if self._window_track is None:
            self._window_track = np.repeat(np.arange(len(self.tracks)), self.track_extents[1])
        return self._window_track

    def _norms_of(self, s: int) -> np.ndarray:
        """Squared norms of source ``s``'s window vectors (computed once, on first use)."""
        if s not in self._norms:
            vectors = self.vectors[s]
            chunks = [vectors[b:b + CHUNK_WINDOWS] for b in range(0, self.num_windows, CHUNK_WINDOWS)]
            self._norms[s] = np.concatenate([np.einsum("wd,wd->w", c, c) for c in chunks] or [np.zeros(0)])
        return self._norms[s]

    def _distances(self, query: np.ndarray, rows: slice, weights: Weighting) -> np.ndarray:
        """For catalogue windows ``rows``: the smallest over the query windows ``(windows, sources, dim)``
        of the float32 distance ``Σ_s w_s ‖q_s − x_s‖``, each instrument by matrix product
        (``‖q‖² + ‖x‖² − 2 q·x``)."""
        total = None
        for s, weight in zip(weights.sources, weights.weights32, strict=True):
            q, x = query[:, s], np.asarray(self.vectors[s][rows])
            squared = (q * q).sum(-1)[:, None] + self._norms_of(s)[rows][None, :] - 2.0 * (q @ x.T)
            term = weight * np.sqrt(np.maximum(squared, 0.0, out=squared), out=squared)
            total = term if total is None else total + term
        return total.min(axis=0)

    def _rounding_slack(self, query: np.ndarray, weights: Weighting, coded: bool) -> float:
        """A bound on how far a float32 weighted distance can be from the exact one.

        A sum of ``dim`` products in any order errs by at most ``γ`` times the sum of their magnitudes,
        ``γ ≈ (dim + 4)ε`` with the few roundings around it (taken twice, to spare the argument).
        ``coded``: computed by the compiled kernel from the differences ``q − x̂`` of the 16-bit windows
        ``x̂ = low + step ⊙ code`` (``_window_codes``, which measures the norms and errors this needs),
        so the squared distance errs by at most ``γ‖q − x̂‖²`` and the distance by ``γ(‖q‖ + ‖x̂‖)``, with
        ``γ‖low‖`` more for forming the differences, and ``‖x − x̂‖`` for the codes. Otherwise as
        ``‖q‖² + ‖x‖² − 2q·x`` (matrix products), which errs by up to ``γ(‖q‖ + ‖x‖)²`` however small the
        distance, so the distance by the square root of that."""
        gamma = 2.0 * (self.vectors.shape[-1] + 4) * FLOAT32_EPS
        sources = weights.sources
        q = query[:, sources].astype(np.float64)
        query_norm = np.sqrt((q * q).sum(axis=-1).max(axis=0))
        if coded:
            *_, error, decoded_norm, low_norm = self._window_codes(sources)
            return float(weights.weights @ (gamma * (query_norm + decoded_norm[sources] + low_norm[sources])
                                            + error[sources]))
        if self._norm_max is None:
            self._norm_max = np.full(len(self.sources), np.nan)
        for s in sources[np.isnan(self._norm_max[sources])]:
            self._norm_max[s] = np.sqrt(self._norms_of(s).max())  # (the matrix products need the norms)
        return float(weights.weights @ (query_norm + self._norm_max[sources])) * (np.sqrt(gamma) + gamma)

    def search(self, query: TrackEmbedding | str, weights: str | Mapping[str, float] | None = None,
               k: int = 10, approximate: bool = False, candidates: int = 100,
               window_candidates: int = 16, exclude: Iterable[str] = ()) -> list[Hit]:
        """The ``k`` tracks nearest to ``query`` (embeddings, or the id of an indexed track).

        Distances are computed in float32 for every window (approximate: for the windows of the
        candidate tracks, see ``_candidate_distances``), then again in float64 for the windows that can
        be the best of a top-``k`` track given a bound on float32 rounding (``_rounding_slack``), so
        that the ranking, the reported distances and the window pairs are exact (in float32,
        ``‖q‖² + ‖x‖² − 2q·x`` can lose small distances entirely)."""
        if k < 1:
            raise SearchIndexError(f"k must be at least 1, got {k}")
        if approximate and (candidates < 1 or window_candidates < 0):
            raise SearchIndexError(f"approximate search needs candidates ≥ 1 and window candidates ≥ 0, got "
                                   f"{candidates} and {window_candidates}")
        if isinstance(query, str):
            query = self.track_vectors(query)
        if query.sources != self.sources:
            raise SearchIndexError(f"the query embeds {', '.join(query.sources)}; the index holds "
                                   f"{', '.join(self.sources)}")
        for key in COMPATIBLE_KEYS:
            if key in self.model and key in query.meta and query.meta[key] != self.model[key]:
                raise SearchIndexError(f"the query's {key} is {query.meta[key]!r}, the index's "
                                       f"{self.model[key]!r}: embed the query with the index's model and "
                                       f"settings")
        from inmsrl.search import kernels

        w = weighting(weights, self.sources)
        vectors = np.ascontiguousarray(query.vectors, dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise SearchIndexError("the query's vectors are not all finite numbers (NaN or infinity)")
        excluded = [self._by_id[t] for t in exclude if t in self._by_id]
        if not self.num_windows:
            return []
        if approximate:
            best, tracks, starts = self._candidate_distances(vectors, w, candidates, window_candidates)
        else:
            best = np.concatenate([self._distances(vectors, slice(b, b + CHUNK_WINDOWS), w)
                                   for b in range(0, self.num_windows, CHUNK_WINDOWS)])
            tracks, starts = np.arange(len(self.tracks)), self.track_extents[0]
        minima = np.minimum.reduceat(best, starts)  # each track's best (its windows are one range)
        if excluded:
            keep = ~np.isin(tracks, excluded)
            tracks, minima, starts = tracks[keep], minima[keep], starts[keep]
        if not len(tracks):
            return []
        # Each float32 distance is within `slack` of the exact one, so a track of the exact top k has a
        # float32 best within 2 slack of the k-th smallest, and its exact best window a float32
        # distance within 2 slack of the track's float32 best: only those are computed again.
        slack = 2 * self._rounding_slack(vectors, w, coded=approximate)
        kth = np.partition(minima, k - 1)[k - 1] if len(minima) > k else minima.max()
        shortlist = np.flatnonzero(minima <= kth + slack)
        firsts, counts = (part[tracks[shortlist]] for part in self.track_extents)
        distances, windows, query_windows, per_source = kernels.best_pairs(
            self.vectors, vectors, w.sources, w.weights, best, firsts, counts, starts[shortlist],
            minima[shortlist] + slack)
        top = np.argsort(distances, kind="stable")[:k]
        names = [self.sources[s] for s in w.sources]
        columns = zip(tracks[shortlist[top]].tolist(), distances[top].tolist(),
                      np.asarray(query.starts, np.float64)[query_windows[top]].tolist(),
                      np.asarray(self.starts[windows[top]], np.float64).tolist(), per_source[top].tolist(),
                      strict=True)
        return [Hit(rank, self.tracks[track].track_id, self.tracks[track].path, distance, query_time,
                    match_time, dict(zip(names, each, strict=True)))
                for rank, (track, distance, query_time, match_time, each) in enumerate(columns, start=1)]

    # ----------------------------------------------------------------------------- approximate
    def _track_means(self, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every track's mean vectors in 8 bits: codes ``(sources, tracks, dim)``, each dimension's offset
        and step ``(sources, dim)``, and the squared norms of the means they stand for ``(sources,
        tracks)``; those of ``sources`` are computed on first use."""
        with self._lazy:
            if self._means is None:
                shape = (len(self.sources), self.vectors.shape[-1])
                self._means = (np.zeros((shape[0], len(self.tracks), shape[1]), np.uint8),
                               np.zeros(shape, np.float32), np.zeros(shape, np.float32),
                               np.zeros((shape[0], len(self.tracks)), np.float32))
            codes, low, step, norms = self._means
            firsts, counts = self.track_extents
            for s in set(sources.tolist()) - self._means_done:  # (every track has a window)
                means = np.add.reduceat(self.vectors[s], firsts, axis=0) / counts[:, None]  # rows: one range
                low[s], high = means.min(axis=0), means.max(axis=0)
                step[s] = np.maximum(high - low[s], np.finfo(np.float32).tiny) / 255
                codes[s] = np.rint((means - low[s]) / step[s])
                decoded = low[s] + step[s] * codes[s]
                norms[s] = np.einsum("td,td->t", decoded, decoded)
                self._means_done.add(s)
        return self._means

    def _window_codes(self, sources: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every window's vectors in 16 bits, for the approximate search's float32 pass (half the memory
        to read): codes ``(sources, windows, dim)``, each dimension's offset and step ``(sources, dim)``,
        and for the rounding bound, the largest error ``‖x − x̂‖`` of a window's decoded vector, the
        largest ``‖x̂‖`` and the offsets' norms ``(sources,)``; those of ``sources`` are computed on first
        use, in one pass over the vectors."""
        with self._lazy:
            if self._codes is None:
                shape = (len(self.sources), self.vectors.shape[-1])
                self._codes = (np.zeros((shape[0], self.num_windows, shape[1]), np.uint16),
                               np.zeros(shape, np.float32), np.zeros(shape, np.float32),
                               *(np.zeros(shape[0]) for _ in range(3)))
            codes, low, step, error, decoded_norm, low_norm = self._codes
            for s in set(sources.tolist()) - self._codes_done:
                vectors = self.vectors[s]
                chunks = (np.asarray(vectors[b:b + CHUNK_WINDOWS])
                          for b in range(0, self.num_windows, CHUNK_WINDOWS))
                ranges = np.array([(chunk.min(axis=0), chunk.max(axis=0)) for chunk in chunks])
                low[s], high = ranges[:, 0].min(axis=0), ranges[:, 1].max(axis=0)
                step[s] = np.maximum(high - low[s], np.finfo(np.float32).tiny) / 65535
                for b in range(0, self.num_windows, CHUNK_WINDOWS):
                    chunk = np.asarray(vectors[b:b + CHUNK_WINDOWS], np.float64)
                    code = np.clip(np.rint((chunk - low[s]) / step[s]), 0, 65535)
                    codes[s, b:b + CHUNK_WINDOWS] = code
                    decoded = low[s].astype(np.float64) + step[s].astype(np.float64) * code
                    error[s] = max(error[s], float(np.sqrt(((chunk - decoded) ** 2).sum(axis=1).max())))
                    decoded_norm[s] = max(decoded_norm[s], float(np.sqrt((decoded ** 2).sum(axis=1).max())))
                low_norm[s] = np.linalg.norm(low[s].astype(np.float64))
                use_huge_pages(codes[s].ctypes.data, codes[s].nbytes)  # rows are read scattered
                self._codes_done.add(s)
        return self._codes

    def _hnsw_of(self, source: str) -> Any:
        """The HNSW graph of every window's vector of ``source``, read from the index directory or built."""
        name = f"windows-{source}"
        with self._lazy:
            if name not in self._hnsw:
                import faiss

                graph_file = self._graph_files.get(name)
                if graph_file is not None and graph_file.is_file():
                    graph = faiss.read_index(str(graph_file))
                else:
                    vectors = self.vectors[self.sources.index(source)]
                    graph = faiss.IndexHNSWFlat(self.vectors.shape[-1], HNSW_NEIGHBOURS)
                    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
                    for begin in range(0, len(vectors), CHUNK_WINDOWS):
                        graph.add(np.ascontiguousarray(vectors[begin:begin + CHUNK_WINDOWS], np.float32))
                graph_in_huge_pages(graph)
                self._hnsw[name] = graph
        return self._hnsw[name]

    def _candidate_distances(self, query: np.ndarray, w: Weighting, count: int, window_count: int
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The float32 distance of each window of the candidate tracks, track after track (the smallest
        over the query windows), the candidate tracks (positions in ``tracks``, ascending), and where
        each one's windows start in the first.

        Each track is first represented by its mean vectors: the ``count`` tracks whose means are
        nearest to a query window in the weighted distance (a scan of one vector a track and instrument:
        an inverted file whose lists are the tracks). Instruments weighing less than ``PRIMARY_WEIGHT``
        of the heaviest are scanned only among the ``PRIMARY_FACTOR × count`` tracks that the heavy ones
        choose. A track that matches in one passage only can have its mean far off, so the tracks of
        the ``window_count`` windows nearest to each query window in the HNSW graph (faiss) of each heavy
        instrument join them (proportionally fewer for a lighter weight). The rest is one compiled call
        (``kernels.candidate_windows``)."""
        from inmsrl.search import kernels

        if self._all_tracks is None:
            self._all_tracks = np.arange(len(self.tracks))
        return kernels.candidate_windows(
            self._track_means(w.sources), self._window_codes(w.sources)[:3], self.track_extents, query,
            w.primary, w.primary_weights32, w.sources, w.weights32, self._all_tracks, PRIMARY_FACTOR * count,
            count, self._window_neighbours(query, w, window_count))

    def _window_neighbours(self, query: np.ndarray, w: Weighting, window_count: int) -> np.ndarray:
        """The tracks (with repeats) of the windows nearest to each query window in each heavy
        instrument's HNSW graph (``window_count`` for the heaviest, proportionally fewer for lighter
        ones)."""
        if window_count <= 0:  # means only
            return np.empty(0, np.int64)
        found = []
        for s, share in zip(w.primary, w.shares, strict=True):
            nearest = min(max(1, round(window_count * share)), self.num_windows)
            _, ids = self._hnsw_of(self.sources[s]).search(np.ascontiguousarray(query[:, s]), nearest,
                                                           params=_hnsw_parameters(nearest))
            found.append(self.window_track[ids[ids >= 0]])
        return np.concatenate(found)


def graph_in_huge_pages(graph: Any) -> bool:
    """Move a faiss HNSW graph's neighbour lists and vectors into huge pages (:mod:`inmsrl.memory`):
    its walk reads them at random, and faiss's memory is not advised for huge pages otherwise."""
    import faiss

    try:
        neighbours = graph.hnsw.neighbors
        vectors = faiss.downcast_index(graph.storage).codes
        ranges = [(int(neighbours.data()), neighbours.size() * 4), (int(vectors.data()), vectors.size())]
    except (AttributeError, TypeError):  # another faiss layout: leave it as it is
        return False
    return all([use_huge_pages(address, size) for address, size in ranges])


@functools.lru_cache(maxsize=64)
def _hnsw_parameters(neighbours: int) -> Any:
    """faiss search parameters for ``neighbours`` neighbours (explores at least ``HNSW_EF_SEARCH``)."""
    import faiss

    return faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, neighbours))


def _fsync(path: Path) -> None:
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())

