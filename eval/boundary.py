"""Tools for the BoundaryHead: choose λ on a validation pool, and check that ``s_boundary`` transfers.

CRE reranks a local pool by ``cosine − λ·s_boundary``, where ``s_boundary`` is high when a CV sits on
the wrong side of a JD's boundary (close in topic, wrong in role). Two questions matter:

* which λ maximises recall within the review budget on held-out pools (:func:`lambda_grid_search`),
  and which λ cost no recall at all (:func:`weights_keeping_recall`);
* does ``s_boundary`` separate mismatched from matching JD–CV pairs on data it was not trained on
  (:func:`boundary_diagnostic`: ROC AUC and Cohen's d, with the same numbers for cosine as a yardstick).

Example:
    >>> import numpy as np
    >>> boundary_diagnostic(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0]))["auc"]
    1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from eval.metrics import evaluate_rankings
from eval.protocols import PoolScores, rank_pools

DEFAULT_LAMBDA_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def lambda_grid_search(
    scored: Mapping[str, PoolScores],
    qrels: Mapping[str, Mapping[str, float]],
    metric: str = "recall@20",
    grid: Sequence[float] = DEFAULT_LAMBDA_GRID,
    min_gain: float = 1,
) -> dict:
    """Evaluate ``metric`` for every λ in ``grid`` on pools scored once by :func:`~eval.protocols.score_pools`.

    Returns:
        ``{"metric", "grid": [{"lambda", "value"}], "best_lambda", "best_value"}``; ties go to the
        smaller λ (the less the head moves the cosine order, the safer).

    Raises:
        ValueError: The pools carry no boundary scores, or ``metric`` is not ``name@k``.
    """
    if any(pool.boundary is None for pool in scored.values()):
        raise ValueError("these pools have no boundary scores: the model has no BoundaryHead")
    name, _, k = metric.partition("@")
    if not k.isdigit():
        raise ValueError(f"metric must look like 'recall@20', got {metric!r}")
    rows = []
    for weight in sorted(grid):
        value = evaluate_rankings(rank_pools(scored, weight), qrels, {name: [int(k)]}, min_gain)[metric]
        rows.append({"lambda": float(weight), "value": value})
    best = max(rows, key=lambda row: (row["value"], -row["lambda"]))
    return {"metric": metric, "grid": rows, "best_lambda": best["lambda"], "best_value": best["value"]}


def weights_keeping_recall(
    scored: Mapping[str, PoolScores],
    qrels: Mapping[str, Mapping[str, float]],
    grid: Sequence[float] = DEFAULT_LAMBDA_GRID,
    cutoffs: Sequence[int] = (10, 20, 50),
) -> dict:
    """The λ of ``grid`` at which recall at every cutoff is at least its value at λ = 0.

    Recall-first: the head may reorder a shortlist, never push a relevant document out of it.

    Returns:
        ``{"grid": [{"lambda", "recall@k", ...}], "qualified": [λ, ...]}``; λ = 0 always qualifies.

    Example:
        >>> pool = PoolScores(["a", "b"], cosine=np.array([0.9, 0.8]), boundary=np.array([1.0, 0.0]))
        >>> weights_keeping_recall({"q": pool}, {"q": {"a": 1}}, grid=[0.05, 0.5], cutoffs=[1])["qualified"]
        [0.0, 0.05]
    """
    metrics = {"recall": list(cutoffs)}
    recall = {
        weight: evaluate_rankings(rank_pools(scored, weight), qrels, metrics)
        for weight in sorted({0.0, *map(float, grid)})
    }
    floor = recall[0.0]
    return {
        "grid": [{"lambda": weight, **values} for weight, values in recall.items()],
        "qualified": [w for w, values in recall.items() if all(values[m] >= floor[m] - 1e-12 for m in floor)],
    }


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative labels")
    # Mann–Whitney U from average ranks (ties share their mean rank).
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2
    rank_sum = mean_rank[inverse][labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def cohens_d(positive: np.ndarray, negative: np.ndarray) -> float:
    """Standardised mean difference ``(mean_pos − mean_neg) / pooled sd``."""
    positive, negative = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if positive.size < 2 or negative.size < 2:
        raise ValueError("Cohen's d needs at least two samples per group")
    pooled_var = ((positive.size - 1) * positive.var(ddof=1) + (negative.size - 1) * negative.var(ddof=1)) / (
        positive.size + negative.size - 2
    )
    return float((positive.mean() - negative.mean()) / np.sqrt(pooled_var)) if pooled_var > 0 else 0.0


def boundary_diagnostic(boundary: np.ndarray, mismatch: np.ndarray, cosine: np.ndarray | None = None) -> dict:
    """How well ``s_boundary`` flags boundary mismatches (label 1) among JD–CV pairs.

    Args:
        boundary: ``s_boundary`` per pair.
        mismatch: 1 where the CV does not fit the JD's role, 0 where it fits.
        cosine: Optional cosine per pair; reported with the sign flipped (low cosine = mismatch), so
            that both AUCs read "higher is better" and can be compared.

    Returns:
        ``auc``, ``cohens_d``, ``pairs``, ``mismatched``, and ``cosine_auc``/``cosine_cohens_d`` if given.
    """
    mismatch = np.asarray(mismatch).astype(bool)
    report = {
        "pairs": int(mismatch.size),
        "mismatched": int(mismatch.sum()),
        "auc": roc_auc(boundary, mismatch),
        "cohens_d": cohens_d(np.asarray(boundary)[mismatch], np.asarray(boundary)[~mismatch]),
    }
    if cosine is not None:
        flipped = -np.asarray(cosine, dtype=np.float64)
        report["cosine_auc"] = roc_auc(flipped, mismatch)
        report["cosine_cohens_d"] = cohens_d(flipped[mismatch], flipped[~mismatch])
    return report


def pool_pairs(
    scored: Mapping[str, PoolScores], qrels: Mapping[str, Mapping[str, float]], min_gain: float = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten scored pools into JD–CV pairs: ``(boundary, cosine, mismatch)``.

    A candidate the upstream retriever proposed but that is not relevant to the JD is a boundary
    mismatch: it looked close enough to enter the pool, yet belongs to another role.
    """
    boundary, cosine, mismatch = [], [], []
    for qid, pool in scored.items():
        if pool.boundary is None:
            raise ValueError(f"pool of {qid!r} has no boundary scores: the model has no BoundaryHead")
        boundary.append(pool.boundary)
        cosine.append(pool.cosine)
        mismatch.append([qrels[qid].get(doc, 0) < min_gain for doc in pool.doc_ids])
    return np.concatenate(boundary), np.concatenate(cosine), np.concatenate(mismatch)
