"""Stage-8 metrics on hand-made embeddings whose answers are known: MES-Normal, MES-Pseudo (and its
own-piece exclusion), the pseudo test set's construction, Table 6, ABX agreement, Clopper-Pearson."""

from __future__ import annotations

import numpy as np
import pytest

from inmsrl.data.abx import ALL_DIFF, ONE_SHARED, AbxClip, AbxResponse, AbxTriplet
from inmsrl.data.segments import SegmentTable
from inmsrl.eval.agreement import clopper_pearson, majority_agreement, perceptual_agreement
from inmsrl.eval.embeddings import NO_TARGET, EmbeddingFileError, EmbeddingSet, part_path, part_rows
from inmsrl.eval.mes import (
    chance_accuracy,
    knn_accuracy,
    mes_normal,
    mes_pseudo,
    perfect_accuracy,
    target_and_non_target,
)
from inmsrl.eval.testsets import pseudo_test_items, visualisation_items

SOURCES = ("drums", "bass")
TRACKS = tuple(f"Track{i:05d}" for i in range(1, 9))


def embedding_set(origins, target, vectors, active=None, name="x", sources=SOURCES) -> EmbeddingSet:
    origins = np.asarray(origins, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 2:
        vectors = np.repeat(vectors[:, None, :], len(sources), axis=1)
    active = np.ones(vectors.shape[:2], bool) if active is None else np.asarray(active)
    return EmbeddingSet(name, tuple(sources), SOURCES, TRACKS, 100, origins, np.asarray(target, np.int64),
                        vectors, active, {"sample_rate": "44100"})


def normal_origins(tracks):
    return [[[t, 100 * i]] * len(SOURCES) for i, t in enumerate(tracks)]


def test_mes_normal_counts_right_votes_and_leaves_silent_targets_out():
    tracks = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    vectors = [[10.0 * t + 0.1 * i] for i, t in enumerate(tracks)]
    # Track 2's last segment sits between track 0's first two (0.0, 0.1): it is wrong, and it is the
    # nearest neighbour of both of them, so they are wrong too ...
    vectors[8] = [0.05]
    active = np.ones((9, 2), bool)
    emb = embedding_set(normal_origins(tracks), [NO_TARGET] * 9, vectors, active)
    scores = mes_normal(emb, k=1)
    assert scores["drums"].queries == 9 and scores["drums"].accuracy == pytest.approx(6 / 9)
    active[8, 1] = False  # ... unless bass is silent there: then it is neither query nor neighbour
    scores = mes_normal(embedding_set(normal_origins(tracks), [NO_TARGET] * 9, vectors, active), k=1)
    assert scores["bass"].queries == 8 and scores["bass"].accuracy == 1.0
    assert scores["drums"].accuracy == pytest.approx(6 / 9)
    assert scores["bass"].classes == 3 and scores["bass"].perfect == 1.0


def test_chance_and_perfect_separation_belong_to_the_estimator_and_the_items():
    """With 3 segments per song the 5-NN vote lets a perfectly separated song be outvoted (3 to 2) by
    a neighbour song, so a perfect separation scores far below 100 %; with 8 segments it is 100 %. A
    random model's accuracy is not 1/classes either: the vote, the class sizes and the excluded groups
    set it."""
    few = np.repeat(np.arange(10), 3)
    many = np.repeat(np.arange(10), 8)
    assert perfect_accuracy(few, np.arange(len(few))) < 0.5
    assert perfect_accuracy(many, np.arange(len(many))) == 1.0
    chance = chance_accuracy(many, np.arange(len(many)), draws=40)
    assert 0.05 < chance < 0.2 and chance != pytest.approx(1 / 10, abs=1e-3)
    # The two ends really are what a perfect and a random model score on these items:
    rng = np.random.default_rng(1)
    perfect = knn_accuracy(np.eye(10)[many] + 0.01 * rng.standard_normal((80, 10)), many)
    assert perfect.accuracy == perfect.perfect == 1.0
    random_model = knn_accuracy(rng.standard_normal((80, 16)), many)
    assert abs(random_model.accuracy - random_model.chance) < 0.1


def pseudo_set(position: dict[tuple[int, int], float]) -> EmbeddingSet:
    """Two segments of each pseudo piece (target piece, non-target piece) at a 1-D position; target drums."""
    origins, vectors = [], []
    for (target_piece, other_piece), x in position.items():
        for segment in range(2):
            origins.append([[target_piece, segment], [other_piece, segment]])
            vectors.append([x + 0.01 * segment])
    return embedding_set(origins, [0] * len(origins), vectors)


def test_mes_pseudo_never_lets_the_query_own_piece_vote():
    # Every piece sits next to a piece of the OTHER target: with its own segments allowed to vote,
    # leave-one-out would be perfect; MES-Pseudo excludes them, so every vote is wrong.
    entangled = pseudo_set({(0, 0): 0.0, (1, 1): 0.5, (0, 2): 10.0, (1, 3): 10.5})
    labels = entangled.origins[:, 0, 0]
    assert knn_accuracy(entangled.vectors[:, 0], labels, None, k=1).accuracy == 1.0
    assert mes_pseudo(entangled, k=1)["drums"].accuracy == 0.0
    # Pieces of the same target piece together: the target's ID is found from its other pieces.
    disentangled = pseudo_set({(0, 0): 0.0, (0, 2): 0.5, (1, 1): 10.0, (1, 3): 10.5})
    score = mes_pseudo(disentangled, k=1)["drums"]
    assert score.accuracy == 1.0 and score.queries == 8 and score.classes == 2
    assert "bass" not in mes_pseudo(disentangled)  # no items were built for bass


def table_of(num_tracks: int, segments: int, silent: tuple[tuple[int, int], ...] = ()) -> SegmentTable:
    track = np.repeat(np.arange(num_tracks), segments).astype(np.int32)
    start = np.tile(np.arange(segments) * 100, num_tracks).astype(np.int64)
    active = np.ones((len(track), len(SOURCES)), bool)
    for row, source in silent:
        active[row, source] = False
    return SegmentTable(100, track, start, active)


def test_pseudo_test_set_takes_targets_out_of_the_pool_and_pairs_each_with_other_pieces():
    # Scaled down from the paper's 10 targets x 3 others (= 40 pieces): 2 targets x 3 others = 8.
    table = table_of(8, 3, silent=((0, 0),))
    items = pseudo_test_items(table, SOURCES, ["drums"], num_targets=2, others_per_target=3, seed=1)
    target_piece, other_piece = items.origins[:, 0, 0], items.origins[:, 1, 0]
    targets = set(target_piece.tolist())
    pieces = set(zip(target_piece.tolist(), other_piece.tolist(), strict=True))
    assert len(targets) == 2 and len(pieces) == 2 * (1 + 3)
    for t in targets:
        others = {o for tt, o in pieces if tt == t}
        assert t in others and len(others - {t}) == 3 and not (others - {t}) & targets
    assert (items.target == 0).all()
    # Segment i of a pseudo piece: the target from segment i of T, the others from segment i of N.
    assert (items.origins[:, 0, 1] == items.origins[:, 1, 1]).all()
    assert not ((target_piece == 0) & (items.origins[:, 0, 1] == 0)).any()  # drums silent there
    again = pseudo_test_items(table, SOURCES, ["drums"], num_targets=2, others_per_target=3, seed=1)
    assert np.array_equal(again.origins, items.origins)
    too_few = table_of(4, 3)
    with pytest.raises(ValueError, match="need two target pieces"):
        pseudo_test_items(too_few, SOURCES, ["drums"], num_targets=2, others_per_target=3)


def test_visualisation_set_has_every_target_non_target_pair():
    table = table_of(5, 4)
    items = visualisation_items(table, SOURCES, ["bass"], num_pieces=3, segments_per_piece=2, per_pair=4)
    pairs = set(zip(items.origins[:, 1, 0].tolist(), items.origins[:, 0, 0].tolist(), strict=True))
    assert len(items) == 3 * 3 * 4 and len(pairs) == 9 and (items.target == 1).all()


def test_table6_target_and_non_target_ids_of_a_model_that_hears_only_the_target():
    rng = np.random.default_rng(0)
    origins, vectors = [], []
    for target_piece in range(3):
        for other_piece in range(3):
            for segment in range(2):
                origins.append([[target_piece, segment], [other_piece, segment]])
                vectors.append([10.0 * target_piece + 0.01 * rng.standard_normal()])
    scores = target_and_non_target(embedding_set(origins, [0] * 18, vectors))["drums"]
    assert scores["target"].accuracy == 1.0 and scores["non_target"].accuracy == 0.0
    hears_others = [[10.0 * o[1][0] + 0.01 * rng.standard_normal()] for o in origins]
    scores = target_and_non_target(embedding_set(origins, [0] * 18, hears_others))["drums"]
    assert scores["target"].accuracy == 0.0 and scores["non_target"].accuracy == 1.0


def test_clopper_pearson_matches_the_known_exact_interval():
    low, high = clopper_pearson(7, 10)
    assert low == pytest.approx(0.3475, abs=1e-4) and high == pytest.approx(0.9333, abs=1e-4)
    assert clopper_pearson(0, 5)[0] == 0.0 and clopper_pearson(5, 5)[1] == 1.0


def test_the_papers_table5_interval_is_a_clopper_pearson_interval_over_responses():
    """Table 5 of the paper, Clean: 63.11 [60.27, 65.89] is 734 agreeing of 1163 responses (Table 1's
    response count of the confident triplets), not a count of triplets."""
    low, high = clopper_pearson(734, 1163)
    assert round(100 * 734 / 1163, 2) == 63.11
    assert (round(100 * low, 2), round(100 * high, 2)) == (60.27, 65.89)


def triplet(instrument, condition, tracks, votes_a, votes_b, sample=0) -> AbxTriplet:
    letters = ("X", "A", "B") if condition == ALL_DIFF else ("X", "Y", "C")
    clips = [AbxClip(t, 0, 100, f"set0/{sample}/{instrument}/{letter}_{t}-0.wav", 0)
             for t, letter in zip(tracks, letters, strict=True)]
    responses = tuple(AbxResponse("exsynth1", f"s{i}", "A+") for i in range(votes_a)) + tuple(
        AbxResponse("exsynth1", f"t{i}", "B-") for i in range(votes_b))
    return AbxTriplet(0, sample, instrument, condition, *clips, responses)


def test_agreement_counts_the_responses_that_give_the_models_answer():
    """The paper's count: on the confident triplets, the subject responses agreeing with the model's
    answer among all their responses; the triplet-majority view is kept beside it."""
    # Clip of Track0000n at position n (1-D); drums and bass share the layout.
    origins = [[[n - 1, 0]] * 2 for n in range(1, 9)]
    emb = embedding_set(origins, [NO_TARGET] * 8, [[float(n)] for n in range(1, 9)], name="abx")
    triplets = [
        triplet("drums", ALL_DIFF, (1, 2, 6), 4, 1),             # model: 2 closer to 1 -> A: 4 of 5 agree
        triplet("drums", ALL_DIFF, (1, 2, 6), 1, 6, sample=1),   # model A, listeners B: 1 of 7 agrees
        triplet("bass", ONE_SHARED, (5, 6, 1), 5, 0),           # 5 of 5
        triplet("residuals", ALL_DIFF, (1, 2, 3), 4, 0),        # not embedded: left out
    ]
    result = perceptual_agreement(emb, triplets)
    drums = result[ALL_DIFF]["drums"]
    assert (drums.responses.correct, drums.responses.total) == (5, 12)
    assert (drums.triplets.correct, drums.triplets.total) == (1, 2)
    assert result[ONE_SHARED]["bass"].responses.accuracy == 1.0
    assert "residuals" not in result[ALL_DIFF]
    bound = majority_agreement(triplets[:2])[ALL_DIFF]["drums"]  # the listeners' majority: the upper bound
    assert (bound.responses.correct, bound.responses.total) == (10, 12)
    missing = [triplet("drums", ALL_DIFF, (1, 2, 9), 4, 0)]
    with pytest.raises(ValueError, match="not in the test dump"):
        perceptual_agreement(emb, missing)


def test_parts_merge_in_order_and_an_incomplete_set_is_refused(tmp_path):
    origins = normal_origins(range(7))
    full = embedding_set(origins, [NO_TARGET] * 7, [[float(i)] for i in range(7)], name="normal")
    rows = [part_rows(7, j, 3) for j in (1, 2, 3)]
    assert np.array_equal(np.concatenate(rows), np.arange(7))
    for j, r in enumerate(rows, 1):
        part = EmbeddingSet("normal", full.sources, SOURCES, TRACKS, 100, full.origins[r], full.target[r],
                            full.vectors[r], full.active[r], {"part": str(j)})
        part.save(part_path(tmp_path, "normal", j, 3))
    merged = EmbeddingSet.load_parts(tmp_path, "normal")
    assert np.array_equal(merged.vectors, full.vectors) and merged.source_track("bass")[3] == TRACKS[3]
    part_path(tmp_path, "normal", 2, 3).unlink()
    with pytest.raises(EmbeddingFileError, match=r"misses part\(s\) \[2\] of 3"):
        EmbeddingSet.load_parts(tmp_path, "normal")


def test_table5_puts_each_models_paft_rows_under_it_with_mean_and_std_of_the_runs():
    from inmsrl.eval.report import render_markdown

    def cells(accuracy):
        return {"drums": {"correct": 0, "total": 10, "accuracy": accuracy, "ci95": [0.1, 0.9]}}

    # What each experiment's config says it is (scores.json's "models"); the names say nothing.
    described = {
        "a": ("clean", "Clean", None, 0.4), "b": ("cascade", "Cascade", None, 0.5),
        "c": ("cascade", "Cascade-FT", None, 0.45), "run7": ("cascade", "Cascade w/ PAFT", "b", 0.6),
        "run3": ("cascade", "Cascade w/ PAFT", "b", 0.8), "x": ("cascade", "Cascade-PAFT", "b", 0.9),
        "w": ("cascade", "Cascade w/ PAFT, PAFT data: normal", "b", 0.7),
        "p": ("clean", "Clean w/ PAFT", "a", 0.5), "h": ("hybrid", "Hybrid", None, 0.55)}
    scores = {"models": {m: {"label": label, "group": label, "family": family, "paft_of": base}
                         for m, (family, label, base, _) in described.items()},
              "abx": {"split": "test", "evaluated": {ALL_DIFF: {"drums": 10}},
                      "models": {m: {ALL_DIFF: cells(acc)} for m, (*_, acc) in described.items()}}}
    table = render_markdown(scores, {}, mean_sources=["drums"]).split("**All-Diff**")[1]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:]
    assert rows == ["Clean", "Clean w/ PAFT", "Cascade", "Cascade w/ PAFT (2 runs)",
                    "Cascade w/ PAFT, PAFT data: normal", "Cascade-PAFT", "Cascade-FT", "Hybrid"]
    assert "| 70.00 ± 10.00 | 70.00 ± 10.00 |" in table  # the two Cascade runs: 60 and 80


