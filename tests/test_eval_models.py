"""Encoders and the command line, with tiny randomly initialised models built here (and the real
all-MiniLM-L6-v2 in an integration test)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.backbones import is_cre_checkpoint
from eval.__main__ import main
from eval.cache import EmbeddingCache, default_embedding_cache_dir
from eval.models import CREEncoder, SentenceTransformerEncoder, fingerprint, load_encoder

WORDS = "python java developer senior junior nurse chef registered cook engineer".split()


def _tiny_bert(root, seed=0):
    import torch
    from transformers import BertConfig, BertTokenizerFast

    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    return config, BertTokenizerFast(vocab_file=str(root / "vocab.txt"))


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    """A random 1-layer BERT saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertModel

    root = tmp_path_factory.mktemp("tiny-st")
    config, tokenizer = _tiny_bert(root)
    BertModel(config).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    model = SentenceTransformer(modules=[Transformer(str(root / "bert")), Pooling(16, "mean"), Normalize()])
    model.save(str(root / "st"))
    return root / "st"


@pytest.fixture(scope="module")
def tiny_cre(tmp_path_factory):
    """A random CRE checkpoint with a (random, flagged trained) BoundaryHead."""
    from cre.configuration_cre import CREConfig
    from cre.modeling_cre import CREModel

    root = tmp_path_factory.mktemp("tiny-cre")
    bert, tokenizer = _tiny_bert(root, seed=1)
    config = CREConfig(
        text_config=bert.to_dict(),
        boundary={"enabled": True, "trained": True, "hidden_size": 8, "weight": 0.25},
        instructions={"jd": "senior ", "cv": ""},
    )
    model = CREModel(config)
    model.tokenizer = tokenizer
    model.save_pretrained(root / "cre")
    return root / "cre"


