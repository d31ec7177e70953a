"""Run one encoder on one :class:`~eval.benchmarks.Benchmark` and score it.

Example:
    >>> from eval.benchmarks import load_benchmark
    >>> from eval.models import load_encoder
    >>> results = evaluate(load_encoder("minilm"), load_benchmark("onet"))  # doctest: +SKIP
    >>> results[0].metrics["ndcg@10"]  # doctest: +SKIP
    0.41
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from common.fusion import ranked, reciprocal_rank_fusion
from eval.benchmarks import Benchmark
from eval.metrics import per_query_scores
from eval.models import SupportsEncode
from eval.protocols import PoolScores, global_rankings, score_pools, upstream_rankings
from eval.retrieval import bm25_pools, rank_by_scores

BM25_ROW = "bm25 (pool order)"
HYBRID = " + bm25 (rrf)"
# Each ranking a hybrid row fuses on a global benchmark is this deep: the deepest cut-off of any suite
# metric (jobnorm's recall@100) and the default local pool size, so every fused list is as deep on
# global benchmarks as on the résumé pools, and a document BM25 alone puts at rank 100 can still count.
RRF_DEPTH = 100


@dataclass
class RunResult:
    """One row of a results table: a model (or model variant) on one benchmark.

    Attributes:
        model: Row name, e.g. ``"minilm"`` or ``"cre-ckpt [cos−0.3·boundary]"``.
        benchmark: Benchmark name.
        metrics: ``"recall@20"`` -> macro average.
        per_query: ``"recall@20"`` -> per-query scores, in :attr:`query_ids` order (for paired tests).
        query_ids: Sorted judged query ids.
        seconds: Wall time of the run (encoding included, cached vectors are free).
        texts_encoded: Texts the model really encoded (0 when everything came from the cache).
    """

    model: str
    benchmark: str
    metrics: dict[str, float]
    per_query: dict[str, np.ndarray]
    query_ids: list[str]
    seconds: float = 0.0
    texts_encoded: int = 0


def score_rankings(model: str, benchmark: Benchmark, rankings: dict[str, list[str]], **extra) -> RunResult:
    """Turn rankings into a :class:`RunResult` with the benchmark's metrics."""
    per_query = per_query_scores(rankings, benchmark.dataset.qrels, benchmark.metrics, benchmark.min_gain)
    metrics = {name: float(values.mean()) for name, values in per_query.items()}
    return RunResult(model, benchmark.name, metrics, per_query, sorted(rankings), **extra)


def hybrid_row(row: str) -> str:
    """The name of ``row`` fused with BM25; a variant's bracket stays last, so that
    :func:`eval.suite.base_row` of a hybrid variant is its model's hybrid row.

    Example:
        >>> hybrid_row("minilm"), hybrid_row("ckpt [cos+1·feedback@3]")
        ('minilm + bm25 (rrf)', 'ckpt + bm25 (rrf) [cos+1·feedback@3]')
    """
    model, bracket, variant = row.partition(" [")
    return f"{model}{HYBRID}{bracket}{variant}"


def dense_row(row: str) -> str:
    """The row a hybrid row fuses with BM25 (any other row is returned as it is).

    Example:
        >>> dense_row("ckpt + bm25 (rrf) [cos+1·feedback@3]"), dense_row("minilm")
        ('ckpt [cos+1·feedback@3]', 'minilm')
    """
    return row.replace(HYBRID, "", 1)


def fuse_with_bm25(
    runs: Mapping[str, Mapping[str, float]], lexical: Mapping[str, Sequence[str]], top_k: int | None = None
) -> dict[str, list[str]]:
    """Per query, the reciprocal-rank fusion of a model's run with BM25's ranking.

    Args:
        runs: Query id -> the model's scores (document id -> score, higher is better).
        lexical: Query id -> BM25's ranking (best first).
        top_k: Keep this many fused documents (``None``: all).

    Example:
        >>> fuse_with_bm25({"q": {"a": 0.9, "b": 0.1}}, {"q": ["b", "c"]})
        {'q': ['b', 'a', 'c']}
    """
    return {
        qid: reciprocal_rank_fusion([run, ranked(lexical[qid])]).doc_ids[:top_k] for qid, run in runs.items()
    }


