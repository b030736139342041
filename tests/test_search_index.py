"""The search index: exact per-instrument weighted distances, approximate recall, updates, storage."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from inmsrl.search.embedding_file import TrackEmbedding
from inmsrl.search.index import Index, SearchIndexError, parse_weights

SOURCES = ("drums", "bass", "piano", "guitar")
META = {"model_digest": "m1", "window": 10.0, "hop": 5.0}


def catalogue(tracks: int, dim: int = 8, seed: int = 0, spread: float = 0.4) -> list[TrackEmbedding]:
    """Tracks of 1-6 windows around a per-track centre, each instrument its own random centre."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(tracks):
        windows = int(rng.integers(1, 7))
        vectors = (rng.standard_normal((1, len(SOURCES), dim))
                   + spread * rng.standard_normal((windows, len(SOURCES), dim)))
        out.append(TrackEmbedding(f"t{t:04d}", SOURCES, vectors, 5.0 * np.arange(windows), 5.0 * windows + 5,
                                  f"/music/t{t:04d}.wav", {**META, "fingerprint": f"f{t}"}))
    return out


def brute_force(query: TrackEmbedding, tracks: list[TrackEmbedding], weights: dict[str, float], k: int):
    """(track, distance, query start, match start) of the k best, straight from the definition."""
    scored = []
    for track in tracks:
        pair = sum(weight * np.linalg.norm(query.vectors[:, None, SOURCES.index(name)]
                                           - track.vectors[None, :, SOURCES.index(name)], axis=-1)
                   for name, weight in weights.items())
        q, m = np.unravel_index(pair.argmin(), pair.shape)
        scored.append((pair.min(), track.track_id, query.starts[q], track.starts[m]))
    return [(t, d, qs, ms) for d, t, qs, ms in sorted(scored)[:k]]


@pytest.mark.parametrize("weights", [{"piano": 1.0}, {"drums": 1.0}, {"piano": 0.7, "drums": 0.3},
                                     {"drums": 1, "bass": 1, "piano": 1, "guitar": 1}])
def test_exact_search_ranks_by_the_weighted_sum_of_instrument_distances(weights):
    tracks = catalogue(200)
    index = Index.build(tracks)
    query = catalogue(1, seed=7)[0]
    hits = index.search(query, weights, k=10)
    expected = brute_force(query, tracks, weights, 10)
    assert [h.track_id for h in hits] == [t for t, *_ in expected]
    for hit, (_, distance, query_time, match_time) in zip(hits, expected, strict=True):
        assert hit.distance == pytest.approx(distance, rel=1e-6)  # the index stores float32
        assert (hit.query_time, hit.match_time) == (query_time, match_time)
        total = sum(weights[s] * d for s, d in hit.per_source.items())
        assert total == pytest.approx(distance, rel=1e-6)  # the index stores float32


def test_weights_choose_the_instrument_that_decides():
    # Two tracks: one shares the query's piano, the other its drums.
    dim, rng = 8, np.random.default_rng(1)
    query = rng.standard_normal((1, 4, dim))
    shares_piano = rng.standard_normal((1, 4, dim))
    shares_piano[0, 2] = query[0, 2]
    shares_drums = rng.standard_normal((1, 4, dim))
    shares_drums[0, 0] = query[0, 0]
    index = Index.build([TrackEmbedding("P", SOURCES, shares_piano, [0.0], 10, "", META),
                         TrackEmbedding("D", SOURCES, shares_drums, [0.0], 10, "", META)])
    q = TrackEmbedding("q", SOURCES, query, [0.0], 10)
    assert index.search(q, "piano=1", k=1)[0].track_id == "P"
    assert index.search(q, "drums=1", k=1)[0].track_id == "D"


def test_approximate_search_finds_the_exact_top_ten():
    tracks = catalogue(1500, dim=16, seed=2)
    index = Index.build(tracks)
    rng = np.random.default_rng(3)
    recalls = {}
    for weights in ("piano=1", "piano=0.7,drums=0.3"):
        found = []
        for _ in range(20):
            near = tracks[int(rng.integers(len(tracks)))]
            query = TrackEmbedding("q", SOURCES, near.vectors + 0.3 * rng.standard_normal(near.vectors.shape),
                                   near.starts, near.duration)
            exact = {h.track_id for h in index.search(query, weights, k=10)}
            approximate = {h.track_id for h in index.search(query, weights, k=10, approximate=True)}
            found.append(len(exact & approximate) / 10)
        recalls[weights] = float(np.mean(found))
    assert min(recalls.values()) >= 0.95, recalls


