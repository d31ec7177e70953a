"""Unit tests of CRE's three components (CNN projection, RT, BoundaryHead) and candidate feedback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel

from cre.modeling_cre import BoundaryHead, CNNProjection, candidate_feedback, final_score, memory_vector

TEXTS = [
    "Senior data engineer : python , spark and airflow . owns the platform pipeline",
    "Nurse",
    "Junior accountant with excel ; ledger and audit for the company in london , 2 years of experience",
    "Lead product designer - figma - roadmap",
]
KINDS = ["encoder", "decoder"]
PLACEMENTS = ["prefix", "suffix"]


# ---------------------------------------------------------------- CNN projection


@pytest.mark.parametrize("kind", KINDS)
def test_cnn_projection_is_the_identity_at_initialisation(tiny_cre, kind):
    plain = tiny_cre(kind).encode(TEXTS)
    with_cnn = tiny_cre(kind, cnn={"enabled": True, "kernel_sizes": [1, 3], "channels": 8})
    assert with_cnn.cnn is not None
    np.testing.assert_allclose(with_cnn.encode(TEXTS), plain, atol=1e-6)


def test_make_identity_zeroes_the_fusion_so_the_pooled_vector_passes_unchanged():
    cnn = CNNProjection(8, [1, 3], 4)
    states, mask, pooled = torch.randn(2, 5, 8), torch.ones(2, 5), torch.randn(2, 8)
    assert not cnn.is_identity  # torch's own init: not zero
    assert not torch.allclose(cnn(states, mask, pooled), pooled)
    assert cnn.make_identity() is cnn and cnn.is_identity
    torch.testing.assert_close(cnn(states, mask, pooled), pooled)
    with torch.no_grad():
        cnn.fusion.bias[0] = 1e-3
    assert not cnn.is_identity


def test_cnn_projection_trains_jointly_and_is_saved(tiny_cre, tmp_path):
    model = tiny_cre("encoder", cnn={"enabled": True, "channels": 8}).train()
    batch = model.tokenize(TEXTS[:2], kind="jd")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(2):  # the first step moves the zero fusion; the second reaches the convolutions
        embeddings = model(**batch).sentence_embedding
        loss = -torch.cosine_similarity(embeddings[0], embeddings[1], dim=0)
        optimizer.zero_grad()
        loss.backward()
        assert model.cnn.fusion.weight.grad.abs().sum() > 0
        optimizer.step()
    assert model.cnn.convs[0].weight.grad.abs().sum() > 0
    assert model.backbone.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    model.eval().save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
    assert loaded.cnn.fusion.weight.abs().sum() > 0  # trained weights, not re-initialised
    np.testing.assert_allclose(loaded.encode(TEXTS), model.encode(TEXTS), atol=1e-5)


# ---------------------------------------------------------------- RT


def test_memory_vector_is_attention_pooling_rescaled():
    states = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    mask = torch.tensor([[1, 1, 0]])
    query = torch.tensor([[100.0, 0.0]])  # attends (almost) only to the first token
    memory = memory_vector(states, mask, query, scale=torch.tensor([3.0]))
    torch.testing.assert_close(memory, torch.tensor([[3.0, 0.0]]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_rt_zero_iterations_is_plain_encode(tiny_cre, kind):
    model = tiny_cre(kind)
    np.testing.assert_array_equal(model.encode(TEXTS, rt_iterations=0), model.encode(TEXTS))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_rt_changes_embeddings_deterministically(tiny_cre, kind, placement):
    model = tiny_cre(kind, rt={"placement": placement})
    plain = model.encode(TEXTS)
    refined = model.encode(TEXTS, rt_iterations=2)
    assert np.abs(refined - plain).max() > 1e-4
    np.testing.assert_array_equal(model.encode(TEXTS, rt_iterations=2), refined)
    assert not np.allclose(model.encode(TEXTS, rt_iterations=1), refined, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_rt_batch_equals_one_by_one_for_both_padding_sides(tiny_cre, kind, placement, padding_side):
    model = tiny_cre(kind, rt={"iterations": 2, "placement": placement})
    model.tokenizer.padding_side = padding_side
    batched = model.encode(TEXTS, batch_size=len(TEXTS))
    one_by_one = np.stack([model.encode(text) for text in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


@pytest.mark.parametrize("iterations", [1, 3])
def test_rt_kv_cache_path_equals_full_re_encode(tiny_cre, iterations):
    model = tiny_cre("decoder", rt={"placement": "suffix"})
    batch = model.tokenize(TEXTS, kind="jd")
    with torch.no_grad():
        cached = model(**batch, rt_iterations=iterations, use_cache=True).sentence_embedding
        full = model(**batch, rt_iterations=iterations, use_cache=False).sentence_embedding
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)


def test_rt_settings_are_saved_with_the_checkpoint(tiny_cre, tmp_path):
    model = tiny_cre("encoder", rt={"iterations": 2, "placement": "prefix"})
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
    assert loaded.config.rt == {"iterations": 2, "placement": "prefix"}
    np.testing.assert_allclose(loaded.encode(TEXTS), model.encode(TEXTS, rt_iterations=2), atol=1e-5)


# ---------------------------------------------------------------- BoundaryHead


def test_boundary_head_reads_the_four_pair_features():
    head = BoundaryHead(dim=3, hidden_size=5)
    assert head.mlp[0].in_features == 12 and head.mlp[-1].out_features == 1
    query, candidates = torch.randn(3), torch.randn(4, 3)
    logits = head.eval()(query, candidates)
    assert logits.shape == (4,)
    torch.testing.assert_close(logits[2], head(query, candidates[2]))


def trained_head_model(tiny_cre, weight: float = 0.5):
    model = tiny_cre("encoder", boundary={"enabled": True, "weight": weight, "trained": True})
    torch.manual_seed(1)
    for parameter in model.boundary_head.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    return model


def test_rerank_orders_by_cosine_minus_weighted_boundary(tiny_cre):
    model = trained_head_model(tiny_cre, weight=0.5)
    results = model.rerank(TEXTS[0], TEXTS[1:])
    assert sorted(r["corpus_id"] for r in results) == [0, 1, 2]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    for r in results:
        assert 0.0 <= r["boundary"] <= 1.0
        assert r["score"] == pytest.approx(r["cosine"] - 0.5 * r["boundary"], abs=1e-6)
    query = model.encode(TEXTS[0], kind="jd")
    cosines = model.encode(TEXTS[1:], kind="cv") @ query
    for r in results:
        assert r["cosine"] == pytest.approx(float(cosines[r["corpus_id"]]), abs=1e-5)
    heavier = model.rerank(TEXTS[0], TEXTS[1:], boundary_weight=2.0)
    assert [r["score"] for r in heavier] == pytest.approx(
        sorted((r["cosine"] - 2.0 * r["boundary"] for r in results), reverse=True), abs=1e-6
    )


def test_rerank_is_deterministic_on_a_model_in_train_mode(tiny_cre):
    model = trained_head_model(tiny_cre).train()
    first, second = model.rerank(TEXTS[0], TEXTS[1:]), model.rerank(TEXTS[0], TEXTS[1:])
    assert first == second
    assert model.boundary_head.training


def test_rerank_accepts_precomputed_embeddings_and_top_k(tiny_cre):
    model = trained_head_model(tiny_cre)
    from_text = model.rerank(TEXTS[0], TEXTS[1:], top_k=2)
    query, candidates = model.encode(TEXTS[0], kind="jd"), model.encode(TEXTS[1:], kind="cv")
    from_vectors = model.rerank(query, candidates, top_k=2)
    assert len(from_vectors) == 2
    assert [r["corpus_id"] for r in from_vectors] == [r["corpus_id"] for r in from_text]
    assert [r["score"] for r in from_vectors] == pytest.approx([r["score"] for r in from_text], abs=1e-5)


def test_rerank_without_trained_head_says_so_and_uses_cosine(tiny_cre):
    model = tiny_cre("encoder", boundary={"enabled": True})  # head present but never trained
    assert not model.has_boundary_head
    with pytest.warns(UserWarning, match="no trained BoundaryHead"):
        results = model.rerank(TEXTS[0], TEXTS[1:])
    assert all(r["boundary"] is None and r["score"] == r["cosine"] for r in results)


def test_rerank_edge_cases_and_bad_input(tiny_cre):
    model = trained_head_model(tiny_cre)
    assert model.rerank(TEXTS[0], []) == []
    with pytest.raises(ValueError, match=r"jd embeddings must have shape \(32,\)"):
        model.rerank(np.zeros(31, dtype=np.float32), TEXTS[1:])
    with pytest.raises(ValueError, match=r"cvs embeddings must have shape \(n, 32\)"):
        model.rerank(TEXTS[0], np.zeros((3, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="jd must be text or an embedding"):
        model.rerank(None, TEXTS[1:])
    with pytest.raises(ValueError, match=r"texts\[1\] is int"):
        model.rerank(TEXTS[0], ["nurse", 3])


# ---------------------------------------------------------------- candidate feedback


def test_candidate_feedback_ranks_like_the_rocchio_query():
    generator = torch.Generator().manual_seed(0)
    candidates = torch.nn.functional.normalize(torch.randn(12, 8, generator=generator), dim=-1)
    query = torch.nn.functional.normalize(torch.randn(8, generator=generator), dim=-1)
    cosine = candidates @ query
    feedback = candidate_feedback(candidates, cosine, top_k=3)
    best = torch.argsort(cosine, descending=True)[:3]
    expected = torch.stack([torch.stack([c @ candidates[j] for j in best]).mean() for c in candidates])
    torch.testing.assert_close(feedback, expected)
    # cos + w·feedback is the score of Rocchio's moved query q + w·mean(best k).
    rocchio = candidates @ (query + 0.7 * candidates[best].mean(dim=0))
    torch.testing.assert_close(cosine + 0.7 * feedback, rocchio)
    assert torch.equal(candidate_feedback(candidates, cosine, top_k=0), torch.zeros(12))
    assert torch.equal(candidate_feedback(candidates[:3], cosine[:3], top_k=3), torch.zeros(3))


def test_final_score_adds_feedback_and_subtracts_boundary_for_torch_and_numpy():
    cosine, feedback, boundary = [0.8, 0.6, 0.1], [0.2, 0.9, 0.0], [1.0, 0.0, 0.5]
    expected = [0.8 + 0.5 * 0.2 - 0.3 * 1.0, 0.6 + 0.5 * 0.9, 0.1 - 0.3 * 0.5]
    as_torch = final_score(torch.tensor(cosine), torch.tensor(feedback), 0.5, torch.tensor(boundary), 0.3)
    torch.testing.assert_close(as_torch, torch.tensor(expected))
    as_numpy = final_score(np.array(cosine), np.array(feedback), 0.5, np.array(boundary), 0.3)
    np.testing.assert_allclose(as_numpy, expected)
    # A term without scores, or with weight 0, is left out: the cosine itself.
    assert final_score(torch.tensor(cosine), None, 0.5, torch.tensor(boundary), 0.0).tolist() == (
        torch.tensor(cosine).tolist()
    )


def test_rerank_adds_weighted_feedback_from_the_config_or_the_call(tiny_cre):
    model = trained_head_model(tiny_cre, weight=0.5)
    assert all(r["feedback"] is None for r in model.rerank(TEXTS[0], TEXTS[1:]))  # off by default
    model.config.feedback = {"top_k": 1, "weight": 2.0}
    results = model.rerank(TEXTS[0], TEXTS[1:])
    candidates = torch.as_tensor(model.encode(TEXTS[1:], kind="cv"))
    best = max(results, key=lambda r: r["cosine"])["corpus_id"]
    for r in results:
        assert r["feedback"] == pytest.approx(float(candidates[r["corpus_id"]] @ candidates[best]), abs=1e-5)
        assert r["score"] == pytest.approx(r["cosine"] + 2.0 * r["feedback"] - 0.5 * r["boundary"], abs=1e-5)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert all(r["feedback"] is None for r in model.rerank(TEXTS[0], TEXTS[1:], feedback_top_k=0))
    with pytest.raises(ValueError, match="feedback top_k must be an integer >= 0"):
        model.rerank(TEXTS[0], TEXTS[1:], feedback_top_k=-2)
    with pytest.raises(ValueError, match="feedback weight must be a number >= 0"):
        model.rerank(TEXTS[0], TEXTS[1:], feedback_weight=-1.0)


def test_boundary_head_is_saved_with_its_trained_flag(tiny_cre, tmp_path):
    model = trained_head_model(tiny_cre)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
    assert loaded.has_boundary_head
    expected, got = model.rerank(TEXTS[0], TEXTS[1:]), loaded.rerank(TEXTS[0], TEXTS[1:])
    assert [r["corpus_id"] for r in got] == [r["corpus_id"] for r in expected]
    assert [r["boundary"] for r in got] == pytest.approx([r["boundary"] for r in expected], abs=1e-6)