def evaluate(
    encoder: SupportsEncode,
    benchmark: Benchmark,
    boundary_weight: float | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
    feedback: tuple[int, float] | None = None,
    lexical: Mapping[str, Sequence[str]] | None = None,
    windows: str | None = None,
) -> list[RunResult]:
    """Evaluate ``encoder`` with the benchmark's protocol.

    Args:
        encoder: The model; ``encoder.name`` (if any) names the row.
        benchmark: What to evaluate.
        boundary_weight: λ for the ``cosine − λ·s_boundary`` row of local-pool benchmarks. ``None``
            uses the model's configured weight. Models without a BoundaryHead get the cosine row only.
        batch_size: Encoding batch size.
        show_progress: Show tqdm bars while encoding and reranking.
        feedback: ``(k, w)`` of candidate feedback for local-pool benchmarks (``k`` 0: off). ``None``
            uses the model's configured feedback (CRE models; off for others).
        lexical: BM25's rankings (:func:`bm25_rankings`): each row then gets a twin
            (:func:`hybrid_row`) fusing it with them by reciprocal rank. ``None``: no hybrid rows.
        windows: A scheme of :data:`common.windows.SCHEMES`: on a global benchmark of CVs, also the row
            ``<model> [windows <scheme>]`` reading every CV in windows (``encoder.windows``).

    Returns:
        The cosine row; for local pools also the row with candidate feedback when it is on, the
        boundary-aware row when the model has a BoundaryHead, and the row with both; with
        ``lexical``, each row's hybrid twin after it.
    """
    name = getattr(encoder, "name", type(encoder).__name__)
    if hasattr(encoder, "for_task"):
        encoder = encoder.for_task(benchmark.task)
    encoded_before = getattr(encoder, "texts_encoded", 0)
    start = time.perf_counter()
    kinds = {"query_kind": benchmark.query_kind, "doc_kind": benchmark.doc_kind}
    # Row -> query id -> the model's scores (document id -> score, higher is better).
    runs: dict[str, dict[str, dict[str, float]]] = {}
    if benchmark.protocol == "global":
        depth = benchmark.top_k if lexical is None else max(benchmark.top_k, RRF_DEPTH)
        readings = {name: None}  # row -> window scheme (None: each document's opening)
        if windows is not None and benchmark.doc_kind == "cv":
            readings[f"{name} [windows {windows}]"] = windows
        for row, scheme in readings.items():
            dense = global_rankings(
                encoder,
                benchmark.dataset,
                depth,
                exclude_self=benchmark.exclude_self,
                batch_size=batch_size,
                show_progress=show_progress,
                windows=scheme,
                **kinds,
            )
            runs[row] = {qid: ranked(docs) for qid, docs in dense.items()}
    elif benchmark.protocol == "local":
        top_k, feedback_weight = feedback if feedback is not None else default_feedback(encoder)
        scored = score_pools(
            encoder,
            benchmark.dataset,
            benchmark.pools,
            batch_size=batch_size,
            show_progress=show_progress,
            feedback_top_k=top_k,
            **kinds,
        )
        weights = {"": 0.0}  # row suffix -> λ
        if getattr(encoder, "has_boundary_head", False):
            weight = boundary_weight if boundary_weight is not None else default_boundary_weight(encoder)
            weights[f"−{weight:g}·boundary"] = weight
        for suffix, weight in weights.items():
            runs[f"{name} [cos{suffix}]" if suffix else name] = _pool_runs(scored, weight)
            if top_k:
                row = f"{name} [cos{suffix}+{feedback_weight:g}·feedback@{top_k}]"
                runs[row] = _pool_runs(scored, weight, feedback_weight)
    else:
        raise ValueError(f"benchmark {benchmark.name!r}: unknown protocol {benchmark.protocol!r}")
    variants = {}
    for row, run in runs.items():
        variants[row] = {
            qid: rank_by_scores(list(scores), np.fromiter(scores.values(), float))[: benchmark.top_k]
            for qid, scores in run.items()
        }
        if lexical is not None:
            variants[hybrid_row(row)] = fuse_with_bm25(run, lexical, benchmark.top_k)
    timing = {
        "seconds": time.perf_counter() - start,
        "texts_encoded": getattr(encoder, "texts_encoded", 0) - encoded_before,
    }
    return [score_rankings(row, benchmark, rankings, **timing) for row, rankings in variants.items()]


