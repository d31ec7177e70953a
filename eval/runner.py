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
from dataclasses import dataclass

import numpy as np

from eval.benchmarks import Benchmark
from eval.metrics import per_query_scores
from eval.models import SupportsEncode
from eval.protocols import global_rankings, rank_pools, score_pools, upstream_rankings
from eval.retrieval import bm25_pools

BM25_ROW = "bm25 (pool order)"


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


def evaluate(
    encoder: SupportsEncode,
    benchmark: Benchmark,
    boundary_weight: float | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
    feedback: tuple[int, float] | None = None,
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

    Returns:
        The cosine row; for local pools also the row with candidate feedback when it is on, the
        boundary-aware row when the model has a BoundaryHead, and the row with both.
    """
    name = getattr(encoder, "name", type(encoder).__name__)
    if hasattr(encoder, "for_task"):
        encoder = encoder.for_task(benchmark.task)
    encoded_before = getattr(encoder, "texts_encoded", 0)
    start = time.perf_counter()
    kinds = {"query_kind": benchmark.query_kind, "doc_kind": benchmark.doc_kind}
    if benchmark.protocol == "global":
        variants = {
            name: global_rankings(
                encoder,
                benchmark.dataset,
                benchmark.top_k,
                exclude_self=benchmark.exclude_self,
                batch_size=batch_size,
                show_progress=show_progress,
                **kinds,
            )
        }
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
        variants = {}
        for suffix, weight in weights.items():
            variants[f"{name} [cos{suffix}]" if suffix else name] = rank_pools(scored, weight)
            if top_k:
                row = f"{name} [cos{suffix}+{feedback_weight:g}·feedback@{top_k}]"
                variants[row] = rank_pools(scored, weight, feedback_weight)
    else:
        raise ValueError(f"benchmark {benchmark.name!r}: unknown protocol {benchmark.protocol!r}")
    timing = {
        "seconds": time.perf_counter() - start,
        "texts_encoded": getattr(encoder, "texts_encoded", 0) - encoded_before,
    }
    return [score_rankings(row, benchmark, rankings, **timing) for row, rankings in variants.items()]


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


def evaluate_bm25(benchmark: Benchmark, name: str = BM25_ROW) -> RunResult:
    """BM25 as a baseline row on any benchmark: the pool order on local pools; on global ones BM25
    over the whole corpus (the pool order of a pool as deep as the deepest cut-off), under the same
    row name so that the row spans a suite.

    Example:
        >>> from eval.ir_data import IRDataset
        >>> ds = IRDataset.from_dicts({"q": "python"}, {"a": "java", "b": "python"}, {"q": {"b": 1}})
        >>> bench = Benchmark("toy", ds, "global", {"mrr": [2]})
        >>> evaluate_bm25(bench).metrics
        {'mrr@2': 1.0}
    """
    if benchmark.protocol == "local":
        return evaluate_upstream(benchmark, name)
    start, depth = time.perf_counter(), benchmark.top_k + int(benchmark.exclude_self)
    ranked = bm25_pools(dict(benchmark.dataset.judged_queries()), benchmark.dataset.corpus, depth)
    rankings = {
        qid: [d for d in docs if not (benchmark.exclude_self and d == qid)][: benchmark.top_k]
        for qid, docs in ranked.items()
    }
    return score_rankings(name, benchmark, rankings, seconds=time.perf_counter() - start)