@pytest.mark.parametrize("kind", ["random", "ties", "all equal", "descending", "sampled smallest"])
def test_the_candidate_choice_keeps_the_tracks_with_the_smallest_mean_distances(kind):
    # Approximate search keeps the `count` tracks whose means are nearest (compiled selection: a sampled
    # threshold, then quickselect); ties go to the earlier tracks.
    from inmsrl.search.kernels import _smallest

    rng = np.random.default_rng(5)
    values = {"random": rng.standard_normal(20000), "ties": np.round(rng.standard_normal(20000), 1),
              "all equal": np.ones(20000), "descending": np.arange(20000.0)[::-1],
              "sampled smallest": np.where(np.arange(20000) % 9 == 0, 0.0, 1.0 + rng.random(20000))
              }[kind].astype(np.float32)
    ids = np.arange(len(values)) + 7
    for count in (1, 10, 800, 2400, 19999, 20000):
        chosen = _smallest(values, ids, count) - 7
        kth = np.sort(values)[count - 1]
        ties = np.flatnonzero(values == kth)
        expected = np.concatenate([np.flatnonzero(values < kth), ties[:count - int((values < kth).sum())]])
        assert np.array_equal(np.sort(chosen), np.sort(expected)), (kind, count)


@pytest.mark.parametrize("weights", ["piano=1", "piano=0.7,drums=0.3", None])
def test_approximate_search_over_every_track_is_the_exact_search(weights):
    # With every track a candidate, the approximate mode ranks the same windows: same hits, distances
    # and window pairs (its float32 pass runs in the compiled kernels, the exact one in numpy).
    tracks = catalogue(120, dim=16, seed=4)
    index = Index.build(tracks)
    query = catalogue(1, dim=16, seed=11)[0]
    exact = [h.to_dict() for h in index.search(query, weights, k=10)]
    approximate = index.search(query, weights, k=10, approximate=True, candidates=120)
    assert [h.to_dict() for h in approximate] == exact


def test_approximate_search_finds_a_track_that_matches_in_one_passage_only():
    # Track "passage" shares one window with the query; its other windows, and so its mean, are far off.
    rng = np.random.default_rng(5)
    tracks = catalogue(300, dim=16, seed=6)
    query = catalogue(1, dim=16, seed=12)[0]
    vectors = 10.0 + rng.standard_normal((20, len(SOURCES), 16))
    vectors[7] = query.vectors[0] + 0.01 * rng.standard_normal((len(SOURCES), 16))
    tracks.append(TrackEmbedding("passage", SOURCES, vectors, 5.0 * np.arange(20), 105.0, "", META))
    index = Index.build(tracks)
    first = index.search(query, "piano=1", k=1)[0]
    assert (first.track_id, first.match_time) == ("passage", 35.0)
    assert index.search(query, "piano=1", k=1, approximate=True)[0].to_dict() == first.to_dict()
    # The mean vectors alone miss it: the window graph is what finds it.
    means_only = index.search(query, "piano=1", k=1, approximate=True, window_candidates=0)
    assert means_only[0].track_id != "passage"


def test_approximate_searches_from_several_threads_agree_with_one_at_a_time():
    # The listening page's server answers requests in threads; the compiled kernels must allow that.
    index = Index.build(catalogue(400, dim=16, seed=13))
    queries = catalogue(8, dim=16, seed=14)

    def hits(query: TrackEmbedding) -> list[dict]:
        return [h.to_dict() for h in index.search(query, "piano=0.7,drums=0.3", approximate=True)]

    alone = [hits(q) for q in queries]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(hits, queries * 4)) == alone * 4


def test_reported_distances_are_exact_where_float32_would_round_them_away():
    # Vectors far from the origin with small differences: ‖q‖² + ‖x‖² − 2q·x in float32 loses them.
    rng = np.random.default_rng(8)
    base = 300.0 + rng.standard_normal((1, len(SOURCES), 8))
    tracks = [TrackEmbedding(f"t{t}", SOURCES, base + 1e-3 * rng.standard_normal((4, len(SOURCES), 8)),
                             5.0 * np.arange(4), 25.0, "", META) for t in range(30)]
    index = Index.build(tracks)
    query = TrackEmbedding("q", SOURCES, np.asarray(index.vectors[:, 5:6], np.float64).transpose(1, 0, 2)
                           + 2e-4 * rng.standard_normal((1, len(SOURCES), 8)), [0.0], 10.0)
    stored = [TrackEmbedding(t.track_id, SOURCES, index.track_vectors(t.track_id).vectors.astype(np.float64),
                             t.starts, t.duration) for t in tracks]
    expected = brute_force(TrackEmbedding("q", SOURCES, query.vectors.astype(np.float32).astype(np.float64),
                                          [0.0], 10.0), stored, {"piano": 1.0}, 5)
    for approximate in (False, True):
        hits = index.search(query, "piano=1", k=5, approximate=approximate)
        assert [h.track_id for h in hits] == [t for t, *_ in expected]
        for hit, (_, distance, _, match_time) in zip(hits, expected, strict=True):
            assert hit.distance == pytest.approx(distance, rel=1e-9)
            assert hit.match_time == match_time


