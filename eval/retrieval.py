"""Candidate generation: exact dense top-k search and BM25 pools, plus user-supplied pool files.

Example:
    >>> import numpy as np
    >>> corpus = np.eye(3, dtype=np.float32)
    >>> indices, scores = exact_top_k(corpus[:1], corpus, k=2)
    >>> indices.tolist()
    [[0, 1]]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from common.lines import split_lines
from eval.ir_data import DatasetFormatError


def exact_top_k(
    queries: np.ndarray, corpus: np.ndarray, k: int, chunk_size: int = 50_000, query_chunk_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k, in blocks of queries and corpus rows so memory stays bounded.

    Args:
        queries: ``(n_queries, dim)`` vectors.
        corpus: ``(n_docs, dim)`` vectors.
        k: Results per query (capped at ``n_docs``).
        chunk_size: Corpus rows scored at a time.
        query_chunk_size: Queries scored at a time (15k job titles × 3k occupations would otherwise
            hold several full score matrices at once).

    Returns:
        ``(indices, scores)``, both ``(n_queries, k)``, best first; ties go to the lower index.
    """
    k = min(k, len(corpus))
    all_indices = np.zeros((len(queries), k), dtype=np.int64)
    all_scores = np.zeros((len(queries), k), dtype=np.float32)
    for first in range(0, len(queries), query_chunk_size):
        block = queries[first : first + query_chunk_size]
        best_scores = np.full((len(block), 0), -np.inf, dtype=np.float32)
        best_indices = np.zeros((len(block), 0), dtype=np.int64)
        for start in range(0, len(corpus), chunk_size):
            scores = block @ corpus[start : start + chunk_size].T
            indices = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
            best_scores, best_indices = _best_k(
                np.concatenate([best_scores, scores], axis=1),
                np.concatenate([best_indices, indices], axis=1),
                k,
            )
        all_scores[first : first + len(block)] = best_scores
        all_indices[first : first + len(block)] = best_indices
    return all_indices, all_scores


def _best_k(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row, by score descending, then index ascending."""
    if scores.shape[1] > k:
        # A partial selection first: sorting only k candidates per row is what makes 15k queries fast.
        keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, keep, axis=1).min(axis=1, keepdims=True)
        # argpartition breaks a tie at the k-th score arbitrarily: such rows take the full sort.
        tied = np.count_nonzero(scores >= kth, axis=1) > k
        if tied.any():
            keep[tied] = np.lexsort((indices[tied], -scores[tied]), axis=1)[:, :k]
        scores, indices = np.take_along_axis(scores, keep, axis=1), np.take_along_axis(indices, keep, axis=1)
    # lexsort: last key is primary -> by score descending, then index ascending.
    order = np.lexsort((indices, -scores), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)


def rank_by_scores(doc_ids: Sequence[str], scores: np.ndarray) -> list[str]:
    """Document ids by descending score; ties broken by id, as sentence-transformers does."""
    order = sorted(range(len(doc_ids)), key=lambda i: (-float(scores[i]), doc_ids[i]))
    return [doc_ids[i] for i in order]


_TOKEN = re.compile(r"[a-z0-9][a-z0-9+#.]*")


def _tokenize(text: str) -> list[str]:
    # Keeps "c++", "c#", ".net"-style skill tokens that default tokenisers split away.
    return _TOKEN.findall(text.lower())


def bm25_pools(queries: Mapping[str, str], corpus: Mapping[str, str], pool_size: int) -> dict[str, list[str]]:
    """For each query, the ``pool_size`` best documents under BM25 (``bm25s``, Lucene variant).

    Args:
        queries: Query id -> text.
        corpus: Document id -> text.
        pool_size: Documents per pool (capped at the corpus size).

    Returns:
        Query id -> document ids, best first.
    """
    import bm25s

    doc_ids = list(corpus)
    retriever = bm25s.BM25()
    retriever.index([_tokenize(corpus[d]) for d in doc_ids], show_progress=False)
    pool_size = min(pool_size, len(doc_ids))
    pools = {}
    for qid, text in queries.items():
        scores = retriever.get_scores(_tokenize(text))
        pools[qid] = rank_by_scores(doc_ids, scores)[:pool_size]
    return pools


def read_pool_file(
    path: str | Path, queries: Mapping[str, str], corpus: Mapping[str, str]
) -> dict[str, list[str]]:
    """Read candidate pools a user supplies: JSON ``{qid: [docid, ...]}`` or a TREC run file.

    A TREC run has ``qid Q0 docid rank score tag`` lines; documents are ordered by ``rank``.

    Raises:
        DatasetFormatError: Malformed lines, unknown query/document ids or a document listed twice
            for one query (the message names the file, line and ids).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            pools = {str(q): [str(d) for d in docs] for q, docs in json.loads(text).items()}
        except (json.JSONDecodeError, AttributeError, TypeError) as err:
            raise DatasetFormatError(
                f"{path}: expected a JSON object {{query id: [document ids]}} ({err})"
            ) from None
    else:
        pools = _read_trec_run(text, path)
    for qid, docs in pools.items():
        if qid not in queries:
            raise DatasetFormatError(f"{path}: pool for unknown query id {qid!r}")
        unknown = [d for d in docs if d not in corpus]
        if unknown:
            raise DatasetFormatError(
                f"{path}: pool of query {qid!r} names unknown document ids {unknown[:10]}"
            )
        if len(set(docs)) != len(docs):
            raise DatasetFormatError(f"{path}: pool of query {qid!r} lists a document twice")
    return pools


def _read_trec_run(text: str, path: Path) -> dict[str, list[str]]:
    ranked: dict[str, list[tuple[int, str]]] = {}
    for line_no, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 6 or not fields[3].lstrip("-").isdigit():
            raise DatasetFormatError(f"{path}:{line_no}: expected 'qid Q0 docid rank score tag'")
        ranked.setdefault(fields[0], []).append((int(fields[3]), fields[2]))
    return {qid: [doc for _, doc in sorted(docs)] for qid, docs in ranked.items()}
