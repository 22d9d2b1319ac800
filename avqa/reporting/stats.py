"""Uncertainty of every table cell: question-level bootstrap intervals, paired differences and exact tests.

Inputs are per-question correctness, one row of a table at a time: a (seeds, questions) 0/1 matrix over the SAME
test questions (in one order) for every row, with each question's type key. Every accuracy is a micro average
(correct / count over the cell's questions), as in avqa.training.evaluate.

Seeds. A row's score per question is its mean correctness over the row's seeds (1, 1/2, 0 with two seeds). The
interval resamples questions, not seeds: with the 1-3 seeds a table has, resampling seeds gives a degenerate
distribution (3 seeds have 10 distinct resamples), and the question sample is what a reader generalises over.
The seed spread is reported beside the interval as the sample standard deviation over seeds (ddof=1), so both
sources of variation are visible and neither is hidden inside the other.

Bootstrap. Stratified by question type (each resample draws n_t questions with replacement inside each type t,
so every resample has the test set's type counts, as the test set is built per type), percentile 95% interval,
B resamples (B = 10,000 by default: the interval ends then move by < 0.05 points between bootstrap seeds on a
9,129-question test set, measured in tests/test_stats.py). One set of resamples is drawn per table and shared by
all its rows, so the difference of two rows under a resample is a paired bootstrap of their difference.
Vectorised numpy rather than scipy.stats.bootstrap: scipy resamples each statistic separately; here one
resample-count matrix per type and one matrix product give every cell of every row and every paired
difference at once (a 9,129-question x 40-row table takes about a second).

Tests. Two rows answer the same questions, so they are compared question by question: the exact two-sided sign
test on the per-question score differences (b questions where row A scores higher, c where B does). With one
seed per row this is exactly McNemar's exact test on the discordant questions (binomial(b + c, 1/2)); with
several seeds a question is discordant when the rows' mean correctness over seeds differs. p-values of one
table are corrected together with Holm's step-down method (statsmodels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from avqa.vocab import GROUPS, QUESTION_TYPES

B_DEFAULT = 10_000
LEVEL = 0.95
CHUNK = 1_000                     # resamples per block (bounds memory: CHUNK x questions int32 counts)
ALL = "All"
TYPE_KEYS = tuple(key for _, _, key in QUESTION_TYPES)
GROUP_TYPES = {group: tuple(key for g, _, key in QUESTION_TYPES if g == group) for group in GROUPS}
CELLS = TYPE_KEYS + GROUPS + (ALL,)


@dataclass(frozen=True)
class Interval:
    estimate: float               # accuracy or difference, percent
    low: float
    high: float
    n_questions: int


def cell_types(cell: str) -> tuple[str, ...]:
    """The question types a cell pools: a type key, a group name, or "All"."""
    if cell == ALL:
        return TYPE_KEYS
    if cell in GROUP_TYPES:
        return GROUP_TYPES[cell]
    if cell in TYPE_KEYS:
        return (cell,)
    raise ValueError(f"unknown cell {cell!r}; one of {list(CELLS)}")


def question_scores(correct: np.ndarray) -> np.ndarray:
    """(seeds, questions) 0/1 correctness -> (questions,) mean correctness over seeds."""
    correct = np.asarray(correct, dtype=np.float64)
    if correct.ndim == 1:
        correct = correct[None]
    if correct.ndim != 2 or correct.shape[0] == 0:
        raise ValueError(f"correctness must be (seeds, questions), got shape {correct.shape}")
    return correct.mean(0)


class Bootstrap:
    """Question-level stratified bootstrap sums shared by every row of one table.

    `type_keys` (questions,) names each question's type. sums(scores) returns, per cell, the (B,) resampled
    score sums of a row; the cells' question counts are fixed across resamples (stratified by type).
    """

    def __init__(self, type_keys, n_resamples: int = B_DEFAULT, seed: int = 0):
        type_keys = np.asarray(type_keys).astype(str)
        unknown = sorted(set(type_keys) - set(TYPE_KEYS))
        if unknown:
            raise ValueError(f"unknown question type keys {unknown}")
        self.n_resamples = int(n_resamples)
        self.members = {key: np.flatnonzero(type_keys == key) for key in TYPE_KEYS}
        rng = np.random.default_rng(seed)
        # Resample counts per type: (B, n_t) how often each question of type t is drawn. int32 keeps the matrix
        # small; drawn block by block with one generator, so the result does not depend on CHUNK.
        self.counts = {key: self._draw_counts(rng, len(idx)) for key, idx in self.members.items()}

    def _draw_counts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        counts = np.zeros((self.n_resamples, n), dtype=np.float32)
        if n == 0:
            return counts
        for start in range(0, self.n_resamples, CHUNK):
            stop = min(start + CHUNK, self.n_resamples)
            draws = rng.integers(0, n, size=(stop - start, n))
            offsets = np.arange(stop - start)[:, None] * n
            counts[start:stop] = np.bincount((draws + offsets).ravel(), minlength=(stop - start) * n
                                             ).reshape(stop - start, n)
        return counts

    def count(self, cell: str) -> int:
        return int(sum(len(self.members[key]) for key in cell_types(cell)))

    def type_sums(self, scores: np.ndarray) -> dict[str, tuple[float, np.ndarray]]:
        """{type: (observed score sum, (B,) resampled score sums)} of one row's per-question scores."""
        return self.type_sums_many(np.asarray(scores, dtype=np.float64)[None])[0]

    def type_sums_many(self, scores: np.ndarray) -> list[dict[str, tuple[float, np.ndarray]]]:
        """type_sums of many rows at once, scores (rows, questions): one (B, n_t) x (n_t, rows) product per type
        reads each resample-count matrix once for all rows."""
        scores = np.asarray(scores, dtype=np.float64)
        per_type = {key: (scores[:, idx].sum(1), self.counts[key] @ scores[:, idx].T.astype(np.float32))
                    for key, idx in self.members.items()}
        return [{key: (float(observed[r]), resampled[:, r]) for key, (observed, resampled) in per_type.items()}
                for r in range(scores.shape[0])]

    def cell_sums(self, type_sums: dict, cell: str) -> tuple[float, np.ndarray]:
        keys = cell_types(cell)
        observed = sum(type_sums[key][0] for key in keys)
        resampled = sum((type_sums[key][1].astype(np.float64) for key in keys), np.zeros(self.n_resamples))
        return observed, resampled

    def interval(self, type_sums: dict, cell: str, level: float = LEVEL) -> Interval | None:
        """Accuracy (%) of one row in one cell with its percentile interval; None for an empty cell."""
        n = self.count(cell)
        if n == 0:
            return None
        observed, resampled = self.cell_sums(type_sums, cell)
        return _percentile(100.0 * observed / n, 100.0 * resampled / n, n, level)

    def difference(self, sums_a: dict, sums_b: dict, cell: str, level: float = LEVEL) -> Interval | None:
        """Paired difference A - B (points) in one cell with its paired-bootstrap percentile interval."""
        n = self.count(cell)
        if n == 0:
            return None
        obs_a, res_a = self.cell_sums(sums_a, cell)
        obs_b, res_b = self.cell_sums(sums_b, cell)
        return _percentile(100.0 * (obs_a - obs_b) / n, 100.0 * (res_a - res_b) / n, n, level)


