"""Music-ID estimation scores (paper §4.2.1, §4.2.2, Table 6) by k-nearest-neighbour vote, per source.

For source ``s`` only ``s``'s embedding is used (the other dimensions are masked) and only items where
``s`` is audible are queries or neighbours. A query's neighbours are the ``k`` nearest items outside
its *exclusion group*; its predicted ID is their majority label (ties go to the label whose member is
nearest). The score is the share of queries predicted right. Euclidean distance, as in training.

* MES-Normal: label = the segment's piece; group = the query alone (leave-one-out).
* MES-Pseudo: items built for ``s``; label = the piece ``s`` comes from (the target piece); group =
  the query's own pseudo piece (target piece, non-target piece): none of its segments may vote.
* Table 6 (visualisation set): the same for the target piece's ID and for the non-target piece's ID.

Whether such a score can tell a good model from a bad one depends on the data: with few segments per
song a perfectly separated song is outvoted by its neighbours, and with few songs a random model
guesses often. So every score comes with the two ends of its scale *for this estimator on these
items*: :func:`chance_accuracy` (a model that knows nothing — random vectors, averaged over draws) and
:func:`perfect_accuracy` (a model that puts each label's items at one point). The second is not an
upper bound — a model can beat tight clusters when other songs' segments spread out — but it shows
whether the vote rewards perfect separation at all: with three segments per song it scores 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from sklearn.metrics import pairwise_distances

from inmsrl.eval.embeddings import EmbeddingSet

K_NEIGHBOURS = 5
_CHUNK = 2048  # query rows per distance block: bounds memory for large test sets


CHANCE_DRAWS = 20
_CHANCE_DIMS = 16


@dataclass(frozen=True)
class IdScore:
    """A music-ID accuracy over ``queries`` queries among ``classes`` music IDs, with the accuracy of
    a random model (``chance``) and of a perfect one (``perfect``) on the same items."""

    accuracy: float
    queries: int
    classes: int
    chance: float = float("nan")
    perfect: float = float("nan")

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def knn_vote(neighbour_labels: np.ndarray) -> np.ndarray:
    """Majority label of each row of ``neighbour_labels`` (nearest first); ties → the nearest tied."""
    votes = []
    for row in neighbour_labels:
        labels, first, counts = np.unique(row, return_index=True, return_counts=True)
        best = counts == counts.max()
        votes.append(labels[best][np.argmin(first[best])])
    return np.array(votes)


def knn_predict(vectors: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = K_NEIGHBOURS
                ) -> np.ndarray:
    """Predicted label of every item from its ``k`` nearest items of *other* groups."""
    vectors, labels, groups = np.asarray(vectors, np.float64), np.asarray(labels), np.asarray(groups)
    _, group_ids = np.unique(groups, return_inverse=True)
    largest_group = np.bincount(group_ids).max() if len(group_ids) else 0
    if len(vectors) - largest_group < k:
        raise ValueError(f"{len(vectors)} items in groups of up to {largest_group} leave fewer than {k} "
                         f"neighbours for a {k}-NN vote")
    predictions = []
    for begin in range(0, len(vectors), _CHUNK):
        rows = slice(begin, begin + _CHUNK)
        distances = pairwise_distances(vectors[rows], vectors)
        distances[group_ids[rows, None] == group_ids[None, :]] = np.inf
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(distances, nearest, 1).argsort(axis=1, kind="stable")
        predictions.append(knn_vote(labels[np.take_along_axis(nearest, order, 1)]))
    return np.concatenate(predictions) if predictions else np.zeros(0, labels.dtype)


def chance_accuracy(labels: np.ndarray, groups: np.ndarray, k: int = K_NEIGHBOURS,
                    draws: int = CHANCE_DRAWS, seed: int = 0) -> float:
    """Mean accuracy of the k-NN vote over ``draws`` models that know nothing (i.i.d. Gaussian vectors)
    on items with these ``labels`` and exclusion ``groups``. It depends on how many items each label
    and group has — 1/classes only in the limit of many items per label."""
    rng = np.random.default_rng(seed)
    labels, groups = np.asarray(labels), np.asarray(groups)
    return float(np.mean([np.mean(knn_predict(rng.standard_normal((len(labels), _CHANCE_DIMS)), labels,
                                              groups, k) == labels) for _ in range(draws)]))


def perfect_accuracy(labels: np.ndarray, groups: np.ndarray, k: int = K_NEIGHBOURS, draws: int = 5,
                     seed: int = 0) -> float:
    """Mean accuracy of the k-NN vote for models that separate the labels perfectly: all items of a
    label at one point, the labels' points drawn at random. Below 1 where a label keeps fewer than
    about k/2 + 1 items outside the query's group: the nearest other label then outvotes it."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    _, codes = np.unique(labels, return_inverse=True)
    return float(np.mean([np.mean(knn_predict(rng.standard_normal((codes.max() + 1, _CHANCE_DIMS))[codes],
                                              labels, groups, k) == labels) for _ in range(draws)]))