def test_sentence_transformer_folder_loads_normalised_float32_and_caches(tiny_st, tmp_path):
    encoder = load_encoder(str(tiny_st), max_length=16, cache_dir=tmp_path / "cache")
    assert isinstance(encoder, SentenceTransformerEncoder) and not encoder.has_boundary_head
    assert encoder.model.max_seq_length == 16
    texts = ["python developer", "registered nurse", "python developer"]
    vectors = encoder.encode(texts, kind="cv")
    assert vectors.dtype == np.float32 and vectors.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert encoder.texts_encoded == 2  # the duplicate was encoded once
    direct = encoder.model.encode(texts[:2], normalize_embeddings=True)
    np.testing.assert_allclose(vectors[:2], direct, atol=1e-6)

    reloaded = load_encoder(str(tiny_st), max_length=16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(reloaded.encode(texts, kind="cv"), vectors)
    assert reloaded.texts_encoded == 0  # everything came from the disk cache
    reloaded.encode(["chef"], kind="cv")
    assert reloaded.texts_encoded == 1
    with pytest.raises(ValueError, match="kind must be one of"):
        encoder.encode(["x"], kind="resume")


def test_fingerprint_changes_with_max_length_and_weights(tiny_st):
    base = fingerprint("m", str(tiny_st), 256)
    assert base == fingerprint("m", str(tiny_st), 256)
    assert base != fingerprint("m", str(tiny_st), 128)
    assert base != fingerprint("m", str(tiny_st), 256, extra="config")
    assert base.startswith("m-")


def test_cache_ignores_half_written_shards(tmp_path):
    cache = EmbeddingCache(tmp_path, "model")
    cache.fetch(["a"], "jd", lambda texts: np.ones((len(texts), 2), np.float32))
    (cache.folder / "shard-broken.keys").write_text("k")  # no matching .npy: an interrupted write
    fresh = EmbeddingCache(tmp_path, "model")
    calls = []
    result = fresh.fetch(
        ["a", "b"], "jd", lambda texts: calls.append(texts) or np.zeros((len(texts), 2), np.float32)
    )
    assert calls == [["b"]]
    np.testing.assert_array_equal(result, [[1, 1], [0, 0]])

    # Shards are written as they finish: an encoder that dies on the second shard keeps the first.
    def die_on_second_shard(texts, seen=[]):  # noqa: B006 - deliberate call counter
        seen.append(texts)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return np.full((len(texts), 2), 7, np.float32)

    with pytest.raises(KeyboardInterrupt):
        fresh.fetch(["c", "d", "e"], "jd", die_on_second_shard, shard_size=2)
    resumed = EmbeddingCache(tmp_path, "model")
    np.testing.assert_array_equal(resumed.fetch(["c", "d"], "jd", None), [[7, 7], [7, 7]])
    # The kind is part of the key: the same text as a CV is a different input for CRE.
    fresh.fetch(["a"], "cv", lambda texts: calls.append(texts) or np.zeros((1, 2), np.float32))
    assert calls[-1] == ["a"]


def test_cache_lives_under_cre_cache_and_the_cli_lists_and_clears_it(tiny_st, tmp_path, monkeypatch, capsys):
    from common.answer_cache import AnswerCache

    monkeypatch.delenv("CRE_EMBEDDING_CACHE", raising=False)
    monkeypatch.setenv("CRE_CACHE", str(tmp_path / "cre"))
    root, answers = tmp_path / "cre" / "embeddings", tmp_path / "cre" / "synth-answers"
    assert default_embedding_cache_dir() == root
    long, short = load_encoder(str(tiny_st), max_length=16), load_encoder(str(tiny_st), max_length=8)
    long.encode(["python developer", "registered nurse"], kind="cv")
    short.encode(["chef"], kind="jd")
    EmbeddingCache(root, "other-0123456789abcdef").fetch(
        ["cook"], "jd", lambda t: np.ones((1, 2), np.float32)
    )
    AnswerCache(answers).put(AnswerCache.key({"judge": 1}), "verdict")
    assert {folder.name for folder in root.iterdir()} == {
        long.fingerprint,
        short.fingerprint,
        "other-0123456789abcdef",
    }

    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"{root} holds 3 model folder(s), 4 vectors" in out and f"{answers} holds 1 LLM answers" in out
    with pytest.raises(SystemExit, match="no cached embeddings of mpnet under"):
        main(["cache", "clear", "--model", "mpnet"])
    assert main(["cache", "clear", "--model", str(tiny_st)]) == 0  # every version of that model
    assert "deleted 2 model folder(s), 3 vectors" in capsys.readouterr().out
    assert [folder.name for folder in root.iterdir()] == ["other-0123456789abcdef"] and len(
        AnswerCache(answers)
    ) == 1
    assert load_encoder(str(tiny_st), max_length=16).encode(["chef"], kind="cv").shape == (1, 16)
    assert main(["cache", "clear", "--answers"]) == 0
    assert not any(root.iterdir()) and not answers.exists()
    monkeypatch.setenv("CRE_EMBEDDING_CACHE", str(tmp_path / "override"))
    assert default_embedding_cache_dir() == tmp_path / "override"


def test_cre_checkpoint_uses_kinds_and_boundary_head(tiny_cre, tmp_path):
    assert is_cre_checkpoint(tiny_cre)
    encoder = load_encoder(str(tiny_cre), max_length=32, cache_dir=tmp_path / "cache")
    assert isinstance(encoder, CREEncoder) and encoder.has_boundary_head
    as_jd = encoder.encode(["python developer"], kind="jd")
    as_cv = encoder.encode(["python developer"], kind="cv")
    assert not np.allclose(as_jd, as_cv)  # the jd instruction changes the input
    np.testing.assert_allclose(as_cv, encoder.model.encode(["python developer"], kind="cv"), atol=1e-6)
    cvs = encoder.encode(["java developer", "nurse", "chef"], kind="cv")
    boundary = encoder.boundary_scores(as_jd[0], cvs)
    hits = encoder.model.rerank(as_jd[0], cvs, boundary_weight=0.0)
    np.testing.assert_allclose(
        boundary, [h["boundary"] for h in sorted(hits, key=lambda h: h["corpus_id"])], atol=1e-6
    )


def test_non_cre_and_missing_folders(tiny_st, tmp_path):
    assert not is_cre_checkpoint(tiny_st)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json: invalid JSON"):
        is_cre_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_encoder(str(tmp_path / "missing" / "model"))


def write_ir_json(path):
    queries = {"q-py": "senior python developer", "q-nurse": "registered nurse", "q-none": "astronaut"}
    corpus = {
        "d1": "python developer",
        "d2": "java developer",
        "d3": "registered nurse",
        "d4": "chef cook",
        "d5": "junior python engineer",
    }
    relevant = {"q-py": ["d1", "d5"], "q-nurse": ["d3"]}
    path.write_text(json.dumps({"queries": queries, "corpus": corpus, "relevant_docs": relevant}))
    return path


def test_cli_compare_writes_json_markdown_and_plots(tiny_st, tiny_cre, tmp_path, monkeypatch):
    monkeypatch.setenv("CRE_DATA_DIR", str(tmp_path / "no-data"))
    dataset = write_ir_json(tmp_path / "toy.json")
    out = tmp_path / "out"
    argv = [
        "compare",
        "--models",
        str(tiny_st),
        str(tiny_cre),
        "--benchmarks",
        "onet",
        "--ir-json",
        str(dataset),
    ]
    argv += [
        "--protocol",
        "local",
        "--pool-size",
        "4",
        "--out",
        str(out),
        "--stem",
        "cmp",
        "--max-length",
        "32",
    ]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--bootstrap-samples", "100", "--boundary-weight", "0.5"]
    assert main([*argv, "--feedback", "1", "0.5"]) == 0
    report = json.loads((out / "cmp.json").read_text())
    assert report["failures"]["onet"].startswith("skipped: development data folder")
    assert report["benchmarks"]["toy"]["skipped"] == {"no relevant documents": 1}
    assert report["settings"]["feedback"] == [1, 0.5]
    rows = set(report["models"])
    assert rows == {
        "bm25 (pool order)",
        str(tiny_st),
        f"{tiny_st} [cos+0.5·feedback@1]",
        str(tiny_cre),
        f"{tiny_cre} [cos+0.5·feedback@1]",
        f"{tiny_cre} [cos−0.5·boundary]",
        f"{tiny_cre} [cos−0.5·boundary+0.5·feedback@1]",
    }
    assert set(report["models"][str(tiny_st)]["toy"]["metrics"]) >= {"recall@10", "precision@70", "ndcg@10"}
    assert report["settings"]["reference"] == str(tiny_st)
    assert {c["model"] for c in report["comparisons"]} == rows - {str(tiny_st)}
    assert (out / "cmp_recall_toy.png").exists() and "### toy (local pool" in (out / "cmp.md").read_text()
    with pytest.raises(SystemExit, match="--feedback K W: feedback top_k must be an integer >= 0"):
        main([*argv, "--feedback", "-1", "0.5"])
    with pytest.raises(SystemExit, match="--feedback K W: invalid literal"):
        main([*argv, "--feedback", "three", "0.5"])


def test_cli_boundary_tools_and_errors(tiny_st, tiny_cre, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CRE_DATA_DIR", str(tmp_path / "no-data"))
    dataset = write_ir_json(tmp_path / "toy.json")
    common = ["--ir-json", str(dataset), "--pool-size", "5", "--cache-dir", str(tmp_path / "cache")]
    out = tmp_path / "lambda.json"
    assert main(["lambda", "--model", str(tiny_cre), *common, "--grid", "0", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["lambda"] for row in result["grid"]] == [0.0, 1.0] and result["metric"] == "recall@20"
    assert main(["boundary", "--model", str(tiny_cre), *common, "--out", str(out)]) == 0
    diagnostic = json.loads(out.read_text())
    # Pools hold all 5 documents for each of the 2 judged queries; 3 of the 10 pairs are relevant.
    assert diagnostic["pairs"] == 10 and diagnostic["mismatched"] == 7
    assert 0 <= diagnostic["auc"] <= 1 and "cosine_cohens_d" in diagnostic
    with pytest.raises(SystemExit, match="no trained BoundaryHead"):
        main(["boundary", "--model", str(tiny_st), *common])
    with pytest.raises(SystemExit, match="skipped: development data folder"):
        main(["lambda", "--model", str(tiny_cre), "--benchmark", "resumes"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"queries": {}, "corpus": {}, "relevant_docs": {"q": ["d"]}}))
    assert main(["compare", "--models", str(tiny_st), "--benchmarks", "--ir-json", str(bad)]) == 2
    assert "unknown query ids: 'q'" in capsys.readouterr().err


@pytest.mark.integration
def test_minilm_alias_ranks_the_matching_cv_first(tmp_path):
    encoder = load_encoder("minilm", cache_dir=tmp_path)
    jd = encoder.encode(["Registered nurse for the intensive care unit"], kind="jd")
    cvs = encoder.encode(["ICU nurse, 6 years of critical care", "Java backend developer"], kind="cv")
    assert cvs.shape == (2, 384)
    scores = cvs @ jd[0]
    assert scores[0] > scores[1] + 0.2


def save_with_a_jd_cv_adapter(source, folder):
    """The checkpoint at ``source`` with a random jd-cv adapter, saved to ``folder``; returns the model."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(source, trust_remote_code=True)
    torch.manual_seed(0)
    value = "encoder.layer.0.attention.self.value"
    model.add_task_adapter("jd-cv", {value: (torch.randn(2, 16), torch.randn(16, 2))})
    model.save_pretrained(folder)
    return model


def test_task_adapters_get_their_own_vectors_and_cache(tiny_cre, tmp_path):
    model = save_with_a_jd_cv_adapter(tiny_cre, tmp_path / "tasks")
    plain = load_encoder(str(tiny_cre), max_length=32, cache_dir=tmp_path / "cache")
    assert plain.for_task("jd-jd") is plain  # no task weights: one cache for every task

    encoder = load_encoder(str(tmp_path / "tasks"), max_length=32, cache_dir=tmp_path / "cache")
    views = {task: encoder.for_task(task) for task in ("jd-jd", "jd-cv")}
    assert len({view.fingerprint for view in views.values()}) == 2
    texts = ["senior python developer", "registered nurse"]
    for task, view in views.items():
        expected = model.encode(texts, kind="jd", task=task, max_length=32)
        np.testing.assert_allclose(view.encode(texts, "jd"), expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(encoder.for_task(task).encode(texts, "jd"), expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(views["jd-jd"].encode(texts, "jd"), views["jd-cv"].encode(texts, "jd"), atol=1e-3)


def test_tasks_without_an_adapter_share_the_base_weights_and_one_cache(tiny_cre, tmp_path):
    model = save_with_a_jd_cv_adapter(tiny_cre, tmp_path / "tasks")
    # A checkpoint whose code predates the title task: it would reject the name.
    config = tmp_path / "tasks" / "configuration_cre.py"
    config.write_text(config.read_text().replace(', "title"]', "]"))
    encoder = load_encoder(str(tmp_path / "tasks"), max_length=32, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="unknown task 'title'"):
        encoder.model.encode(["x"], task="title")
    title, jd_jd = encoder.for_task("title"), encoder.for_task("jd-jd")
    assert title.fingerprint == jd_jd.fingerprint != encoder.for_task("jd-cv").fingerprint
    texts = ["sr. java dev", "icu nurse"]
    np.testing.assert_array_equal(title.encode(texts, "jd"), jd_jd.encode(texts, "jd"))
    base = model.encode(texts, kind="jd", task="jd-jd", max_length=32)
    np.testing.assert_allclose(title.encode(texts, "jd"), base, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fixture", ["tiny_st", "tiny_cre"])
def test_windows_start_with_what_truncation_reads_and_reach_the_end(fixture, request, tmp_path):
    encoder = load_encoder(str(request.getfixturevalue(fixture)), max_length=16, cache_dir=None)
    words = "python developer who cooks for the nurse team and writes java for chefs".split()
    long_text, short_text = " ".join(words * 3), "python developer"
    long_windows, short_windows = encoder.windows([long_text, short_text], kind="cv")
    assert short_windows == [short_text]
    assert len(long_windows) > 2 and long_text.endswith(long_windows[-1])
    assert all(window in long_text for window in long_windows)
    # Window 0 is exactly what the model reads of the whole text: the same vector.
    np.testing.assert_allclose(
        encoder.encode([long_windows[0]], kind="cv"), encoder.encode([long_text], kind="cv"), atol=1e-6
    )
    # Every window fits: encoding it whole or with a larger budget gives the same vector.
    wider = load_encoder(str(request.getfixturevalue(fixture)), max_length=64, cache_dir=None)
    np.testing.assert_allclose(
        encoder.encode(long_windows, kind="cv"), wider.encode(long_windows, kind="cv"), atol=1e-5
    )
