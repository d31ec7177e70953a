"""CRE-T1's ``<embtoken>`` pooling on the tiny random decoder: tokenizer, weights, padding, RT, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer, BertConfig

from cre.configuration_cre import EMBTOKEN, CREConfig
from tests.conftest import assert_complete_checkpoint
from tests.test_model import TEXTS
from train.init_model import main as init_model

LONG_TEXT = " ".join(["senior python engineer owns the data platform pipeline"] * 30)


@pytest.fixture
def embtoken_model(tiny_cre):
    return tiny_cre("decoder", pooling="embtoken")


def test_embtoken_is_added_to_tokenizer_and_embeddings_from_eos(tiny_cre, embtoken_model):
    plain = tiny_cre("decoder")
    tokenizer, token_id = embtoken_model.tokenizer, embtoken_model.config.embtoken_id
    assert tokenizer.convert_tokens_to_ids(EMBTOKEN) == token_id == len(plain.tokenizer)
    weights = embtoken_model.backbone.get_input_embeddings().weight
    assert weights.shape[0] == embtoken_model.config.text_config.vocab_size == token_id + 1
    torch.testing.assert_close(weights[token_id], weights[tokenizer.eos_token_id])
    ids = tokenizer(["senior python engineer"])["input_ids"][0]
    assert ids[-1] == token_id and tokenizer.eos_token_id not in ids  # instruction + text + <embtoken>


def test_untrained_embtoken_embeds_like_last_token_pooling(tiny_cre, embtoken_model):
    """Initialised from EOS, the token reads exactly like the EOS that last-token pooling reads."""
    np.testing.assert_allclose(
        embtoken_model.encode(TEXTS, kind="jd"), tiny_cre("decoder").encode(TEXTS, kind="jd"), atol=1e-5
    )
    with torch.no_grad():
        embtoken_model.backbone.get_input_embeddings().weight[embtoken_model.config.embtoken_id] += 0.5
    moved = embtoken_model.encode(TEXTS, kind="jd")
    assert not np.allclose(moved, tiny_cre("decoder").encode(TEXTS, kind="jd"), atol=1e-3)


def test_checkpoint_round_trip_automodel_and_sentence_transformers(embtoken_model, tmp_path):
    with torch.no_grad():  # a trained token: no longer a copy of EOS, so the saved row must be its own
        embtoken_model.backbone.get_input_embeddings().weight[embtoken_model.config.embtoken_id] += 0.5
    expected = {kind: embtoken_model.encode(TEXTS, kind=kind) for kind in ("jd", "cv")}
    embtoken_model.save_pretrained(tmp_path)
    assert_complete_checkpoint(tmp_path)
    assert (
        AutoTokenizer.from_pretrained(tmp_path)("nurse")["input_ids"][-1] == embtoken_model.config.embtoken_id
    )

    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
    assert loaded.config.pooling == "embtoken"
    for kind in ("jd", "cv"):
        np.testing.assert_allclose(loaded.encode(TEXTS, kind=kind), expected[kind], atol=1e-5)
    st = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    for kind in ("jd", "cv"):
        np.testing.assert_allclose(st.encode(TEXTS, prompt_name=kind), expected[kind], atol=1e-5)


@pytest.mark.parametrize(
    "rt",
    [{"iterations": 0}, {"iterations": 2, "placement": "prefix"}, {"iterations": 2, "placement": "suffix"}],
)
def test_left_and_right_padding_give_the_same_vectors(tiny_cre, rt):
    model = tiny_cre("decoder", pooling="embtoken", rt=rt)
    model.tokenizer.padding_side = "right"
    right = model.encode(TEXTS, batch_size=len(TEXTS))
    model.tokenizer.padding_side = "left"
    left = model.encode(TEXTS, batch_size=len(TEXTS))
    one_by_one = np.stack([model.encode(text) for text in TEXTS])
    np.testing.assert_allclose(left, right, atol=1e-5)
    np.testing.assert_allclose(left, one_by_one, atol=1e-5)
    assert np.isfinite(left).all()
    assert np.isfinite(model.encode(TEXTS, kind="cv")).all()  # the CV "" is nothing but <embtoken>


@pytest.mark.parametrize("placement", ["prefix", "suffix"])
def test_rt_refines_the_embtoken_vector(embtoken_model, placement):
    off = embtoken_model.encode(TEXTS, rt_iterations=0)
    embtoken_model.config.rt = {**embtoken_model.config.rt, "placement": placement}
    on = embtoken_model.encode(TEXTS, rt_iterations=2)
    assert np.isfinite(on).all()
    assert np.abs(on - off).max() > 1e-3  # RT changes the vector ...
    np.testing.assert_allclose(embtoken_model.encode(TEXTS, rt_iterations=2), on)  # ... deterministically


@pytest.mark.parametrize("iterations", [1, 3])
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_rt_kv_cache_path_equals_full_re_encode(tiny_cre, iterations, padding_side):
    """Suffix RT reads ``text [memory] <embtoken>``; the cached path runs only the last two tokens."""
    model = tiny_cre("decoder", pooling="embtoken", rt={"placement": "suffix"})
    model.tokenizer.padding_side = padding_side
    batch = model.tokenize(TEXTS, kind="jd")
    with torch.no_grad():
        cached = model(**batch, rt_iterations=iterations, use_cache=True).sentence_embedding
        full = model(**batch, rt_iterations=iterations, use_cache=False).sentence_embedding
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)


def test_suffix_rt_reads_the_embtoken_after_the_memory_token(tiny_cre):
    """The suffix RT vector is the state of the <embtoken> that follows the memory token: changing
    that token's input embedding changes it even though every text position is left as it was."""
    model = tiny_cre("decoder", pooling="embtoken", rt={"placement": "suffix", "iterations": 1})
    batch = model.tokenize(TEXTS, kind="jd")
    text_mask, tail = model._rt_layout(batch["attention_mask"], "suffix")
    assert (text_mask.sum(1) == batch["attention_mask"].sum(1) - 1).all()
    weight = model.backbone.get_input_embeddings().weight
    torch.testing.assert_close(tail[:, 0], weight[model.config.embtoken_id].expand(len(TEXTS), -1))