def test_swap_test_tells_a_model_that_hears_the_target_from_one_that_hears_the_rest():
    from inmsrl.eval.swap import swap_items, swap_shares

    tracks = np.repeat(np.arange(6), 4)
    table = SegmentTable(100, tracks, np.tile(np.arange(4) * 100, 6), np.ones((24, 2), bool))
    items = swap_items(table, SOURCES, ["drums"], pairs=12, seed=0)
    assert len(items) == 36 and (items.target == 0).all()
    segment, target_swap, others_swap = items.origins[0::3], items.origins[1::3], items.origins[2::3]
    assert (segment[:, 0] == segment[:, 1]).all() and (segment[:, 0, 0] != target_swap[:, 0, 0]).all()
    assert (target_swap[:, 1] == segment[:, 1]).all() and (others_swap[:, 0] == segment[:, 0]).all()

    def model(listens_to: int) -> EmbeddingSet:  # a vector per (track, start) of one source
        place = items.origins[:, listens_to, 0] * 10.0 + items.origins[:, listens_to, 1] / 100
        return embedding_set(items.origins, items.target, place[:, None], name="swap")

    assert swap_shares(model(0))["drums"].share == 1.0
    assert swap_shares(model(1))["drums"].share == 0.0
    assert swap_shares(model(0))["drums"].pairs == 12
