"""Ranking metrics: hand-computed cases, and agreement with independent implementations
(sentence-transformers' InformationRetrievalEvaluator for binary metrics, scikit-learn's ndcg_score
for graded NDCG) on random rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.metrics import (
    evaluate_rankings,
    hit_rate_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    per_query_scores,
    precision_at_k,
    recall_at_k,
)
from eval.stats import paired_bootstrap

RANKING = ["d1", "d2", "d3", "d4", "d5"]
JUDGED = {"d2": 3, "d4": 1, "d9": 2}  # d9 is relevant but never retrieved


def test_hand_computed_binary_metrics():
    assert recall_at_k(RANKING, JUDGED, 2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKING, JUDGED, 5) == pytest.approx(2 / 3)
    assert precision_at_k(RANKING, JUDGED, 4) == pytest.approx(2 / 4)
    assert hit_rate_at_k(RANKING, JUDGED, 1) == 0.0
    assert hit_rate_at_k(RANKING, JUDGED, 2) == 1.0
    assert mrr_at_k(RANKING, JUDGED, 1) == 0.0
    assert mrr_at_k(RANKING, JUDGED, 10) == pytest.approx(1 / 2)
    # AP@5: hits at ranks 2 and 4 -> (1/2 + 2/4) / min(5, 3)
    assert map_at_k(RANKING, JUDGED, 5) == pytest.approx((1 / 2 + 2 / 4) / 3)


def test_hand_computed_graded_ndcg():
    dcg = 3 / math.log2(3) + 1 / math.log2(5)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(RANKING, JUDGED, 5) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["d2", "d9", "d4"], JUDGED, 3) == pytest.approx(1.0)


def test_min_gain_makes_partial_relevance_non_relevant():
    assert recall_at_k(RANKING, JUDGED, 5, min_gain=2) == pytest.approx(1 / 2)
    assert precision_at_k(RANKING, JUDGED, 5, min_gain=3) == pytest.approx(1 / 5)


def test_undefined_metrics_raise():
    with pytest.raises(ValueError, match="without relevant"):
        recall_at_k(RANKING, {"d1": 0}, 3)
    with pytest.raises(ValueError, match="without positive gains"):
        ndcg_at_k(RANKING, {}, 3)


def test_per_query_scores_rejects_unjudged_queries_and_unknown_metrics():
    with pytest.raises(KeyError, match="no relevance judgments"):
        per_query_scores({"q1": ["a"], "q2": ["b"]}, {"q1": {"a": 1}}, {"recall": [1]})
    with pytest.raises(KeyError, match="unknown metrics"):
        per_query_scores({"q1": ["a"]}, {"q1": {"a": 1}}, {"accuracy": [1]})


def _random_run(seed: int, n_queries: int = 30, n_docs: int = 40):
    rng = np.random.default_rng(seed)
    doc_ids = [f"doc{i:03d}" for i in range(n_docs)]
    rankings, qrels, scored = {}, {}, {}
    for q in range(n_queries):
        qid = f"q{q:02d}"
        scores = rng.permutation(n_docs).astype(float)  # distinct scores: no tie-breaking ambiguity
        gains = rng.choice([0, 0, 0, 1, 2, 3], size=n_docs)
        gains[rng.integers(n_docs)] = rng.integers(1, 4)  # at least one relevant document
        rankings[qid] = [doc_ids[i] for i in np.argsort(-scores)]
        qrels[qid] = {doc_ids[i]: int(g) for i, g in enumerate(gains) if g > 0}
        scored[qid] = (scores, gains)
    return doc_ids, rankings, qrels, scored


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_metrics_match_sentence_transformers(seed):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    doc_ids, rankings, qrels, scored = _random_run(seed)
    ks = [1, 3, 10]
    reference = InformationRetrievalEvaluator(
        queries={q: q for q in rankings},
        corpus={d: d for d in doc_ids},
        relevant_docs={q: set(judged) for q, judged in qrels.items()},
        mrr_at_k=ks,
        ndcg_at_k=ks,
        accuracy_at_k=ks,
        precision_recall_at_k=ks,
        map_at_k=ks,
        write_csv=False,
    )
    results = [
        [{"corpus_id": d, "score": float(s)} for d, s in zip(doc_ids, scored[q][0], strict=True)]
        for q in reference.queries_ids
    ]
    expected = reference.compute_metrics(results)
    binary = {q: dict.fromkeys(judged, 1) for q, judged in qrels.items()}
    ours = evaluate_rankings(
        rankings, binary, {"recall": ks, "precision": ks, "hit_rate": ks, "mrr": ks, "map": ks, "ndcg": ks}
    )
    names = {"recall": "recall@k", "precision": "precision@k", "hit_rate": "accuracy@k", "mrr": "mrr@k"}
    names |= {"map": "map@k", "ndcg": "ndcg@k"}
    for ours_name, theirs_name in names.items():
        for k in ks:
            assert ours[f"{ours_name}@{k}"] == pytest.approx(expected[theirs_name][k]), (ours_name, k)


def test_graded_ndcg_matches_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    _, rankings, qrels, scored = _random_run(seed=3)
    for k in (5, 10, 40):
        ours = evaluate_rankings(rankings, qrels, {"ndcg": [k]})[f"ndcg@{k}"]
        gains = np.stack([scored[q][1] for q in sorted(rankings)])
        scores = np.stack([scored[q][0] for q in sorted(rankings)])
        assert ours == pytest.approx(sklearn_metrics.ndcg_score(gains, scores, k=k))


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    base = rng.uniform(size=200)
    better = paired_bootstrap(base + 0.1 + rng.normal(0, 0.05, 200), base, samples=2000)
    assert better["ci_low"] > 0 and better["p_value"] < 0.01
    assert better["mean_diff"] == pytest.approx(0.1, abs=0.02)
    same = paired_bootstrap(base + rng.normal(0, 0.05, 200), base, samples=2000)
    assert same["ci_low"] < 0 < same["ci_high"] and same["p_value"] > 0.05
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap(base, base[:-1])
