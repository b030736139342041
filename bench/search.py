"""Benchmark: using a model on a music collection — embed-files speed, and search speed and recall.

1. **embed-files throughput** in × real time: a Cascade(-FT) (paper size by default, untrained weights:
   speed does not depend on them) embeds a stereo 48 kHz file through the whole path a user's file
   takes (decode, mix-down, resampling to 44.1 kHz, 10 s windows every 5 s, batches), in float32 and in
   bfloat16 (``--dtypes``), with how far the bfloat16 vectors are from the float32 ones; the first
   precision also with glibc's allocator as it is (embed-files reuses freed memory: inmsrl.memory).
   It runs in a process of its own, so that the allocator setting does not reach the search.
2. **Search** over random catalogues of 10k, 100k and 1M windows (4 instruments × 128 dimensions, 50
   windows a track; windows scattered around a per-track centre, queries near a random window, so that
   nearest neighbours mean something as they do with real embeddings): exact queries per second, and
   approximate (candidate tracks by mean vectors and HNSW window neighbours, ranked exactly) queries
   per second with recall@10 against exact: in the first pass after the index is ready; "steady", the
   median of ``--passes`` passes of fresh queries run back to back, the throughput of a busy service
   (whose index the CPU caches partly hold); and "cold", as many passes, each after the caches are
   evicted. Also the HNSW walk alone from evicted caches, the index's graph (in huge pages) against a
   copy of it in the 4 KiB pages faiss allocates. The approximate passes run before the exact ones:
   numpy's OpenBLAS threads busy-wait for a while after exact search's matrix products, and a pass
   started then shares a core with them (its two-thread kernels slow down).
3. **What the window graphs buy**: on a catalogue of ``--passages`` windows where one track in ten has
   one window unlike the rest of it (a passage its mean does not show), how often a query near such a
   passage finds its track in the top 10: exact, approximate with the window graphs, means alone.
   A query is one 10 s window (a clip); weights ``piano=1`` and ``piano=0.7,drums=0.3``.

Run: ``tools/venv/bin/python bench/search.py [--device cuda] [--sizes 10000 100000 1000000]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import pstats
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SOURCES = ("drums", "bass", "piano", "guitar")
DIM = 128
TRACK_WINDOWS = 50
PASSAGE_EVERY = 10  # one track in ten has a passage unlike the rest of it
WEIGHTINGS = ("piano=1", "piano=0.7,drums=0.3")


def embed_speed(size: str, device: str, seconds: float, batch_size: int,
                dtypes: list[str]) -> list[dict[str, float]]:
    from inmsrl.memory import reuse_freed_memory
    from inmsrl.models.config import build_model
    from inmsrl.models.pretrained import standalone_metadata
    from inmsrl.search.embedder import Embedder

    config = {"type": "cascade", "target_sources": list(SOURCES)}
    if size == "mini":
        config.update(unet={"channels": [4, 8, 16, 32, 64, 128]}, mel_bands=128)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(config, [*SOURCES, "residuals"])
        torch.save({"model": model.state_dict(), "config": {"model": config},
                    "standalone": standalone_metadata(model, config)}, Path(tmp) / "final.pt")
        audio = np.random.default_rng(0).uniform(-0.3, 0.3, (int(48000 * seconds), 2)).astype(np.float32)
        sf.write(Path(tmp) / "song.wav", audio, 48000)
        rows, reference = [], None
        # the first variant with glibc's allocator as it is, then every variant as embed-files runs them
        for dtype, reuse in [(dtypes[0], False)] + [(dtype, True) for dtype in dtypes]:
            if reuse:
                reuse_freed_memory()
            embedder = Embedder.from_pretrained(tmp, device=device, batch_size=batch_size, dtype=dtype)
            embedder.embed_array(audio[: 48000 * 10].T, 48000)  # warm-up
            start = time.perf_counter()
            track = embedder.embed_file(Path(tmp) / "song.wav")
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            if reference is None:
                reference = track.vectors
            # how far each (window, instrument) vector is from the first dtype's, relative to its length
            difference = (np.linalg.norm(track.vectors - reference, axis=-1)
                          / np.linalg.norm(reference, axis=-1))
            rows.append({"dtype": dtype, "reuse": reuse, "windows": len(track.vectors),
                         "seconds": elapsed,
                         "x_real_time": seconds / elapsed, "median_difference": float(np.median(difference)),
                         "max_difference": float(difference.max())})
    return rows


def catalogue(windows: int, seed: int = 0, passages: bool = False) -> tuple:
    """The index, and the rows of its passages. With ``passages``, every ``PASSAGE_EVERY``-th track has
    one window unlike the rest of it (around a point of its own), as a song with one passage of another
    character has; its mean does not show it, so only the window graphs can find the track for it."""
    from inmsrl.search.embedding_file import TrackEmbedding
    from inmsrl.search.index import Index

    rng = np.random.default_rng(seed)
    tracks, rows = [], []
    for t in range(windows // TRACK_WINDOWS):
        centre = rng.standard_normal((1, len(SOURCES), DIM), dtype=np.float32)
        vectors = centre + 0.5 * rng.standard_normal((TRACK_WINDOWS, len(SOURCES), DIM), dtype=np.float32)
        if passages and t % PASSAGE_EVERY == 0:
            where = int(rng.integers(TRACK_WINDOWS))
            vectors[where] = rng.standard_normal((len(SOURCES), DIM), dtype=np.float32)
            rows.append(t * TRACK_WINDOWS + where)  # tracks are indexed in order, windows contiguous
        tracks.append(TrackEmbedding(f"t{t}", SOURCES, vectors, 5.0 * np.arange(TRACK_WINDOWS), 255.0))
    return Index.build(tracks), np.asarray(rows, dtype=np.int64)


def probe_set(index, rng: np.random.Generator, queries: int, rows: np.ndarray | None = None) -> list:
    """One-window queries, each near a catalogue window: random ones, or ``rows`` (one query each)."""
    from inmsrl.search.embedding_file import TrackEmbedding

    picks = rng.integers(index.num_windows, size=queries) if rows is None else rows
    return [TrackEmbedding("q", SOURCES, np.asarray(index.vectors[:, i:i + 1]).transpose(1, 0, 2)
                           + 0.3 * rng.standard_normal((1, len(SOURCES), DIM), dtype=np.float32), [0.0], 10.0)
            for i in picks]


def passages_found(windows: int, queries: int, candidates: int, window_candidates: int
                   ) -> dict[str, dict[str, float]]:
    """On a catalogue with passages (a separate one: their windows would change the far neighbours of
    the other queries, and so recall@10 above), the share of queries near a passage that find its
    track among the top 10 of approximate search with the window graphs and with the means alone
    (``window_candidates=0``), per weighting; and with exact search, which should always find it."""
    index, passages = catalogue(windows, seed=2, passages=True)
    rng = np.random.default_rng(3)
    return {weights: _passages_found(index, passages, rng, queries, weights,
                                     {"k": 10, "approximate": True, "candidates": candidates,
                                      "window_candidates": window_candidates})
            for weights in WEIGHTINGS}


def _passages_found(index, passages: np.ndarray, rng: np.random.Generator, queries: int, weights: str,
                    options: dict) -> dict[str, float]:
    rows = rng.choice(passages, queries)
    probes = probe_set(index, rng, queries, rows)
    owners = [f"t{row // TRACK_WINDOWS}" for row in rows]
    found = {}
    for name, searched in (("exact search", {"k": 10}), ("window graphs", options),
                           ("means only", {**options, "window_candidates": 0})):
        found[name] = float(np.mean([owner in {h.track_id for h in index.search(q, weights, **searched)}
                                     for q, owner in zip(probes, owners, strict=True)]))
    return found


def evict_caches(megabytes: int) -> None:
    """Write more memory than the CPU caches hold, so that what follows starts from main memory."""
    np.ones(megabytes * 2**18, np.float32).sum()


def search_speed(windows: int, queries: int, candidates: int, window_candidates: int, profile: int = 0,
                 passes: int = 0, evict_mb: int = 1024) -> list[dict[str, float]]:
    """A row per weighting: exact q/s; approximate q/s (first pass, steady, cold) and recall@10 against
    exact. Every approximate pass runs before the exact ones (see the module's docstring)."""
    build = time.perf_counter()
    index, _ = catalogue(windows)
    build = time.perf_counter() - build
    rng = np.random.default_rng(1)
    probes = probe_set(index, rng, queries)
    rows = [{"windows": windows, "weights": weights, "build_s": build} for weights in WEIGHTINGS]
    options = {"k": 10, "approximate": True, "candidates": candidates, "window_candidates": window_candidates}
    found = {row["weights"]: approximate_speed(index, probes, rng, row, options, passes, evict_mb, profile)
             for row in rows}
    for row in rows:
        weights = row["weights"]
        index.search(probes[0], weights, k=10)  # compiles the kernels (once, then cached on disk)
        start = time.perf_counter()
        exact = [[h.track_id for h in index.search(q, weights, k=10)] for q in probes]
        row["exact_qps"] = queries / (time.perf_counter() - start)
        row["recall@10"] = float(np.mean([len(set(a) & set(e)) / 10
                                          for a, e in zip(found[weights], exact, strict=True)]))
    rows[-1]["graph_walk_us"] = graph_walk_speed(index, probes, evict_mb)
    return rows


def approximate_speed(index, probes: list, rng: np.random.Generator, row: dict, options: dict,
                      passes: int, evict_mb: int, profile: int) -> list[list[str]]:
    """Time approximate search with ``row``'s weights into ``row``: the first query (it builds the
    graphs and 8-bit means), the first pass over ``probes``, then ``passes`` passes of fresh queries back
    to back and as many each after evicting the caches (median q/s of each kind); optionally a profile.
    Returns the first pass's hits, for recall."""
    weights, queries = row["weights"], len(probes)
    graphs = time.perf_counter()
    index.search(probes[0], weights, **options)
    row["first_query_s"] = time.perf_counter() - graphs
    start = time.perf_counter()
    found = [[h.track_id for h in index.search(q, weights, **options)] for q in probes]
    row["approx_qps"] = queries / (time.perf_counter() - start)
    for name, evict in (("steady_qps", False), ("cold_qps", True)):
        rates = []
        for _ in range(passes):  # fresh queries each time
            fresh = probe_set(index, rng, queries)
            if evict:
                evict_caches(evict_mb)
            start = time.perf_counter()
            for q in fresh:
                index.search(q, weights, **options)
            rates.append(queries / (time.perf_counter() - start))
        row[name] = float(np.median(rates)) if rates else float("nan")
    if profile:  # where an approximate query's time goes (a separate pass: profiling slows it)
        profiler = cProfile.Profile()
        profiler.enable()
        for q in probes:
            index.search(q, weights, **options)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(profile)
        row["profile"] = text.getvalue()
    return found


def graph_walk_speed(index, probes, evict_mb: int, source: str = "piano", neighbours: int = 16,
                     rounds: int = 2) -> dict[str, float]:
    """Microseconds per HNSW search of ``neighbours`` windows, each pass starting with the caches
    evicted: the index's graph (moved into huge pages) against a copy of it that faiss allocates in
    ordinary 4 KiB pages."""
    import faiss

    from inmsrl.search.index import _hnsw_parameters

    graph = index._hnsw_of(source)
    copy = faiss.clone_index(graph)
    queries = [np.ascontiguousarray(q.vectors[:, SOURCES.index(source)]) for q in probes]
    times: dict[str, list[float]] = {"4 KiB pages": [], "huge pages": []}
    for _ in range(rounds):
        for name, walked in (("4 KiB pages", copy), ("huge pages", graph)):
            evict_caches(evict_mb)
            start = time.perf_counter()
            for q in queries:
                walked.search(q, neighbours, params=_hnsw_parameters(neighbours))
            times[name].append((time.perf_counter() - start) / len(queries) * 1e6)
    return {name: float(np.median(values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", choices=("paper", "mini"), default="paper", help="Cascade size [paper]")
    parser.add_argument("--audio-seconds", type=float, default=60.0, help="file length for embed-files [60]")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"],
                        help="embed-files precisions, compared with the first [float32 bfloat16]")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                        help="catalogue sizes in windows [10k 100k 1M]")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=100,
                        help="approximate: tracks by nearest means per query window [100]")
    parser.add_argument("--window-candidates", type=int, default=16,
                        help="approximate: nearest windows in the HNSW graph per query window [16]")
    parser.add_argument("--passes", type=int, default=5,
                        help="approximate: passes of fresh queries back to back, and as many each after "
                             "the caches are evicted; their median q/s are the 'steady' and 'cold' "
                             "columns [5]")
    parser.add_argument("--evict-mb", type=int, default=1024,
                        help="memory written to evict the caches, more than the CPU's last-level cache "
                             "[1024]")
    parser.add_argument("--passages", type=int, default=100_000, metavar="WINDOWS",
                        help="catalogue size of the passage check (0: none) [100000]")
    parser.add_argument("--skip-embed", action="store_true")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print the N functions taking most of the approximate queries' time")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    if not args.skip_embed:
        # in a process of its own: embed-files' allocator setting (inmsrl.memory) must not reach the search
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as process:
            rows = process.submit(embed_speed, args.size, args.device, args.audio_seconds, args.batch_size,
                                  args.dtypes).result()
        print(f"\nembed-files, {args.size} Cascade, {args.audio_seconds:g} s stereo 48 kHz file, "
              f"10 s windows every 5 s ({rows[0]['windows']} windows), batch {args.batch_size}:")
        for row in rows:
            memory = "freed memory reused" if row["reuse"] else "glibc default"
            print(f"  {row['dtype']:<9} {memory:<19} {row['seconds']:5.1f} s, "
                  f"{row['x_real_time']:5.1f}× real time; "
                  f"vectors from {rows[0]['dtype']}'s: median {100 * row['median_difference']:.2f} %, "
                  f"max {100 * row['max_difference']:.2f} % of their length")
    print(f"\napproximate q/s: 'first pass', the first queries after the index is ready; 'steady', the "
          f"median of {args.passes} passes of fresh queries back to back; 'cold', of {args.passes} passes "
          f"each after evicting the caches ({args.evict_mb} MB)")
    print(f"{'windows':>9} {'weights':<20} {'exact q/s':>10} {'first pass':>11} {'steady':>8} {'cold':>8} "
          f"{'recall@10':>10} {'first query s':>14}")
    for size in args.sizes:
        for row in search_speed(size, args.queries, args.candidates, args.window_candidates,
                                profile=args.profile, passes=args.passes, evict_mb=args.evict_mb):
            print(f"{row['windows']:>9} {row['weights']:<20} {row['exact_qps']:>10.1f} "
                  f"{row['approx_qps']:>11.1f} {row['steady_qps']:>8.1f} {row['cold_qps']:>8.1f} "
                  f"{row['recall@10']:>10.3f} {row['first_query_s']:>14.1f}", flush=True)
            if "profile" in row:
                print(row["profile"], flush=True)
            if "graph_walk_us" in row:
                walk = row["graph_walk_us"]
                print(f"{'':>9} HNSW walk of 16 neighbours, caches evicted first: "
                      + ", ".join(f"{name} {us:.0f} µs" for name, us in walk.items())
                      + f" ({walk['4 KiB pages'] / walk['huge pages']:.2f}×)", flush=True)
    if args.passages:
        print(f"\n{args.passages} windows with a passage unlike the rest of the track in one track of "
              f"{PASSAGE_EVERY}; queries near a passage (200), its track in the top 10:")
        for weights, found in passages_found(args.passages, 200, args.candidates,
                                             args.window_candidates).items():
            shares = ", ".join(f"{share:.2f} with {name}" for name, share in found.items())
            print(f"  {weights:<20} {shares}", flush=True)


if __name__ == "__main__":
    main()
