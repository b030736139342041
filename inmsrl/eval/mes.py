"""MES-Normal (paper §4.2.1): music-ID estimation by 5-nearest-neighbour vote, per source.

For source ``s``, every segment where ``s`` is active is a query; its neighbours are the other such
segments (leave-one-out) in the space of ``s``'s embedding alone; the predicted music ID is the
majority label of the ``k`` nearest (ties go to the label whose nearest member is closest). The score
is the share of queries whose prediction is their own track. Euclidean distance, as in training.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from inmsrl.eval.embeddings import EmbeddingSet


def knn_vote(neighbour_labels: np.ndarray) -> np.ndarray:
    """Majority label of each row of ``neighbour_labels`` (nearest first); ties → the nearest tied."""
    votes = []
    for row in neighbour_labels:
        labels, first, counts = np.unique(row, return_index=True, return_counts=True)
        best = counts == counts.max()
        votes.append(labels[best][np.argmin(first[best])])
    return np.array(votes)


def music_id_accuracy(vectors: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out ``k``-NN music-ID accuracy of ``vectors`` (n, d) with track ``labels`` (n,)."""
    if len(vectors) <= k:
        raise ValueError(f"{len(vectors)} segments are too few for a {k}-NN leave-one-out score")
    index = NearestNeighbors(n_neighbors=k + 1).fit(vectors)
    _, neighbours = index.kneighbors(vectors)
    # Drop each query itself (normally its own first neighbour; exact duplicates may reorder).
    others = np.array([[j for j in row if j != i][:k] for i, row in enumerate(neighbours)])
    return float(np.mean(knn_vote(labels[others]) == labels))


def mes_normal(embeddings: EmbeddingSet, k: int = 5) -> dict[str, float]:
    """MES-Normal per embedded source, on the segments where that source is active."""
    scores = {}
    for s, name in enumerate(embeddings.sources):
        keep = embeddings.active[:, s]
        scores[name] = music_id_accuracy(embeddings.vectors[keep, s], embeddings.track_ids[keep], k)
    return scores
