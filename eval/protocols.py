"""Evaluation protocols: how a model turns an :class:`~eval.ir_data.IRDataset` into rankings.

* **Global pool** (:func:`global_rankings`): each query retrieves its top-k from the whole corpus by
  exact cosine search.
* **Local pool** (:func:`score_pools` then :func:`rank_pools`): an upstream retriever (BM25 by
  default, or a pool file) proposes a candidate pool per query and the model reranks it by cosine,
  by ``cosine − λ·s_boundary`` when it has a BoundaryHead, and with ``+ w·feedback`` when candidate
  feedback is on (``modeling_cre.candidate_feedback``). Documents outside the pool are never
  ranked, so recall is measured against *all* relevant documents: a candidate BM25 missed stays
  missed, as for a recruiter who only ever sees the pool.

Example:
    >>> from eval.ir_data import IRDataset
    >>> class Toy:
    ...     def encode(self, texts, kind, batch_size=32, show_progress=False):
    ...         import numpy as np
    ...         return np.array([[1.0, 0.0] if "py" in t else [0.0, 1.0] for t in texts], np.float32)
    >>> ds = IRDataset.from_dicts({"q": "py"}, {"a": "java", "b": "py"}, {"q": {"b": 1}})
    >>> global_rankings(Toy(), ds, top_k=2)
    {'q': ['b', 'a']}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from cre.modeling_cre import candidate_feedback, final_score
from eval.ir_data import IRDataset
from eval.models import SupportsEncode
from eval.retrieval import exact_top_k, rank_by_scores


@dataclass
class PoolScores:
    """One query's candidate pool with the model's scores for each candidate.

    Attributes:
        doc_ids: Candidates, in the upstream retriever's order.
        cosine: Cosine similarity of the query to each candidate.
        boundary: ``s_boundary`` per candidate, or ``None`` without a BoundaryHead.
        feedback: Mean cosine of each candidate to the ``k`` closest to the query, or ``None`` when
            candidate feedback is off.
    """

    doc_ids: list[str]
    cosine: np.ndarray
    boundary: np.ndarray | None = None
    feedback: np.ndarray | None = None

    def combined(self, boundary_weight: float, feedback_weight: float = 0.0) -> np.ndarray:
        """``cosine + w·feedback − λ·s_boundary`` (:func:`~modeling_cre.final_score`)."""
        return final_score(self.cosine, self.feedback, feedback_weight, self.boundary, boundary_weight)


def _embed(encoder: SupportsEncode, texts: list[str], kind: str, batch_size: int, show_progress: bool):
    return encoder.encode(texts, kind=kind, batch_size=batch_size, show_progress=show_progress)


def global_rankings(
    encoder: SupportsEncode,
    dataset: IRDataset,
    top_k: int,
    query_kind: str = "query",
    doc_kind: str = "document",
    exclude_self: bool = False,
    batch_size: int = 32,
    chunk_size: int = 50_000,
    show_progress: bool = False,
) -> dict[str, list[str]]:
    """Rank the whole corpus for every judged query, keeping the top ``top_k``.

    Args:
        exclude_self: Drop the document whose id equals the query id (JD–JD benchmarks whose corpus
            contains the query itself).
    """
    doc_ids = list(dataset.corpus)
    query_ids = [qid for qid, _ in dataset.judged_queries()]
    doc_vectors = _embed(encoder, [dataset.corpus[d] for d in doc_ids], doc_kind, batch_size, show_progress)
    query_vectors = _embed(
        encoder, [dataset.queries[q] for q in query_ids], query_kind, batch_size, show_progress
    )
    indices, _ = exact_top_k(query_vectors, doc_vectors, top_k + int(exclude_self), chunk_size)
    rankings = {}
    for qid, row in zip(query_ids, indices, strict=True):
        ranked = [doc_ids[i] for i in row if not (exclude_self and doc_ids[i] == qid)]
        rankings[qid] = ranked[:top_k]
    return rankings


def score_pools(
    encoder: SupportsEncode,
    dataset: IRDataset,
    pools: Mapping[str, list[str]],
    query_kind: str = "jd",
    doc_kind: str = "cv",
    batch_size: int = 32,
    show_progress: bool = False,
    feedback_top_k: int = 0,
) -> dict[str, PoolScores]:
    """Score every judged query's pool with the model (each distinct text is encoded once).

    Args:
        feedback_top_k: ``k`` of the candidate feedback scores (0: none).

    Raises:
        KeyError: A judged query has no pool.
    """
    query_ids = [qid for qid, _ in dataset.judged_queries()]
    missing = [qid for qid in query_ids if qid not in pools]
    if missing:
        raise KeyError(f"{len(missing)} judged queries have no candidate pool, e.g. {missing[:5]}")
    doc_ids = sorted({d for qid in query_ids for d in pools[qid]})
    row_of = {d: i for i, d in enumerate(doc_ids)}
    doc_vectors = _embed(encoder, [dataset.corpus[d] for d in doc_ids], doc_kind, batch_size, show_progress)
    query_vectors = _embed(
        encoder, [dataset.queries[q] for q in query_ids], query_kind, batch_size, show_progress
    )
    with_boundary = getattr(encoder, "has_boundary_head", False)
    scored = {}
    for qid, query_vector in zip(
        query_ids, tqdm(query_vectors, desc="rerank", disable=not show_progress), strict=True
    ):
        pool_vectors = doc_vectors[[row_of[d] for d in pools[qid]]]
        cosine = pool_vectors @ query_vector
        feedback = None
        if feedback_top_k:
            feedback = candidate_feedback(
                torch.from_numpy(pool_vectors), torch.from_numpy(cosine), feedback_top_k
            ).numpy()
        scored[qid] = PoolScores(
            doc_ids=list(pools[qid]),
            cosine=cosine,
            boundary=encoder.boundary_scores(query_vector, pool_vectors) if with_boundary else None,
            feedback=feedback,
        )
    return scored


def rank_pools(
    scored: Mapping[str, PoolScores], boundary_weight: float = 0.0, feedback_weight: float = 0.0
) -> dict[str, list[str]]:
    """Rerank each pool by ``cosine + w·feedback − λ·s_boundary``; cheap, so λ grids reuse one
    :func:`score_pools`."""
    return {
        qid: rank_by_scores(pool.doc_ids, pool.combined(boundary_weight, feedback_weight))
        for qid, pool in scored.items()
    }


def upstream_rankings(pools: Mapping[str, list[str]], dataset: IRDataset) -> dict[str, list[str]]:
    """The pools in the upstream retriever's own order (the "BM25 only" baseline row)."""
    return {qid: list(pools[qid]) for qid in dataset.qrels}
