"""Dataset and pool loaders: the llama-index and TREC formats, and the errors bad input gets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval.ir_data import DatasetFormatError, IRDataset, load_llama_index_json, load_trec, read_trec_qrels
from eval.retrieval import bm25_pools, exact_top_k, rank_by_scores, read_pool_file

QUERIES = {"q1": "python developer", "q2": "registered nurse", "q3": "astronaut"}
CORPUS = {"d1": "python django developer", "d2": "icu nurse", "d3": "java developer", "d4": "chef"}


def write_llama_index(path, relevant_docs, queries=QUERIES, corpus=CORPUS):
    path.write_text(json.dumps({"queries": queries, "corpus": corpus, "relevant_docs": relevant_docs}))
    return path


def test_llama_index_json_loads_and_counts_queries_without_relevant_documents(tmp_path):
    path = write_llama_index(tmp_path / "set.json", {"q1": ["d1", "d3"], "q2": ["d2"]})
    dataset = load_llama_index_json(path)
    assert dataset.qrels == {"q1": {"d1": 1.0, "d3": 1.0}, "q2": {"d2": 1.0}}
    assert dataset.skipped == {"no relevant documents": ["q3"]}
    assert [qid for qid, _ in dataset.judged_queries()] == ["q1", "q2"]


@pytest.mark.parametrize(
    ("relevant_docs", "message"),
    [
        ({"q9": ["d1"]}, "unknown query ids: 'q9'"),
        ({"q1": ["d1", "d8", "d7"]}, "2 unknown document ids: 'd7', 'd8'"),
        ({"q1": ["d1", "d1"]}, "lists a document id twice"),
        ({"q1": "d1"}, "must be a list"),
    ],
)
def test_llama_index_json_errors_name_the_problem(tmp_path, relevant_docs, message):
    path = write_llama_index(tmp_path / "bad.json", relevant_docs)
    with pytest.raises(DatasetFormatError, match=message):
        load_llama_index_json(path)


def test_llama_index_json_duplicate_ids_and_missing_fields(tmp_path):
    duplicate = tmp_path / "dup.json"
    duplicate.write_text('{"queries": {"q1": "a", "q1": "b"}, "corpus": {}, "relevant_docs": {}}')
    with pytest.raises(DatasetFormatError, match="duplicate id 'q1'"):
        load_llama_index_json(duplicate)
    missing = tmp_path / "missing.json"
    missing.write_text('{"queries": {}}')
    with pytest.raises(
        DatasetFormatError, match=r"missing top-level field\(s\) \['corpus', 'relevant_docs'\]"
    ):
        load_llama_index_json(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"queries": \n{')
    with pytest.raises(DatasetFormatError, match=r"broken.json:2: invalid JSON"):
        load_llama_index_json(broken)


def write_trec(tmp_path, qrels_text, corpus_lines=None):
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    corpus = tmp_path / "corpus.jsonl"
    lines = corpus_lines or [json.dumps({"_id": d, "title": "T", "text": t}) for d, t in CORPUS.items()]
    corpus.write_text("\n".join(lines) + "\n")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text(qrels_text)
    return queries, corpus, qrels


def test_trec_dataset_with_graded_judgments(tmp_path):
    dataset = load_trec(*write_trec(tmp_path, "# comment\nq1 0 d1 2\nq1 0 d3 1\nq2 0 d2 1\nq2 0 d4 0\n"))
    assert dataset.qrels == {"q1": {"d1": 2.0, "d3": 1.0}, "q2": {"d2": 1.0}}
    assert dataset.corpus["d1"] == "T\npython django developer"
    assert dataset.skipped == {"no relevant documents": ["q3"]}


@pytest.mark.parametrize(
    ("qrels_text", "message"),
    [
        ("q1 0 d1\n", r"qrels.txt:1: expected 'qid iter docid gain'"),
        ("q1 0 d1 1\nq1 0 d1 2\n", r"qrels.txt:2: query 'q1' judges document 'd1' twice"),
        ("q1 0 d1 high\n", r"qrels.txt:1: gain 'high' is not a number"),
        ("q1 0 d5 1\n", r"unknown document ids: 'd5'"),
    ],
)
def test_trec_qrels_errors_name_file_and_line(tmp_path, qrels_text, message):
    with pytest.raises(DatasetFormatError, match=message):
        load_trec(*write_trec(tmp_path, qrels_text))


def test_trec_corpus_duplicate_ids_name_both_lines(tmp_path):
    lines = [json.dumps({"_id": "d1", "text": "a"}), json.dumps({"_id": "d2", "text": "b"})]
    lines.append(json.dumps({"_id": "d1", "text": "c"}))
    with pytest.raises(
        DatasetFormatError, match=r"corpus.jsonl:3: duplicate document id 'd1' \(first seen on line 1\)"
    ):
        load_trec(*write_trec(tmp_path, "q1 0 d1 1\n", lines))


def test_read_trec_qrels_skips_blank_lines(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("\nq 0 a 1\n\n")
    assert read_trec_qrels(path) == {"q": {"a": 1.0}}


def test_exact_top_k_is_chunk_independent_and_breaks_ties_by_index():
    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(57, 8)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    corpus[10] = corpus[3]  # an exact tie
    queries = np.concatenate([corpus[3:4], rng.normal(size=(4, 8)).astype(np.float32)])
    whole_idx, whole_scores = exact_top_k(queries, corpus, k=9, chunk_size=1000)
    chunked_idx, chunked_scores = exact_top_k(queries, corpus, k=9, chunk_size=7)
    np.testing.assert_array_equal(whole_idx, chunked_idx)
    # BLAS may sum a chunk's dot products in another order than the whole matrix's: float32 rounding.
    np.testing.assert_allclose(whole_scores, chunked_scores, rtol=1e-6)
    assert whole_idx[0, :2].tolist() == [3, 10]
    brute = np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :9]
    np.testing.assert_array_equal(whole_idx[1:], brute[1:])


def test_exact_top_k_keeps_the_lower_indices_of_a_tie_at_the_cut_off():
    corpus = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.5, 0.0]], np.float32)
    queries = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    # Three documents tie for the best score of the first query; only two fit.
    for query_chunk_size in (1, 2):
        indices, scores = exact_top_k(queries, corpus, k=2, query_chunk_size=query_chunk_size, chunk_size=4)
        assert indices.tolist() == [[1, 3], [0, 2]]
        assert scores.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    indices, _ = exact_top_k(queries, corpus, k=4)
    assert indices.tolist() == [[1, 3, 4, 5], [0, 2, 1, 3]]


def test_rank_by_scores_breaks_ties_by_id():
    assert rank_by_scores(["b", "a", "c"], np.array([1.0, 1.0, 2.0])) == ["c", "a", "b"]


def test_bm25_pools_rank_term_matches_first_and_keep_skill_tokens():
    corpus = {"d1": "c++ embedded engineer", "d2": "python developer", "d3": "chef cook", "d4": "c developer"}
    # "c++" stays one token, so "c developer" (d4) gets no credit and zero-score ties go by id.
    assert bm25_pools({"q": "c++ engineer"}, corpus, pool_size=2) == {"q": ["d1", "d2"]}
    assert bm25_pools({"q": "python"}, corpus, pool_size=10)["q"][0] == "d2"
    assert len(bm25_pools({"q": "python"}, corpus, pool_size=10)["q"]) == 4


def test_pool_files_json_and_trec_run(tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d3 2 0.5 bm25\nq1 Q0 d1 1 0.9 bm25\nq2 Q0 d2 1 0.8 bm25\n")
    assert read_pool_file(run, QUERIES, CORPUS) == {"q1": ["d1", "d3"], "q2": ["d2"]}
    pools = tmp_path / "pools.json"
    pools.write_text(json.dumps({"q1": ["d2", "d1"]}))
    assert read_pool_file(pools, QUERIES, CORPUS) == {"q1": ["d2", "d1"]}


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"q1": ["d1", "d1"]}', ".json", "lists a document twice"),
        ('{"qx": ["d1"]}', ".json", "unknown query id 'qx'"),
        ('{"q1": ["d1", "dz"]}', ".json", r"unknown document ids \['dz'\]"),
        ('["d1"]', ".json", "expected a JSON object"),
        ("q1 Q0 d1 first 0.1 x\n", ".trec", r"run.trec:1: expected 'qid Q0 docid rank score tag'"),
    ],
)
def test_bad_pool_files_are_rejected_by_name(tmp_path, content, suffix, message):
    path = tmp_path / f"run{suffix}"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=message):
        read_pool_file(path, QUERIES, CORPUS)


def test_dataset_drops_zero_gain_judgments():
    dataset = IRDataset.from_dicts({"q": "x"}, {"a": "1", "b": "2"}, {"q": {"a": 0, "b": 2}})
    assert dataset.qrels == {"q": {"b": 2.0}}


def test_read_texts_keeps_line_separators_inside_a_json_string(tmp_path):
    from eval.ir_data import read_texts

    path = tmp_path / "corpus.jsonl"
    body = "Nurse\u2028ICU"
    path.write_text(json.dumps({"_id": "d1", "text": body}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_texts(path) == {"d1": body}
