"""Benchmarks built from the synthetic ``validation`` split, for the λ search and the pipeline's table.

The validation JDs are halved by source id (stable hash): the **tune** half chooses λ, the **test**
half fills the evaluation table, so the table never scores the λ it was tuned on. Three benchmarks
per half (corpora hold the texts of *all* validation JDs, so each half searches the same corpus):

* ``synth-jd-jd`` (global): a JD must find its paraphrase among every paraphrase, role-boundary
  negative and constraint-conflict negative;
* ``synth-jd-cv`` (global): a JD must find its matching CVs among every validation CV;
* ``synth-boundary`` (local): a JD reranks its own pool (its paraphrase, role-boundary and
  constraint-conflict negatives), where cosine alone tends to prefer the near-copy negatives: this
  is where ``cos − λ·s_boundary`` should help.

These are in-distribution smoke tests of training; the real-data benchmarks live in :mod:`eval`.

Example:
    >>> benches = validation_benchmarks("runs/synth", part="test")  # doctest: +SKIP
    >>> sorted(benches)  # doctest: +SKIP
    ['synth-boundary', 'synth-jd-cv', 'synth-jd-jd']
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from eval.benchmarks import Benchmark
from eval.boundary import DEFAULT_LAMBDA_GRID, lambda_grid_search, weights_keeping_recall
from eval.ir_data import IRDataset
from eval.models import SupportsEncode
from eval.protocols import score_pools
from train.data import TrainingDataError, read_records

PARTS = ("tune", "test")
METRICS = {"ndcg": [10], "mrr": [10], "recall": [1, 5]}
LAMBDA_METRIC = "mrr@10"
# The review budgets at which the BoundaryHead may not cost JD→CV recall (see search_lambda). A tune JD
# has about two fitting CVs among some 460, so a trained encoder's recall is 1.0 from 10 on for every λ
# up to 0.5: the cut-off 5 is where the guard can still see a fitting CV pushed down.
RECALL_GUARD_CUTOFFS = (5, 10, 20, 50)


def part_of(source_id: str) -> str:
    """``tune`` or ``test``: which half of the validation JDs ``source_id`` belongs to."""
    return PARTS[zlib.crc32(source_id.encode()) % 2]


def validation_benchmarks(data_dir: str | Path, part: str) -> dict[str, Benchmark]:
    """The three synthetic benchmarks of one half (``tune`` or ``test``) of the validation JDs.

    Raises:
        TrainingDataError: Malformed records, or a half without validation JDs.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    data_dir = Path(data_dir)
    pairs = read_records(data_dir / "pairs.jsonl", ["query", "positive", "stage", "source_id"], "validation")
    ranking = read_records(
        data_dir / "ranking.jsonl",
        ["query", "positive", "negative_role", "negative_constraint", "source_id"],
        "validation",
    )
    jdcv = read_records(data_dir / "jdcv.jsonl", ["query", "positive", "negative", "source_id"], "validation")
    queries = {
        r["source_id"]: r["query"]
        for r in pairs
        if r["stage"] == "paraphrase" and part_of(r["source_id"]) == part
    }
    if not queries:
        raise TrainingDataError(f"{data_dir}: no validation JDs in the {part!r} half")

    jd_corpus: dict[str, str] = {}
    jd_qrels: dict[str, dict[str, float]] = defaultdict(dict)
    pools: dict[str, list[str]] = defaultdict(list)

    def add(source: str, text: str, relevant: bool, store: dict[str, str], qrels: dict) -> str:
        doc_id = f"d{zlib.crc32(text.encode()):08x}"  # the same text is one document
        store[doc_id] = text
        if relevant:
            qrels[source][doc_id] = 1.0
        return doc_id

    for r in pairs:
        if r["stage"] == "paraphrase":
            pools[r["source_id"]].append(add(r["source_id"], r["positive"], True, jd_corpus, jd_qrels))
    for r in ranking:
        for field in ("negative_role", "negative_constraint"):
            pools[r["source_id"]].append(add(r["source_id"], r[field], False, jd_corpus, jd_qrels))
    cv_corpus: dict[str, str] = {}
    cv_qrels: dict[str, dict[str, float]] = defaultdict(dict)
    for r in jdcv:
        add(r["source_id"], r["positive"], True, cv_corpus, cv_qrels)
        add(r["source_id"], r["negative"], False, cv_corpus, cv_qrels)

    def keep(qrels: dict) -> dict:
        return {q: judged for q, judged in qrels.items() if q in queries}

    jd_jd = IRDataset.from_dicts(
        queries, jd_corpus, keep(jd_qrels), source=f"{data_dir} (validation, {part})"
    )
    jd_cv = IRDataset.from_dicts(
        queries, cv_corpus, keep(cv_qrels), source=f"{data_dir} (validation, {part})"
    )
    notes = {"split": f"synthetic validation, {part} half"}
    return {
        "synth-jd-jd": Benchmark(
            "synth-jd-jd", jd_jd, "global", METRICS, "jd", "jd", notes=notes, task="jd-jd"
        ),
        "synth-jd-cv": Benchmark("synth-jd-cv", jd_cv, "global", METRICS, "jd", "cv", notes=notes),
        "synth-boundary": Benchmark(
            "synth-boundary",
            jd_jd,
            "local",
            METRICS,
            "jd",
            "jd",
            # Pools in id (content hash) order: the "pool order" row is then a random-order baseline.
            pools={q: sorted(set(pools[q])) for q in jd_jd.qrels},
            notes=notes,
        ),
    }


def search_lambda(
    encoder: SupportsEncode, data_dir: str | Path, grid: Sequence[float] = DEFAULT_LAMBDA_GRID
) -> dict:
    """Choose λ recall-first on the ``tune`` half.

    A λ qualifies when JD→CV recall at every cutoff of :data:`RECALL_GUARD_CUTOFFS` (each tune JD
    ranking every validation CV by ``cos − λ·s_boundary``) is at least its value at λ = 0
    (:func:`eval.boundary.weights_keeping_recall`). Among the qualifying λ, the best boundary-pool
    MRR@10 wins (:func:`eval.boundary.lambda_grid_search`; ties go to the smaller λ).

    Returns:
        :func:`~eval.boundary.lambda_grid_search`'s dict over the qualifying λ, plus ``recall_guard``:
        the recall of every λ of ``grid`` and the list of those that qualified.
    """
    benchmarks = validation_benchmarks(data_dir, "tune")
    boundary = benchmarks["synth-boundary"]
    scored = score_pools(encoder, boundary.dataset, boundary.pools, query_kind="jd", doc_kind="jd")
    cvs = benchmarks["synth-jd-cv"].dataset
    every_cv = sorted(cvs.corpus)
    cv_scored = score_pools(encoder, cvs, {q: every_cv for q in cvs.qrels}, query_kind="jd", doc_kind="cv")
    guard = weights_keeping_recall(cv_scored, cvs.qrels, grid, RECALL_GUARD_CUTOFFS)
    search = lambda_grid_search(scored, boundary.dataset.qrels, LAMBDA_METRIC, guard["qualified"])
    return {**search, "recall_guard": guard}