def _pool_runs(
    scored: Mapping[str, PoolScores], boundary_weight: float, feedback_weight: float = 0.0
) -> dict[str, dict[str, float]]:
    """Each pool's ``cosine + w·feedback − λ·s_boundary`` as document id -> score."""
    return {
        qid: dict(zip(pool.doc_ids, map(float, pool.combined(boundary_weight, feedback_weight)), strict=True))
        for qid, pool in scored.items()
    }


def default_boundary_weight(encoder: SupportsEncode) -> float:
    """The λ stored in a CRE model's config (``boundary.weight``)."""
    return float(encoder.model.config.boundary["weight"])


def default_feedback(encoder: SupportsEncode) -> tuple[int, float]:
    """``(k, w)`` of a CRE model's configured candidate feedback; ``(0, 0.0)`` (off) for other models."""
    model = getattr(encoder, "model", None)
    options = getattr(getattr(model, "config", None), "feedback", None)
    if not isinstance(options, dict):
        return 0, 0.0
    return int(options["top_k"]), float(options["weight"])


def evaluate_upstream(benchmark: Benchmark, name: str = BM25_ROW) -> RunResult:
    """The local-pool retriever's own ranking, as a baseline row."""
    if benchmark.protocol != "local":
        raise ValueError(f"benchmark {benchmark.name!r} has no candidate pools")
    return score_rankings(name, benchmark, upstream_rankings(benchmark.pools, benchmark.dataset))


def bm25_rankings(benchmark: Benchmark, depth: int) -> dict[str, list[str]]:
    """BM25's ranking for every judged query: a local benchmark's pools (their upstream order, whole);
    on a global benchmark BM25 over the whole corpus, ``depth`` deep, without the query itself where
    the benchmark excludes it.

    Example:
        >>> from eval.ir_data import IRDataset
        >>> ds = IRDataset.from_dicts({"q": "python"}, {"a": "java", "b": "python"}, {"q": {"b": 1}})
        >>> bm25_rankings(Benchmark("toy", ds, "global", {"mrr": [2]}), depth=1)
        {'q': ['b']}
    """
    if benchmark.protocol == "local":
        return upstream_rankings(benchmark.pools, benchmark.dataset)
    exclude = benchmark.exclude_self
    ranked_docs = bm25_pools(
        dict(benchmark.dataset.judged_queries()), benchmark.dataset.corpus, depth + exclude
    )
    return {qid: [d for d in docs if not (exclude and d == qid)][:depth] for qid, docs in ranked_docs.items()}


def evaluate_bm25(
    benchmark: Benchmark, name: str = BM25_ROW, rankings: Mapping[str, Sequence[str]] | None = None
) -> RunResult:
    """BM25 as a baseline row on any benchmark: the pool order on local pools; on global ones BM25
    over the whole corpus (the pool order of a pool as deep as the deepest cut-off), under the same
    row name so that the row spans a suite.

    Args:
        benchmark: What to evaluate.
        name: Row name.
        rankings: :func:`bm25_rankings` already computed (at least ``benchmark.top_k`` deep), so that
            hybrid rows and this row share one BM25 pass.

    Example:
        >>> from eval.ir_data import IRDataset
        >>> ds = IRDataset.from_dicts({"q": "python"}, {"a": "java", "b": "python"}, {"q": {"b": 1}})
        >>> bench = Benchmark("toy", ds, "global", {"mrr": [2]})
        >>> evaluate_bm25(bench).metrics
        {'mrr@2': 1.0}
    """
    start = time.perf_counter()
    if rankings is None:
        rankings = bm25_rankings(benchmark, benchmark.top_k)
    if benchmark.protocol == "global":
        rankings = {qid: list(docs[: benchmark.top_k]) for qid, docs in rankings.items()}
    return score_rankings(name, benchmark, dict(rankings), seconds=time.perf_counter() - start)
