"""Ranking metrics with graded relevance, macro-averaged over queries.

A *ranking* is a list of document ids, best first. *Judgments* map each document id to a gain
(``int`` or ``float``); documents absent from the judgments have gain 0. A document counts as
relevant for the binary metrics when its gain is at least ``min_gain`` (default 1).

Conventions (the same as sentence-transformers' ``InformationRetrievalEvaluator``, which the tests
check against):

* ``recall@k`` = relevant documents in the top k / all relevant documents of the query.
* ``precision@k`` = relevant documents in the top k / k (a short ranking is not padded away).
* ``hit_rate@k`` = 1 if any relevant document is in the top k.
* ``mrr@k`` = 1 / rank of the first relevant document in the top k (0 if none).
* ``ndcg@k`` uses linear gains, ``sum(gain_i / log2(i + 1))`` over ranks i = 1..k, normalised by
  the ideal ordering of all judged gains.
* ``map@k`` = sum of precision at each relevant rank within the top k / min(k, number relevant).

Example:
    >>> ranking = ["d3", "d1", "d9"]
    >>> judgments = {"d1": 2, "d2": 1}
    >>> round(recall_at_k(ranking, judgments, 3), 2)
    0.5
    >>> mrr_at_k(ranking, judgments, 10)
    0.5
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

Judgments = Mapping[str, float]
MetricFn = Callable[[Sequence[str], Judgments, int, float], float]


def _relevant(judgments: Judgments, min_gain: float) -> set[str]:
    return {doc_id for doc_id, gain in judgments.items() if gain >= min_gain}


def _hits(ranking: Sequence[str], relevant: set[str], k: int) -> list[bool]:
    return [doc_id in relevant for doc_id in ranking[:k]]


def recall_at_k(ranking: Sequence[str], judgments: Judgments, k: int, min_gain: float = 1) -> float:
    """Fraction of the query's relevant documents found in the top ``k``."""
    relevant = _relevant(judgments, min_gain)
    if not relevant:
        raise ValueError("recall is undefined for a query without relevant documents")
    return sum(_hits(ranking, relevant, k)) / len(relevant)


def precision_at_k(ranking: Sequence[str], judgments: Judgments, k: int, min_gain: float = 1) -> float:
    """Fraction of the ``k`` review slots that hold a relevant document."""
    return sum(_hits(ranking, _relevant(judgments, min_gain), k)) / k


def hit_rate_at_k(ranking: Sequence[str], judgments: Judgments, k: int, min_gain: float = 1) -> float:
    """1.0 if at least one relevant document is in the top ``k``, else 0.0."""
    return float(any(_hits(ranking, _relevant(judgments, min_gain), k)))


def mrr_at_k(ranking: Sequence[str], judgments: Judgments, k: int, min_gain: float = 1) -> float:
    """Reciprocal rank of the first relevant document within the top ``k`` (0.0 if none)."""
    for rank, is_hit in enumerate(_hits(ranking, _relevant(judgments, min_gain), k), start=1):
        if is_hit:
            return 1.0 / rank
    return 0.0


def _dcg(gains: Iterable[float]) -> float:
    gains = np.asarray(list(gains), dtype=np.float64)
    return float(np.sum(gains / np.log2(np.arange(2, gains.size + 2))))


def ndcg_at_k(ranking: Sequence[str], judgments: Judgments, k: int, min_gain: float = 1) -> float:
    """Normalised discounted cumulative gain with the judged (graded, linear) gains.

    ``min_gain`` is accepted for a uniform signature; NDCG uses every positive gain.
    """
    ideal = _dcg(sorted((g for g in judgments.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        raise ValueError("NDCG is undefined for a query without positive gains")
    return _dcg(max(judgments.get(doc_id, 0), 0) for doc_id in ranking[:k]) / ideal


def map_at_k(ranking: Sequence[str], judgments: Judgments, k: int, min_gain: float = 1) -> float:
    """Average precision over the relevant ranks in the top ``k``, divided by min(k, #relevant)."""
    relevant = _relevant(judgments, min_gain)
    if not relevant:
        raise ValueError("MAP is undefined for a query without relevant documents")
    found, total = 0, 0.0
    for rank, is_hit in enumerate(_hits(ranking, relevant, k), start=1):
        if is_hit:
            found += 1
            total += found / rank
    return total / min(k, len(relevant))


METRICS: dict[str, MetricFn] = {
    "recall": recall_at_k,
    "precision": precision_at_k,
    "hit_rate": hit_rate_at_k,
    "mrr": mrr_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
}


def per_query_scores(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Judgments],
    metrics: Mapping[str, Sequence[int]],
    min_gain: float = 1,
) -> dict[str, np.ndarray]:
    """Score every query; the arrays feed macro averages and paired bootstrap tests.

    Args:
        rankings: Query id -> ranked document ids.
        qrels: Query id -> {document id: gain}. Every ranked query must be judged.
        metrics: Metric name (a key of :data:`METRICS`) -> cut-offs, e.g. ``{"ndcg": [10]}``.
        min_gain: Smallest gain that counts as relevant for the binary metrics.

    Returns:
        ``"{metric}@{k}"`` -> scores in the (sorted) order of the query ids.

    Raises:
        KeyError: A ranked query has no judgments, or a metric name is unknown.
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise KeyError(f"unknown metrics {unknown}; choose from {sorted(METRICS)}")
    unjudged = sorted(set(rankings) - set(qrels))
    if unjudged:
        raise KeyError(f"{len(unjudged)} ranked queries have no relevance judgments, e.g. {unjudged[:5]}")
    query_ids = sorted(rankings)
    return {
        f"{name}@{k}": np.array([METRICS[name](rankings[q], qrels[q], k, min_gain) for q in query_ids])
        for name, cutoffs in metrics.items()
        for k in cutoffs
    }


def evaluate_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Judgments],
    metrics: Mapping[str, Sequence[int]],
    min_gain: float = 1,
) -> dict[str, float]:
    """Macro-average :func:`per_query_scores` over queries.

    Example:
        >>> evaluate_rankings({"q": ["a", "b"]}, {"q": {"b": 1}}, {"recall": [1, 2]})
        {'recall@1': 0.0, 'recall@2': 1.0}
    """
    scores = per_query_scores(rankings, qrels, metrics, min_gain)
    return {name: float(values.mean()) for name, values in scores.items()}
