"""Perceptual similarity agreement (paper §4.2.3, Table 5) of a model with the ABX listeners.

For a triplet of instrument k the model answers "a" when its k-embedding of X is strictly closer
(Euclidean) to a's than to b's — a tie counts as a disagreement — and agrees when that is the
listeners' majority. The score per (condition, instrument) is the share of agreeing triplets among
those with more than 75 % agreement, with a 95 % Clopper-Pearson interval. The model hears each clip
as it hears any input: Clean the clean stems of the clip, the mixture models the clip's mixture (the
sum of its stems); listeners heard the target's clean stem (§2.3). Instruments the model does not
embed (residuals for Cascade, mix for all) are left out.

Which triplets: all confident ones, or — when PAFT models are compared, since PAFT trains on 70 % of
the ABX data — the confident ones of the held-out 30 % (:func:`inmsrl.data.abx.split_train_test`,
same fraction and seed as PAFT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from inmsrl.data.abx import AbxTriplet, clip_origin, instruments_of, track_index_by_number
from inmsrl.eval.embeddings import EmbeddingSet

CONFIDENCE = 0.95


def clopper_pearson(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial (Clopper-Pearson) interval of ``correct / total``; (nan, nan) without trials."""
    if total == 0:
        return float("nan"), float("nan")
    interval = binomtest(correct, total).proportion_ci(confidence_level=confidence, method="exact")
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class Agreement:
    """``correct`` of ``total`` triplets answered as the listeners' majority, with its interval."""

    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return clopper_pearson(self.correct, self.total)

    def as_dict(self) -> dict[str, object]:
        low, high = self.interval
        return {"correct": self.correct, "total": self.total, "accuracy": self.accuracy,
                "ci95": [low, high]}


def prefers_a(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, whether the model judges a closer to x than b (strictly; ties → False)."""
    return np.linalg.norm(x - a, axis=-1) < np.linalg.norm(x - b, axis=-1)


def perceptual_agreement(embeddings: EmbeddingSet, triplets: Sequence[AbxTriplet]
                         ) -> dict[str, dict[str, Agreement]]:
    """``{condition: {instrument: Agreement}}`` over ``triplets`` (already filtered to the confident
    ones of the evaluation split) for the instruments ``embeddings`` has vectors of."""
    index = track_index_by_number(embeddings.track_ids)
    sample_rate = int(embeddings.meta.get("sample_rate", 44100))
    row_of = {(int(t), int(s)): i for i, (t, s) in enumerate(embeddings.origins[:, 0])}
    counts: dict[str, dict[str, list[int]]] = {}
    for triplet in triplets:
        if triplet.instrument not in embeddings.sources or triplet.majority is None:
            continue
        j = embeddings.column(triplet.instrument)
        rows = []
        for clip in (triplet.x, triplet.a, triplet.b):
            origin = clip_origin(clip, index, sample_rate, f"triplet {triplet.key}: ")
            if origin not in row_of:
                raise KeyError(f"ABX clip {clip.path} of triplet {triplet.key} was not embedded in set "
                               f"{embeddings.name!r}; re-run 'inmsrl embed' with this ABX set")
            rows.append(row_of[origin])
        x, a, b = (embeddings.vectors[r, j] for r in rows)
        agrees = bool(prefers_a(x, a, b)) == (triplet.majority == "a")
        cell = counts.setdefault(triplet.condition, {}).setdefault(triplet.instrument, [0, 0])
        cell[0] += int(agrees)
        cell[1] += 1
    order = instruments_of(triplets)
    return {condition: {inst: Agreement(*cells[inst]) for inst in order if inst in cells}
            for condition, cells in sorted(counts.items())}