def _percentile(estimate: float, resampled: np.ndarray, n: int, level: float) -> Interval:
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(resampled, [tail, 100.0 - tail])
    return Interval(float(estimate), float(low), float(high), n)


def sign_test(scores_a: np.ndarray, scores_b: np.ndarray) -> tuple[int, int, float]:
    """(b, c, p): questions where A scores higher (b) and lower (c) than B, and the exact two-sided p-value of
    binomial(b + c, 1/2) (McNemar's exact test when each row has one seed); p = 1 with no discordant question."""
    diff = np.asarray(scores_a, dtype=np.float64) - np.asarray(scores_b, dtype=np.float64)
    b, c = int((diff > 0).sum()), int((diff < 0).sum())
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return b, c, p


def holm(pvalues: list[float]) -> list[float]:
    """Holm-corrected p-values (statsmodels' multipletests), in the given order."""
    if not pvalues:
        return []
    from statsmodels.stats.multitest import multipletests  # heavy import, only when a table compares rows

    return [float(p) for p in multipletests(np.asarray(pvalues, dtype=np.float64), method="holm")[1]]


def binomial_interval(accuracy: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Sampling interval (percent, Wilson score) one run with this accuracy (%) would have on n questions:
    the single-run noise of a published cell on its split's test count."""
    if n <= 0:
        raise ValueError(f"a published cell needs a positive question count, got {n}")
    k = int(round(accuracy / 100.0 * n))
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return 100.0 * ci.low, 100.0 * ci.high
