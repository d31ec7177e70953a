"""Protocols, runner, comparison report and boundary tools, driven by a small bag-of-words encoder.

The encoder is a real (if simple) implementation of the encoder interface: a text's vector counts
its words over a fixed vocabulary, so which document is nearest is known by construction.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.windows import SCHEMES, aggregate, document_scores
from eval.benchmarks import Benchmark
from eval.boundary import (
    boundary_diagnostic,
    cohens_d,
    lambda_grid_search,
    pool_pairs,
    roc_auc,
    weights_keeping_recall,
)
from eval.compare import build_report, markdown_table, paired_comparisons, run_models, write_report
from eval.ir_data import IRDataset
from eval.protocols import PoolScores, global_rankings, rank_pools, score_pools
from eval.runner import bm25_rankings, evaluate, evaluate_upstream

VOCABULARY = ["python", "java", "nurse", "chef", "senior", "junior"]


class BagOfWordsEncoder:
    """Word counts over :data:`VOCABULARY`, L2-normalised; a BoundaryHead that flags "junior"."""

    name = "bow"

    def __init__(self, boundary: bool = False):
        self.has_boundary_head = boundary
        self.calls: list[tuple[str, int]] = []

    def encode(self, texts, kind, batch_size=32, show_progress=False):
        self.calls.append((kind, len(texts)))
        vectors = np.array([[t.split().count(w) + 1e-3 for w in VOCABULARY] for t in texts], np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def boundary_scores(self, query_vector, doc_vectors):
        # Mismatch when the query asks for "senior" and the document is "junior".
        return doc_vectors[:, VOCABULARY.index("junior")] * query_vector[VOCABULARY.index("senior")] * 10


CORPUS = {
    "cv1": "python python senior",
    "cv2": "python junior junior",
    "cv3": "java senior",
    "cv4": "nurse",
    "cv5": "chef",
}
QUERIES = {"jd-py": "python senior", "jd-nurse": "nurse", "jd-none": "chef"}
QRELS = {"jd-py": {"cv1": 1}, "jd-nurse": {"cv4": 2}}


@pytest.fixture
def dataset():
    return IRDataset.from_dicts(QUERIES, CORPUS, QRELS)


def test_global_rankings_encode_once_and_exclude_self():
    corpus = {"a": "python", "b": "python java", "c": "nurse"}
    data = IRDataset.from_dicts({"a": "python"}, corpus, {"a": {"b": 1}})
    encoder = BagOfWordsEncoder()
    assert global_rankings(encoder, data, top_k=2, exclude_self=True) == {"a": ["b", "c"]}
    assert global_rankings(encoder, data, top_k=2) == {"a": ["a", "b"]}
    assert encoder.calls[:2] == [("document", 3), ("query", 1)]


def test_local_pools_rerank_by_cosine_then_by_boundary(dataset):
    pools = {"jd-py": ["cv3", "cv2", "cv1"], "jd-nurse": ["cv5", "cv4"]}
    scored = score_pools(BagOfWordsEncoder(boundary=True), dataset, pools)
    assert set(scored) == {"jd-py", "jd-nurse"}  # the unjudged query is not scored
    assert rank_pools(scored)["jd-py"][0] in {"cv1", "cv2"}
    by_boundary = rank_pools(scored, boundary_weight=1.0)["jd-py"]
    assert by_boundary.index("cv2") == 2  # the junior CV drops below the others
    assert scored["jd-nurse"].boundary is not None
    with pytest.raises(KeyError, match="no candidate pool"):
        score_pools(BagOfWordsEncoder(), dataset, {"jd-py": ["cv1"]})


def test_pool_scores_combined_is_cosine_without_boundary():
    pool = PoolScores(["a", "b"], np.array([0.9, 0.5]))
    np.testing.assert_array_equal(pool.combined(0.7), pool.cosine)
    pool.boundary = np.array([1.0, 0.0])
    np.testing.assert_allclose(pool.combined(0.5), [0.4, 0.5])


def test_feedback_lifts_a_candidate_that_resembles_the_best_one():
    # The Java developer's CV never says "python" but reads like the top candidate (python + java).
    corpus = {"top": "python java", "java-dev": "java", "nurse": "python nurse nurse"}
    data = IRDataset.from_dicts({"q": "python"}, corpus, {"q": {"top": 1, "java-dev": 1}})
    scored = score_pools(BagOfWordsEncoder(), data, {"q": list(corpus)}, feedback_top_k=1)
    assert rank_pools(scored)["q"] == ["top", "nurse", "java-dev"]
    assert rank_pools(scored, feedback_weight=2.0)["q"] == ["top", "java-dev", "nurse"]
    np.testing.assert_allclose(scored["q"].feedback[0], 1.0, atol=1e-5)  # the top candidate itself
    assert score_pools(BagOfWordsEncoder(), data, {"q": list(corpus)})["q"].feedback is None


def make_benchmarks(dataset):
    global_bench = Benchmark("toy-global", dataset, "global", {"ndcg": [3], "recall": [1, 2]}, min_gain=1)
    pools = {"jd-py": ["cv2", "cv3", "cv1"], "jd-nurse": ["cv5", "cv3"]}  # the nurse CV is not pooled
    local_bench = Benchmark("toy-local", dataset, "local", {"recall": [1, 2, 3]}, pools=pools)
    return global_bench, local_bench


def test_evaluate_produces_cosine_and_boundary_rows(dataset):
    global_bench, local_bench = make_benchmarks(dataset)
    (row,) = evaluate(BagOfWordsEncoder(), global_bench)
    assert row.metrics == {"ndcg@3": 1.0, "recall@1": 1.0, "recall@2": 1.0}
    assert row.query_ids == ["jd-nurse", "jd-py"]
    cosine, boundary = evaluate(BagOfWordsEncoder(boundary=True), local_bench, boundary_weight=1.0)
    assert boundary.model == "bow [cos−1·boundary]"
    # The pool lacks the nurse CV: recall of that query stays 0 at every K.
    assert cosine.per_query["recall@3"].tolist() == [0.0, 1.0]
    assert boundary.metrics["recall@1"] == 0.5
    assert evaluate_upstream(local_bench).metrics["recall@1"] == 0.0  # BM25 put cv2 first
    rows = evaluate(BagOfWordsEncoder(boundary=True), local_bench, 1.0, feedback=(1, 0.5))
    assert [row.model for row in rows] == [
        "bow",
        "bow [cos+0.5·feedback@1]",
        "bow [cos−1·boundary]",
        "bow [cos−1·boundary+0.5·feedback@1]",
    ]
    assert rows[0].metrics == cosine.metrics and rows[2].metrics == boundary.metrics
    with pytest.raises(ValueError, match="no candidate pools"):
        evaluate_upstream(global_bench)


def keyword_benchmarks():
    """The relevant CV names an employer ("acme") the bag of words cannot see; BM25 can."""
    corpus = {"d1": "python python", "d2": "python senior", "d3": "java acme", "d4": "nurse"}
    data = IRDataset.from_dicts({"q": "python acme"}, corpus, {"q": {"d3": 1}})
    global_bench = Benchmark("kw-global", data, "global", {"recall": [1, 2]})
    local_bench = Benchmark("kw-local", data, "local", {"recall": [1, 2]}, pools={"q": ["d3", "d1", "d2"]})
    return global_bench, local_bench


def test_hybrid_rows_fuse_the_model_ranking_with_bm25_by_reciprocal_rank():
    global_bench, local_bench = keyword_benchmarks()
    # BM25: d3 (the rare "acme") first, then d1 (python twice), d2; d4 matches nothing.
    assert bm25_rankings(global_bench, depth=3) == {"q": ["d3", "d1", "d2"]}
    assert bm25_rankings(local_bench, depth=1) == {"q": ["d3", "d1", "d2"]}  # a pool stays whole
    dense, hybrid = evaluate(BagOfWordsEncoder(), global_bench, lexical=bm25_rankings(global_bench, 100))
    assert hybrid.model == "bow + bm25 (rrf)"
    # Dense d1, d2, then d3 and d4 (equal cosines). Fused with k = 60: d1 1/61 + 1/62, d3 1/63 + 1/61,
    # d2 1/62 + 1/63: d3 rises to second place.
    assert dense.metrics == {"recall@1": 0.0, "recall@2": 0.0}
    assert hybrid.metrics == {"recall@1": 0.0, "recall@2": 1.0}
    rows = evaluate(
        BagOfWordsEncoder(boundary=True),
        local_bench,
        0.0,
        feedback=(0, 0.0),
        lexical=bm25_rankings(local_bench, 100),
    )
    assert [row.model for row in rows] == [
        "bow",
        "bow + bm25 (rrf)",
        "bow [cos−0·boundary]",
        "bow + bm25 (rrf) [cos−0·boundary]",
    ]
    # Local pools fuse with the pool order (BM25's): d3 first, d1, d2; the model's d1, d2, d3.
    assert rows[1].metrics == {"recall@1": 0.0, "recall@2": 1.0}
    assert rows[0].metrics == {"recall@1": 0.0, "recall@2": 0.0}
    results, _, _ = run_models(
        ["bow"], [global_bench, local_bench], lambda spec: BagOfWordsEncoder(), hybrid=True
    )
    assert [(r.model, r.benchmark) for r in results] == [
        ("bm25 (pool order)", "kw-local"),
        ("bow", "kw-global"),
        ("bow + bm25 (rrf)", "kw-global"),
        ("bow", "kw-local"),
        ("bow + bm25 (rrf)", "kw-local"),
    ]


def test_comparison_report_table_plots_and_tests(dataset, tmp_path):
    benchmarks = make_benchmarks(dataset)
    encoders = {"plain": BagOfWordsEncoder(), "boundary": BagOfWordsEncoder(boundary=True)}

    def load(spec):
        if spec == "broken":
            raise FileNotFoundError("no such model folder 'broken'")
        encoder = encoders[spec]
        encoder.name = spec
        return encoder

    results, load_seconds, failures = run_models(["plain", "broken", "boundary"], benchmarks, load, 1.0)
    assert failures == {"broken": "FileNotFoundError: no such model folder 'broken'"}
    assert [(r.model, r.benchmark) for r in results] == [
        ("bm25 (pool order)", "toy-local"),
        ("plain", "toy-global"),
        ("plain", "toy-local"),
        ("boundary", "toy-global"),
        ("boundary", "toy-local"),
        ("boundary [cos−1·boundary]", "toy-local"),
    ]
    comparisons = paired_comparisons(results, "plain", samples=200)
    assert {(c["model"], c["benchmark"]) for c in comparisons} == {
        ("bm25 (pool order)", "toy-local"),
        ("boundary", "toy-global"),
        ("boundary", "toy-local"),
        ("boundary [cos−1·boundary]", "toy-local"),
    }
    report = build_report(
        results, benchmarks, {"max_length": 8}, load_seconds, failures, comparisons, per_query=True
    )
    paths = write_report(report, tmp_path, stem="toy")
    assert sorted(p.name for p in paths) == [
        "toy.json",
        "toy.md",
        "toy_recall_toy-global.png",
        "toy_recall_toy-local.png",
    ]
    saved = json.loads((tmp_path / "toy.json").read_text())
    assert saved["schema_version"] == 1
    assert saved["models"]["plain"]["toy-local"]["per_query"]["recall@3"] == {"jd-nurse": 0.0, "jd-py": 1.0}
    assert saved["benchmarks"]["toy-local"]["queries"] == 2
    table = markdown_table(saved)
    assert "| boundary [cos−1·boundary] | 0.5000 | 0.5000 | 0.5000 |" in table
    assert "**broken** failed" in table
    assert (tmp_path / "toy_recall_toy-local.png").read_bytes()[:4] == b"\x89PNG"


def test_recall_guard_drops_the_weights_that_push_a_match_out_of_the_shortlist():
    # Two queries; the head demotes q1's match (boundary 1) enough to fall below 2nd place from λ > 0.2.
    pools = {
        "q1": PoolScores(["m1", "x", "y"], np.array([0.9, 0.8, 0.7]), boundary=np.array([1.0, 0.0, 0.3])),
        "q2": PoolScores(["m2", "z"], np.array([0.5, 0.52]), boundary=np.array([0.0, 1.0])),
    }
    qrels = {"q1": {"m1": 1}, "q2": {"m2": 1}}
    guard = weights_keeping_recall(pools, qrels, grid=[0.05, 0.3, 1.0], cutoffs=[1, 2])
    rows = {row["lambda"]: row for row in guard["grid"]}
    assert rows[0.0]["recall@1"] == 0.5 and rows[0.05]["recall@1"] == 1.0  # q2's match rises first
    assert rows[0.3]["recall@2"] == 0.5 and rows[1.0]["recall@2"] == 0.5  # q1's match leaves the top 2
    assert guard["qualified"] == [0.0, 0.05]


def test_lambda_grid_prefers_the_smallest_best_lambda():
    # Cosine prefers the junior CV (0.82 vs 0.71); its boundary score (4.1) flips that from λ ≈ 0.03.
    corpus = {"fit": "python java chef senior", "junior": "python senior junior"}
    dataset = IRDataset.from_dicts({"jd": "python senior"}, corpus, {"jd": {"fit": 1}})
    pools = {"jd": ["junior", "fit"]}
    scored = score_pools(BagOfWordsEncoder(boundary=True), dataset, pools)
    result = lambda_grid_search(scored, dataset.qrels, "recall@1", grid=[1.0, 0.0, 0.5, 0.05, 0.01])
    assert result["grid"] == [
        {"lambda": 0.0, "value": 0.0},
        {"lambda": 0.01, "value": 0.0},
        {"lambda": 0.05, "value": 1.0},
        {"lambda": 0.5, "value": 1.0},
        {"lambda": 1.0, "value": 1.0},
    ]
    assert result["best_lambda"] == 0.05 and result["best_value"] == 1.0
    plain = score_pools(BagOfWordsEncoder(), dataset, pools)
    with pytest.raises(ValueError, match="no BoundaryHead"):
        lambda_grid_search(plain, dataset.qrels)
    with pytest.raises(ValueError, match="must look like"):
        lambda_grid_search(scored, dataset.qrels, "recall")


def test_auc_and_cohens_d_against_scikit_learn_and_by_hand():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounding creates ties
    assert roc_auc(scores, labels) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores))
    assert cohens_d(np.array([2.0, 4.0]), np.array([0.0, 2.0])) == pytest.approx(2 / np.sqrt(2))
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_auc(scores, np.ones_like(labels))


def test_boundary_diagnostic_on_pool_pairs(dataset):
    pools = {"jd-py": ["cv1", "cv2", "cv3", "cv4"], "jd-nurse": ["cv4", "cv5", "cv2"]}
    scored = score_pools(BagOfWordsEncoder(boundary=True), dataset, pools)
    boundary, cosine, mismatch = pool_pairs(scored, dataset.qrels)
    # Queries in id order: jd-nurse (cv4 relevant), then jd-py (cv1 relevant).
    assert mismatch.tolist() == [False, True, True, False, True, True, True]
    report = boundary_diagnostic(boundary, mismatch, cosine)
    assert report["pairs"] == 7 and report["mismatched"] == 5
    assert boundary.argmax() == 4 and mismatch[4]  # (jd-py, junior cv2) is the flagged pair
    assert report["auc"] == pytest.approx(roc_auc(boundary, mismatch)) and "cosine_auc" in report
    perfect = boundary_diagnostic(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0]))
    assert perfect["auc"] == 1.0 and perfect["cohens_d"] == pytest.approx(0.7 / np.sqrt(0.005))


class TwoWordEncoder(BagOfWordsEncoder):
    """Reads the first two words of a text, as a model reads its first tokens; windows of two words."""

    def encode(self, texts, kind, batch_size=32, show_progress=False):
        return super().encode([" ".join(t.split()[:2]) for t in texts], kind, batch_size, show_progress)

    def windows(self, texts, kind):
        return [[" ".join(t.split()[i : i + 2]) for i in range(0, max(len(t.split()), 1), 2)] for t in texts]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_scores_of_many_documents_at_once_equal_each_documents_own(scheme):
    rng = np.random.default_rng(0)
    counts = [1, 3, 2, 5, 1]
    starts = np.cumsum([0, *counts[:-1]])
    scores = rng.uniform(-1, 1, size=(4, sum(counts)))
    expected = [
        [
            aggregate(row[start : start + count], scheme, 0.7)
            for start, count in zip(starts, counts, strict=True)
        ]
        for row in scores
    ]
    np.testing.assert_allclose(document_scores(scores, starts, scheme, 0.7), expected)


def test_windowed_rows_read_the_whole_cv_and_first_reproduces_truncation():
    # The answer to the question sits in cv-long's second window, which truncation never reads; what
    # truncation reads of cv-other half answers it.
    corpus = {"cv-other": "python chef", "cv-long": "java senior python python", "cv-nurse": "nurse"}
    data = IRDataset.from_dicts({"q": "python"}, corpus, {"q": {"cv-long": 1}})
    questions = Benchmark("questions", data, "global", {"recall": [1]}, query_kind="query", doc_kind="cv")
    jds = Benchmark("jd-jd", data, "global", {"recall": [1]}, query_kind="jd", doc_kind="jd")
    rows = {
        row.model: row.metrics["recall@1"] for row in evaluate(TwoWordEncoder(), questions, windows="max")
    }
    assert rows == {"bow": 0.0, "bow [windows max]": 1.0}
    first = evaluate(TwoWordEncoder(), questions, windows="first")
    assert first[0].per_query == first[1].per_query  # window 0 is what truncation reads
    assert [row.model for row in evaluate(TwoWordEncoder(), jds, windows="max")] == ["bow"]
    with pytest.raises(ValueError, match="unknown window scoring 'median'"):
        evaluate(TwoWordEncoder(), questions, windows="median")
    results, _, _ = run_models(["bow"], [questions], lambda spec: TwoWordEncoder(), windows="max")
    assert [r.model for r in results] == ["bow", "bow [windows max]"]
