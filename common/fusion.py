"""Reciprocal-rank fusion (RRF): one ranking out of several, by rank alone.

Cormack, Clarke and Büttcher (SIGIR 2009): a document's fused score is ``Σ 1 / (k + rank)`` over the
runs that rank it (rank 1 = best), with ``k = 60``. Only ranks enter, so a dense model's cosines and
BM25's unbounded scores need no calibration against each other. ``k`` is the paper's constant, not a
value tuned on our benchmarks: the evaluation and ``cre search --hybrid`` both use :data:`RRF_K`.

Example:
    >>> fused = reciprocal_rank_fusion([{"a": 0.9, "b": 0.5}, {"b": 12.0, "c": 3.0}])
    >>> fused.doc_ids, fused.ranks.tolist()
    (['b', 'a', 'c'], [[2, 1], [1, 0], [0, 2]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

RRF_K = 60


class Fused(NamedTuple):
    """A fused ranking.

    Attributes:
        doc_ids: Every document any run ranks, best first.
        scores: Their fused scores ``Σ 1 / (k + rank)``, in ``doc_ids`` order.
        ranks: ``(len(doc_ids), n_runs)`` rank of each document in each run (1 = best; 0 = that
            run does not rank it).
    """

    doc_ids: list[str]
    scores: np.ndarray
    ranks: np.ndarray


def ranked(doc_ids: Sequence[str]) -> dict[str, float]:
    """A run given as an order (best first) as the scores :func:`reciprocal_rank_fusion` takes.

    Example:
        >>> ranked(["b", "a"])
        {'b': 0.0, 'a': -1.0}
    """
    if len(set(doc_ids)) != len(doc_ids):
        raise ValueError("a ranking lists a document twice")
    return {doc: float(-position) for position, doc in enumerate(doc_ids)}


def reciprocal_rank_fusion(runs: Sequence[Mapping[str, float]], k: int = RRF_K) -> Fused:
    """Fuse runs (document id -> score, higher is better) by reciprocal rank.

    Ties are safe: documents with equal scores in a run share the best rank of their group
    (``1, 2, 2, 4``), so the fused order never depends on how a run broke its ties, and documents
    with equal fused scores are ordered by id, so the result is deterministic.

    Args:
        runs: The rankings to fuse; a document absent from a run gets nothing from it. Use
            :func:`ranked` for a run known only as an order.
        k: The RRF constant (:data:`RRF_K`).

    Returns:
        The :class:`Fused` ranking of every document of any run.

    Raises:
        ValueError: A score is NaN (the run and document are named: a NaN has no rank), or ``k``
            is negative.

    Example:
        >>> fused = reciprocal_rank_fusion([ranked(["a", "b"]), ranked(["b", "a"])])
        >>> fused.doc_ids, round(float(fused.scores[0]), 6)  # a tie on score: by id
        (['a', 'b'], 0.032522)
    """
    if k < 0:
        raise ValueError(f"the RRF constant k must be at least 0, got {k}")
    doc_ids = sorted({doc for run in runs for doc in run})
    row_of = {doc: row for row, doc in enumerate(doc_ids)}
    ranks = np.zeros((len(doc_ids), len(runs)), dtype=np.int64)
    for column, run in enumerate(runs):
        docs = list(run)
        scores = np.asarray([run[doc] for doc in docs], dtype=np.float64)
        if np.isnan(scores).any():
            bad = docs[int(np.flatnonzero(np.isnan(scores))[0])]
            raise ValueError(f"run {column}: document {bad!r} has a NaN score, which has no rank")
        # Competition ranking: 1 + how many documents of the run score strictly higher.
        descending = np.sort(-scores)
        ranks[[row_of[doc] for doc in docs], column] = 1 + np.searchsorted(descending, -scores, side="left")
    contributions = np.where(ranks > 0, 1.0 / (k + np.maximum(ranks, 1)), 0.0)
    # Summed in sorted order, the same ranks in other runs give bit-identical sums (a true tie).
    fused = np.sort(contributions, axis=1).sum(axis=1)
    # doc_ids are sorted, so a stable sort on the fused score leaves equal scores in id order.
    order = np.argsort(-fused, kind="stable")
    return Fused([doc_ids[i] for i in order], fused[order], ranks[order])