def test_tracks_are_added_replaced_kept_and_removed_and_survive_a_reopen(tmp_path):
    tracks = catalogue(20)
    index = Index.build(tracks[:10])
    assert index.add(tracks[5:15]) == (5, 0, 5)  # 5 new, 5 already there with the same fingerprint
    changed = TrackEmbedding("t0003", SOURCES, tracks[0].vectors, tracks[0].starts, 1.0, "/x.wav",
                             {**META, "fingerprint": "new"})
    assert index.add([changed]) == (0, 1, 0)
    assert index.remove(["t0007", "t0008"]) == 2
    index.save(tmp_path / "idx")
    reopened = Index.open(tmp_path / "idx")
    assert [t.track_id for t in reopened.tracks] == [t.track_id for t in index.tracks]
    assert len(reopened) == 13 and reopened.num_windows == sum(t.count for t in index.tracks)
    np.testing.assert_array_equal(reopened.track_vectors("t0003").vectors,
                                  tracks[0].vectors.astype(np.float32))
    query = catalogue(1, seed=9)[0]
    assert ([h.to_dict() for h in reopened.search(query, "bass=1")]
            == [h.to_dict() for h in index.search(query, "bass=1")])
    # An update leaves only the arrays the manifest names.
    reopened.remove(["t0000"])
    reopened.save(tmp_path / "idx", hnsw=True)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    on_disk = {p.name for p in (tmp_path / "idx").iterdir()}
    assert on_disk == {"manifest.json", *manifest["arrays"].values(), *manifest["hnsw"].values()}
    assert Index.open(tmp_path / "idx").search(query, "bass=1", approximate=True)[0].track_id == \
        index.search(query, "bass=1", exclude=["t0000"])[0].track_id


def test_vectors_of_another_model_or_windowing_are_refused():
    index = Index.build(catalogue(3))
    other = catalogue(1, seed=5)[0]
    other.meta["model_digest"] = "m2"
    with pytest.raises(SearchIndexError, match="model_digest"):
        index.add([other])
    with pytest.raises(SearchIndexError, match="model_digest"):
        index.search(other)
    with pytest.raises(SearchIndexError, match="not in the index: nope"):
        index.remove(["nope"])


@pytest.mark.parametrize("approximate", [False, True])
def test_vectors_that_are_not_finite_are_refused_by_name_and_change_nothing(approximate):
    # A NaN (from a broken file or model) would make every distance NaN and the ranking meaningless.
    tracks = catalogue(30, dim=16)
    index = Index.build(tracks)
    broken = catalogue(1, dim=16, seed=7)[0]
    broken.vectors[0, 2, 5] = np.nan
    with pytest.raises(SearchIndexError, match=r"track 't0000' \(/music/t0000.wav\): .*not all finite"):
        index.add([broken])
    assert len(index) == 30
    np.testing.assert_array_equal(index.track_vectors("t0000").vectors, tracks[0].vectors.astype(np.float32))
    with pytest.raises(SearchIndexError, match="query's vectors are not all finite"):
        index.search(broken, "piano=1", approximate=approximate)
    assert index.search(tracks[3], "piano=1", approximate=approximate)[0].track_id == "t0003"


@pytest.mark.parametrize(("text", "message"), [("vocals=1", "unknown instrument 'vocals'"),
                                               ("piano", "NAME=VALUE"), ("piano=x", "not a number"),
                                               ("piano=-1", "≥ 0"), ("piano=0", "every weight is 0")])
def test_bad_weights_are_errors_that_say_what_is_wrong(text, message):
    with pytest.raises(SearchIndexError, match=message):
        parse_weights(text, SOURCES)


def test_no_weights_weigh_every_instrument_alike():
    assert parse_weights(None, SOURCES) == dict.fromkeys(SOURCES, 1.0)
    assert parse_weights(" piano = 0.5 , drums=2", SOURCES) == {"piano": 0.5, "drums": 2.0}


def test_an_hnsw_graph_moves_into_huge_pages_and_finds_the_same_windows():
    # faiss's memory is not advised for huge pages; the index moves its graphs there (a walk from cold
    # caches is much faster at a million windows). This reads faiss's layout: a new one must be noticed.
    faiss = pytest.importorskip("faiss")
    from test_memory import huge_pages_possible

    from inmsrl.search.index import graph_in_huge_pages

    if not huge_pages_possible():
        pytest.skip("MADV_COLLAPSE: Linux 6.1 or later with transparent huge pages")
    rng = np.random.default_rng(21)
    graph = faiss.IndexHNSWFlat(64, 32)
    graph.add(rng.standard_normal((20_000, 64), dtype=np.float32))  # 5 MB of vectors and of neighbour lists
    queries = rng.standard_normal((20, 64), dtype=np.float32)
    before = graph.search(queries, 5)
    assert graph_in_huge_pages(graph)
    after = graph.search(queries, 5)
    np.testing.assert_array_equal(after[1], before[1])
