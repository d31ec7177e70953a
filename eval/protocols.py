"""Evaluation protocols: how a model turns an :class:`~eval.ir_data.IRDataset` into rankings.

* **Global pool** (:func:`global_rankings`): each query retrieves its top-k from the whole corpus by
  exact cosine search; with ``windows``, every document is read in windows (as the search tool reads
  long CVs) and scored from its windows' cosines by a scheme of :mod:`common.windows`.
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

from common.windows import check_scheme, document_scores
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
    windows: str | None = None,
) -> dict[str, list[str]]:
    """Rank the whole corpus for every judged query, keeping the top ``top_k``.

    Args:
        exclude_self: Drop the document whose id equals the query id (JD–JD benchmarks whose corpus
            contains the query itself).
        windows: Read every document in windows (``encoder.windows``) and score it from them by this
            scheme of :data:`common.windows.SCHEMES`; ``None``: one vector per document (truncation).
    """
    doc_ids = list(dataset.corpus)
    query_ids = [qid for qid, _ in dataset.judged_queries()]
    doc_texts = [dataset.corpus[d] for d in doc_ids]
    if windows is None:
        doc_vectors = _embed(encoder, doc_texts, doc_kind, batch_size, show_progress)
    else:
        check_scheme(windows)
        doc_vectors, starts = window_vectors(encoder, doc_texts, doc_kind, batch_size, show_progress)
    query_vectors = _embed(
        encoder, [dataset.queries[q] for q in query_ids], query_kind, batch_size, show_progress
    )
    depth = top_k + int(exclude_self)
    if windows is None:
        indices, _ = exact_top_k(query_vectors, doc_vectors, depth, chunk_size)
    else:
        indices = windowed_top_k(query_vectors, doc_vectors, starts, depth, windows)
    rankings = {}
    for qid, row in zip(query_ids, indices, strict=True):
        ranked = [doc_ids[i] for i in row if not (exclude_self and doc_ids[i] == qid)]
        rankings[qid] = ranked[:top_k]
    return rankings


def window_vectors(
    encoder: SupportsEncode, texts: list[str], kind: str, batch_size: int = 32, show_progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Every window of every text (``encoder.windows``), encoded: ``(vectors, starts)``, where
    ``starts[i]`` is the row of text ``i``'s first window and its windows follow in order."""
    pieces = encoder.windows(texts, kind)
    starts = np.cumsum([0] + [len(windows) for windows in pieces[:-1]])
    flat = [window for windows in pieces for window in windows]
    return _embed(encoder, flat, kind, batch_size, show_progress), starts


def windowed_top_k(
    query_vectors: np.ndarray,
    window_vectors: np.ndarray,
    starts: np.ndarray,
    k: int,
    scheme: str,
    query_chunk_size: int = 256,
) -> np.ndarray:
    """Each query's ``k`` best documents, every document scored from its windows' cosines by ``scheme``
    (:func:`common.windows.document_scores`); ties go to the lower index, as in exact search.

    Args:
        query_vectors: ``(n_queries, dim)``.
        window_vectors: ``(n_windows, dim)``, each document's windows contiguous and in order.
        starts: Row of each document's first window (:func:`window_vectors`).
        k: Documents per query (capped at the number of documents).
        scheme: One of :data:`common.windows.SCHEMES`.
        query_chunk_size: Queries scored at a time, so memory stays bounded.

    Returns:
        ``(n_queries, k)`` document indices, best first.

    Example:
        >>> q = np.array([[1.0, 0.0]])
        >>> windows = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])  # document 0: two windows
        >>> windowed_top_k(q, windows, np.array([0, 2]), 2, "first").tolist()
        [[1, 0]]
        >>> windowed_top_k(q, windows, np.array([0, 2]), 2, "max").tolist()
        [[0, 1]]
    """
    k = min(k, len(starts))
    blocks = [np.zeros((0, k), dtype=np.int64)]
    for first in range(0, len(query_vectors), query_chunk_size):
        block = query_vectors[first : first + query_chunk_size] @ window_vectors.T
        scores = document_scores(block, starts, scheme)
        blocks.append(np.argsort(-scores, axis=1, kind="stable")[:, :k])
    return np.concatenate(blocks)


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
