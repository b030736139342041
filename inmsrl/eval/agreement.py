"""Perceptual similarity agreement (paper §4.2.3, Table 5) of a model with the ABX listeners.

For a triplet of instrument k the model answers "a" when its k-embedding of X is strictly closer
(Euclidean) to a's than to b's, "b" when strictly farther (a tie answers neither). On the triplets
where more than 75 % of the answers agree, the score per (condition, instrument) is the share of the
listeners' *responses* that give the model's answer: k of n, n being all their responses — the
paper's counting (its Table 5 intervals reproduce as Clopper-Pearson intervals of k/n with n the
response counts of its Table 1, e.g. 734/1163 → 63.11 % [60.27, 65.89]). A second view counts
*triplets* whose majority the model gives. The listeners' majority itself is the upper bound of the
response count (no answer agrees with more responses); a random answer scores 50 % in expectation.
Both come with a 95 % Clopper-Pearson interval. The model hears each clip
as it hears any input: Clean the clean stems of the clip, the mixture models the clip's mixture (the
sum of its stems); listeners heard the target's clean stem (§2.3). Instruments the model does not
embed (residuals for Cascade, mix for all) are left out.

Which triplets: a model without PAFT is scored on all confident ones; a PAFT model, which trained on
70 % of the ABX data, on the confident ones of the held-out 30 %
(:func:`inmsrl.data.abx.split_train_test`, same fraction and seed as PAFT).
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
    """``correct`` of ``total`` (responses or triplets) agreeing with the model, with its interval."""

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


@dataclass(frozen=True)
class AgreementCell:
    """One (condition, instrument) cell: responses agreeing with the model (the paper's score) and
    triplets whose majority it gives."""

    responses: Agreement
    triplets: Agreement

    def as_dict(self) -> dict[str, object]:
        return {**self.responses.as_dict(), "triplets": self.triplets.as_dict()}


def _cells(counts: dict[str, dict[str, list[int]]], order: Sequence[str]
           ) -> dict[str, dict[str, AgreementCell]]:
    return {condition: {inst: AgreementCell(Agreement(*cells[inst][:2]), Agreement(*cells[inst][2:]))
                        for inst in order if inst in cells}
            for condition, cells in sorted(counts.items())}


def _count(counts: dict, triplet: AbxTriplet, answer: str | None) -> None:
    """Add ``triplet`` to its cell: responses giving ``answer``, all responses, majority matched, 1."""
    cell = counts.setdefault(triplet.condition, {}).setdefault(triplet.instrument, [0, 0, 0, 0])
    votes = {"a": triplet.votes_a, "b": triplet.votes_b}.get(answer, 0)
    cell[0] += votes
    cell[1] += triplet.num_responses
    cell[2] += int(answer is not None and answer == triplet.majority)
    cell[3] += 1


def majority_agreement(triplets: Sequence[AbxTriplet]) -> dict[str, dict[str, AgreementCell]]:
    """The upper bound: the agreement of a model that always gives the listeners' majority."""
    counts: dict[str, dict[str, list[int]]] = {}
    for triplet in triplets:
        if triplet.majority is not None:
            _count(counts, triplet, triplet.majority)
    return _cells(counts, instruments_of(triplets))


def perceptual_agreement(embeddings: EmbeddingSet, triplets: Sequence[AbxTriplet]
                         ) -> dict[str, dict[str, AgreementCell]]:
    """``{condition: {instrument: AgreementCell}}`` over ``triplets`` (already filtered to the confident
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
        to_a, to_b = np.linalg.norm(x - a), np.linalg.norm(x - b)
        _count(counts, triplet, "a" if to_a < to_b else "b" if to_b < to_a else None)
    return _cells(counts, instruments_of(triplets))