def test_a_long_text_keeps_its_embtoken(embtoken_model):
    token_id = embtoken_model.config.embtoken_id
    batch = embtoken_model.tokenize([LONG_TEXT, "nurse"], kind="cv", max_length=12)
    assert batch["input_ids"].shape[1] == 12
    assert batch["input_ids"][:, -1].tolist() == [token_id, token_id]
    with pytest.warns(UserWarning, match="1 of 3 texts were longer than 12 tokens"):
        vectors = embtoken_model.encode([LONG_TEXT, "nurse", "python"], kind="cv", max_length=12)
    truncated = embtoken_model.tokenizer.decode(batch["input_ids"][0, :-1])
    np.testing.assert_allclose(vectors[0], embtoken_model.encode(truncated, kind="cv"), atol=1e-5)


def test_ids_without_the_embtoken_are_refused_with_the_rows_named(embtoken_model):
    batch = embtoken_model.tokenize(["senior python engineer", "nurse"], kind="cv")
    batch["input_ids"][1, -1] = embtoken_model.tokenizer.eos_token_id
    with pytest.raises(ValueError, match=r"rows \[1\] of the batch do not end with <embtoken>"):
        embtoken_model(**batch)


def test_embtoken_needs_a_decoder_backbone():
    bert = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    with pytest.raises(ValueError, match="pooling 'embtoken' needs a decoder backbone.*bert encoder"):
        CREConfig(text_config=bert, pooling="embtoken")


def test_init_model_cli_builds_an_embtoken_checkpoint(tiny_backbone_dir, tmp_path):
    out = tmp_path / "cre-embtoken"
    assert (
        init_model(
            ["--backbone", str(tiny_backbone_dir("decoder")), "--out", str(out), "--pooling", "embtoken"]
        )
        == 0
    )
    model = AutoModel.from_pretrained(out, trust_remote_code=True)
    assert model.config.pooling == "embtoken"
    assert model.tokenizer.convert_tokens_to_ids(EMBTOKEN) == model.config.embtoken_id
    assert model.encode(TEXTS).shape == (len(TEXTS), 32)