def knn_accuracy(vectors: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None,
                 k: int = K_NEIGHBOURS, bounds: bool = True) -> IdScore:
    """Share of items whose k-NN vote (excluding their own group; leave-one-out without groups) is right,
    with the estimator's chance and perfect-separation accuracy on these items (``bounds``)."""
    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    predicted = knn_predict(vectors, labels, groups, k)
    chance, perfect = _bounds(*_codes(labels, groups), k) if bounds else (float("nan"), float("nan"))
    return IdScore(float(np.mean(predicted == labels)), len(labels), len(np.unique(labels)), chance, perfect)


def _codes(labels: np.ndarray, groups: np.ndarray) -> tuple[bytes, bytes]:
    """Labels and groups as integer codes, hashable: every model of a set shares its items' bounds."""
    return (np.unique(labels, return_inverse=True)[1].astype(np.int64).tobytes(),
            np.unique(groups, return_inverse=True)[1].astype(np.int64).tobytes())


@lru_cache(maxsize=256)
def _bounds(labels: bytes, groups: bytes, k: int) -> tuple[float, float]:
    label_codes, group_codes = np.frombuffer(labels, np.int64), np.frombuffer(groups, np.int64)
    return chance_accuracy(label_codes, group_codes, k), perfect_accuracy(label_codes, group_codes, k)


def mes_normal(embeddings: EmbeddingSet, k: int = K_NEIGHBOURS) -> dict[str, IdScore]:
    """MES-Normal per embedded source, on the segments where that source is active."""
    scores = {}
    for j, name in enumerate(embeddings.sources):
        keep = embeddings.active[:, j]
        scores[name] = knn_accuracy(embeddings.vectors[keep, j], embeddings.source_track(name)[keep], None, k)
    return scores


def _pseudo_rows(embeddings: EmbeddingSet, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows built for ``source`` with it audible, and their target and non-target piece ids."""
    b = embeddings.dump_sources.index(source)
    other = next(s for s in range(len(embeddings.dump_sources)) if s != b)
    keep = (embeddings.target == b) & embeddings.active[:, embeddings.column(source)]
    return np.flatnonzero(keep), embeddings.origins[keep, b, 0], embeddings.origins[keep, other, 0]


def mes_pseudo(embeddings: EmbeddingSet, k: int = K_NEIGHBOURS) -> dict[str, IdScore]:
    """MES-Pseudo per embedded source that the set has items for (label: the target piece)."""
    scores = {}
    for j, name in enumerate(embeddings.sources):
        rows, target_piece, other_piece = _pseudo_rows(embeddings, name)
        if len(rows):
            pieces = target_piece * (len(embeddings.track_ids) + 1) + other_piece
            scores[name] = knn_accuracy(embeddings.vectors[rows, j], target_piece, pieces, k)
    return scores


def target_and_non_target(embeddings: EmbeddingSet, k: int = K_NEIGHBOURS
                          ) -> dict[str, dict[str, IdScore]]:
    """Table 6: per source, MES-Pseudo for the target pieces' IDs and for the non-target pieces' IDs."""
    scores = {}
    for j, name in enumerate(embeddings.sources):
        rows, target_piece, other_piece = _pseudo_rows(embeddings, name)
        if len(rows):
            pieces = target_piece * (len(embeddings.track_ids) + 1) + other_piece
            vectors = embeddings.vectors[rows, j]
            scores[name] = {"target": knn_accuracy(vectors, target_piece, pieces, k),
                            "non_target": knn_accuracy(vectors, other_piece, pieces, k)}
    return scores