def test_sentence_transformers_export_reads_the_embtoken_as_the_last_token(embtoken_model, tmp_path):
    from train.export import export_checkpoint

    with torch.no_grad():
        embtoken_model.backbone.get_input_embeddings().weight[embtoken_model.config.embtoken_id] += 0.5
    [folder] = export_checkpoint(embtoken_model, tmp_path / "st")
    st = SentenceTransformer(str(folder.path), device="cpu")
    for kind in ("jd", "cv"):
        np.testing.assert_allclose(
            st.encode(TEXTS, prompt_name=kind, normalize_embeddings=True),
            embtoken_model.encode(TEXTS, kind=kind),
            atol=1e-5,
        )


@pytest.mark.slow
def test_onnx_export_keeps_the_embtoken(embtoken_model, tmp_path):
    import onnxruntime

    from train.export import export_checkpoint

    [folder] = export_checkpoint(embtoken_model, tmp_path / "onnx", format="onnx")
    session = onnxruntime.InferenceSession(str(folder.path / "model.onnx"))
    batch = embtoken_model.tokenize(TEXTS, kind="cv")
    batch = {name: batch[name].numpy() for name in ("input_ids", "attention_mask")}
    [got] = session.run(None, batch)
    np.testing.assert_allclose(got, embtoken_model.encode(TEXTS, kind="cv"), atol=1e-5)


@pytest.mark.integration
def test_smollm2_embtoken_checkpoint_round_trip(tmp_path):
    """The real SmolLM2-135M-Instruct tokenizer and weights: the token is appended, untrained it
    embeds like last-token pooling, and a saved checkpoint loads through both stacks alike."""
    from common.models import build_cre_model

    texts = ["Senior data engineer: Spark and Airflow", "Registered nurse, ICU, 5 years", ""]
    model = build_cre_model("smollm2-135m", pooling="embtoken", max_length=64)
    assert model.tokenizer(texts[0])["input_ids"][-1] == model.config.embtoken_id
    vectors = model.encode(texts, kind="jd")
    np.testing.assert_allclose(
        vectors, build_cre_model("smollm2-135m", max_length=64).encode(texts, kind="jd"), atol=1e-4
    )
    model.save_pretrained(tmp_path)
    st = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    np.testing.assert_allclose(st.encode(texts, prompt_name="jd"), vectors, atol=1e-4)


def test_lora_rounds_train_the_embtoken_row_and_merge_it(embtoken_model):
    """LoRA adapts linear layers only: the <embtoken> row trains as peft's trainable tokens and is merged."""
    from train.lora import LoraSettings, add_lora, merge_lora

    token_id, eos = embtoken_model.config.embtoken_id, embtoken_model.tokenizer.eos_token_id
    before = embtoken_model.backbone.get_input_embeddings().weight.detach().clone()
    model = add_lora(embtoken_model, LoraSettings(rank=4, alpha=8, dropout=0.0, target_modules="all-linear"))
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    batch = model.tokenize(TEXTS, kind="jd")
    for _ in range(2):
        model(**batch).sentence_embedding.sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    after = merge_lora(model).backbone.get_input_embeddings().weight.detach()
    assert not torch.allclose(after[token_id], before[token_id])  # the token learnt
    untouched = torch.ones(len(before), dtype=torch.bool)
    untouched[token_id] = False
    torch.testing.assert_close(after[untouched], before[untouched])  # and nothing else did
    assert not torch.equal(after[token_id], after[eos])


def test_a_task_adapter_refuses_to_drop_the_trained_embtoken_row(embtoken_model, tiny_cre):
    from train.lora import LoraSettings, add_lora, to_task_adapter

    model = add_lora(embtoken_model, LoraSettings(rank=4, alpha=8, dropout=0.0, target_modules="all-linear"))
    with pytest.raises(ValueError, match="<embtoken> row this round trained would be lost"):
        to_task_adapter(model, tiny_cre("decoder", pooling="embtoken"), "jd-cv")
