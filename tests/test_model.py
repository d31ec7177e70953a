"""Unit tests of CREConfig and CREModel on tiny random encoder and decoder backbones."""

from __future__ import annotations

import builtins
import json
import socket

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, BertConfig, LlamaConfig

from cre.configuration_cre import CREConfig
from cre.modeling_cre import CREModel, pool
from tests.conftest import assert_complete_checkpoint

TEXTS = [
    "Senior data engineer : python , spark and airflow . owns the platform pipeline",
    "Nurse",
    "",
    "Junior accountant with excel ; ledger and audit for the company in london , 2 years of experience",
    "Lead product designer - figma - roadmap",
    "Staff software engineer leads the backend team",
]
KINDS = ["encoder", "decoder"]


def tiny_config(decoder: bool = False, **options) -> CREConfig:
    common = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, intermediate_size=32)
    backbone = (
        LlamaConfig(**common, num_attention_heads=2, num_key_value_heads=1)
        if decoder
        else BertConfig(**common, num_attention_heads=2)
    )
    return CREConfig(text_config=backbone, **options)


# ---------------------------------------------------------------- configuration


def test_config_defaults_follow_the_backbone_kind():
    encoder, decoder = tiny_config(), tiny_config(decoder=True)
    assert (encoder.pooling, encoder.is_decoder_backbone) == ("mean", False)
    assert (decoder.pooling, decoder.is_decoder_backbone) == ("last_token", True)
    assert set(encoder.instructions) >= {"jd", "cv", "query", "document"}
    assert encoder.instructions["jd"] == ""
    assert decoder.instructions["jd"].startswith("Instruct: ") and decoder.instructions["jd"].endswith(
        "\nQuery: "
    )
    assert decoder.instructions["cv"] == ""
    assert not encoder.cnn["enabled"] and encoder.rt["iterations"] == 0 and not encoder.boundary["enabled"]
    assert encoder.hidden_size == encoder.output_dim == 16


def test_config_round_trips_through_json(tmp_path):
    config = tiny_config(
        output_dim=8,
        instructions={"jd": "JD: "},
        cnn={"enabled": True, "kernel_sizes": [2]},
        rt={"iterations": 2},
    )
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["hidden_size"] == 8 and saved["text_config"]["model_type"] == "bert"
    loaded = CREConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.instructions["jd"] == "JD: " and loaded.instructions["cv"] == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"pooling": "max"},
            r"pooling must be one of \('mean', 'cls', 'last_token', 'embtoken'\), got 'max'",
        ),
        (
            {"default_task": "cv-cv"},
            r"default_task must be one of \('jd-jd', 'jd-cv', 'title'\), got 'cv-cv'",
        ),
        ({"task_adapters": {"jd-xx": {}}}, r"task_adapters key must be one of \('jd-jd', 'jd-cv', 'title'\)"),
        ({"output_dim": 17}, "output_dim must be in 1..16"),
        ({"cnn": {"width": 3}}, "Unknown cnn option"),
        (
            {"rt": {"placement": "middle"}},
            r"rt.placement must be one of \('prefix', 'suffix'\), got 'middle'",
        ),
        ({"rt": {"iterations": -1}}, "rt.iterations"),
        ({"feedback": {"k": 3}}, "Unknown feedback option"),
        ({"feedback": {"top_k": -1}}, "feedback top_k must be an integer >= 0"),
        ({"feedback": {"top_k": 2.5}}, "feedback top_k must be an integer >= 0"),
        ({"feedback": {"weight": -0.5}}, "feedback weight must be a number >= 0"),
    ],
)
def test_config_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**options)


# ---------------------------------------------------------------- pooling


@pytest.mark.parametrize("mode", ["mean", "cls", "last_token"])
def test_pooling_is_the_same_for_left_and_right_padding(mode):
    states = torch.randn(1, 3, 4)
    right = torch.cat([states, torch.randn(1, 2, 4)], dim=1)
    left = torch.cat([torch.randn(1, 2, 4), states], dim=1)
    pooled_right = pool(right, torch.tensor([[1, 1, 1, 0, 0]]), mode)
    pooled_left = pool(left, torch.tensor([[0, 0, 1, 1, 1]]), mode)
    expected = {"mean": states.mean(1), "cls": states[:, 0], "last_token": states[:, -1]}[mode]
    torch.testing.assert_close(pooled_right, expected)
    torch.testing.assert_close(pooled_left, expected)


# ---------------------------------------------------------------- construction


def test_construction_opens_no_file_and_no_connection(monkeypatch):
    config = tiny_config(cnn={"enabled": True}, boundary={"enabled": True})

    def forbidden(*args, **kwargs):
        raise AssertionError(f"I/O during construction: {args[:1]}")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(builtins, "open", forbidden)
    model = CREModel(config)
    assert model.training and model.tokenizer is None
    with pytest.raises(ValueError, match="has no tokenizer"):
        model.encode("x")


# ---------------------------------------------------------------- encode


@pytest.mark.parametrize("kind", KINDS)
def test_encode_restores_input_order_and_matches_one_by_one(tiny_cre, kind):
    model = tiny_cre(kind)
    batched = model.encode(TEXTS, kind="cv", batch_size=4)
    assert batched.shape == (len(TEXTS), 32) and batched.dtype == np.float32
    one_by_one = np.stack([model.encode(text, kind="cv") for text in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_encode_is_the_same_for_left_and_right_padding(tiny_cre, kind):
    model = tiny_cre(kind)
    model.tokenizer.padding_side = "right"
    right = model.encode(TEXTS, batch_size=len(TEXTS))
    model.tokenizer.padding_side = "left"
    left = model.encode(TEXTS, batch_size=len(TEXTS))
    np.testing.assert_allclose(left, right, atol=1e-5)


def test_tokenize_prompts_each_text_with_its_own_kind(tiny_cre):
    model = tiny_cre("encoder", instructions={"jd": "senior data :"})
    assert model.prompt(["python", "nurse"], ["jd", "cv"]) == ["senior data :python", "nurse"]
    mixed = model.tokenize(["python", "nurse"], ["jd", "cv"])
    assert mixed["input_ids"][0].tolist() == model.tokenize(["python"], "jd")["input_ids"][0].tolist()
    assert mixed["input_ids"][1].tolist()[:3] == model.tokenize(["nurse"], "cv")["input_ids"][0].tolist()
    with pytest.raises(ValueError, match="one kind per text: got 1 kinds for 2 texts"):
        model.prompt(["python", "nurse"], ["jd"])
    with pytest.raises(ValueError, match="Unknown kind 'resume'"):
        model.tokenize(["python"], ["resume"])


@pytest.mark.parametrize("kind", KINDS)
def test_forward_honours_return_dict(tiny_cre, kind):
    model = tiny_cre(kind, rt={"iterations": 1}).eval()
    batch = model.tokenize(TEXTS[:2], kind="cv")
    with torch.no_grad():
        output = model(**batch)
        as_tuple = model(**batch, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 3
    for got, expected in zip(
        as_tuple, (output.sentence_embedding, output.last_hidden_state, output.attention_mask), strict=True
    ):
        torch.testing.assert_close(got, expected)


def test_decoder_tokenizer_pads_left_and_ends_with_eos(tiny_cre):
    model = tiny_cre("decoder")
    assert model.tokenizer.padding_side == "left"
    batch = model.tokenize(["senior python engineer", "nurse"], kind="cv", max_length=3)
    eos = model.tokenizer.eos_token_id
    assert batch["input_ids"][:, -1].tolist() == [eos, eos]  # EOS survives truncation
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 1, 1]]


def test_encode_outputs_and_options(tiny_cre):
    model = tiny_cre("encoder")
    single = model.encode("Senior python engineer")
    assert single.shape == (32,)
    as_torch = model.encode(["Senior python engineer"], convert_to="torch")
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32
    np.testing.assert_allclose(as_torch[0].numpy(), single, atol=1e-6)
    raw = model.encode(["Senior python engineer"], normalize=False)[0]
    np.testing.assert_allclose(raw / np.linalg.norm(raw), single, atol=1e-6)


def test_encode_uses_the_kind_instruction(tiny_cre):
    model = tiny_cre("encoder", instructions={"jd": "senior data :"})
    text = "python engineer"
    np.testing.assert_allclose(
        model.encode(text, kind="jd"), model.encode("senior data :" + text, kind="cv"), atol=1e-6
    )
    assert not np.allclose(model.encode(text, kind="jd"), model.encode(text, kind="cv"))


def test_encode_is_deterministic_even_on_a_model_in_train_mode(tiny_cre):
    model = tiny_cre("encoder").train()
    first, second = model.encode(TEXTS), model.encode(TEXTS)
    np.testing.assert_array_equal(first, second)
    assert model.training  # the caller's mode is restored


def test_empty_string_policy(tiny_cre):
    """Empty strings are embedded (special tokens and instruction only), never dropped or moved."""
    model = tiny_cre("decoder")
    vectors = model.encode(["nurse", "", "senior nurse"])
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(vectors[1], model.encode(""), atol=1e-5)
    np.testing.assert_allclose(vectors[0], model.encode("nurse"), atol=1e-5)


def test_encode_counts_truncated_texts(tiny_cre):
    model = tiny_cre("encoder", max_length=8)
    long_text = " ".join(["python"] * 20)
    with pytest.warns(UserWarning, match="2 of 3 texts were longer than 8 tokens"):
        vectors = model.encode([long_text, "nurse", long_text + " spark"])
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-5)  # both cut to the same 8 tokens


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (None, "texts must be a string or a list"),
        ([], "texts is empty"),
        (["nurse", None], r"texts\[1\] is NoneType"),
        (["nurse", "engineer", 3], r"texts\[2\] is int"),
        (7, "texts must be a string or a list"),
    ],
)
def test_encode_rejects_bad_input_naming_it(tiny_cre, texts, message):
    model = tiny_cre("encoder")
    with pytest.raises(ValueError, match=message):
        model.encode(texts)


def test_encode_rejects_unknown_kind_and_format(tiny_cre):
    model = tiny_cre("encoder")
    with pytest.raises(ValueError, match="Unknown kind 'resume'"):
        model.encode("x", kind="resume")
    with pytest.raises(ValueError, match="convert_to"):
        model.encode("x", convert_to="list")


def test_output_dim_truncates_before_normalising(tiny_cre):
    full = tiny_cre("encoder").encode(TEXTS, normalize=False)
    short = tiny_cre("encoder", output_dim=8).encode(TEXTS)
    expected = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    np.testing.assert_allclose(short, expected, atol=1e-5)


def test_similarity_keeps_the_input_type():
    a = np.array([[1.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    b = np.array([[2.0, 0.0]], dtype=np.float32)
    scores = CREModel.similarity(a, b)
    assert isinstance(scores, np.ndarray)
    np.testing.assert_allclose(scores, [[1.0], [0.0]], atol=1e-6)
    torch.testing.assert_close(
        CREModel.similarity(torch.tensor(a), torch.tensor(b)), torch.tensor([[1.0], [0.0]])
    )


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_loads_through_automodel_and_sentence_transformers(tiny_cre, tmp_path, kind):
    model = tiny_cre(kind)
    model.save_pretrained(tmp_path)
    assert_complete_checkpoint(tmp_path)

    expected = {kind_: model.encode(TEXTS, kind=kind_) for kind_ in ("jd", "cv")}
    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
    assert not loaded.training and type(loaded).__name__ == "CREModel"
    np.testing.assert_allclose(loaded.encode(TEXTS, kind="jd"), expected["jd"], atol=1e-5)

    st = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    assert st.get_embedding_dimension() == 32
    assert st.similarity_fn_name == "cosine"
    for kind_ in ("jd", "cv"):
        np.testing.assert_allclose(st.encode(TEXTS, prompt_name=kind_), expected[kind_], atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sentence_transformers_backbone_keeps_its_pooling(tiny_backbone_dir, tmp_path, pooling):
    """A sentence-transformers folder (written by sentence-transformers 6) embeds the same once in CRE."""
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    from common.models import build_cre_model

    modules = [Transformer(str(tiny_backbone_dir("encoder"))), Pooling(32, pooling_mode=pooling), Normalize()]
    original = SentenceTransformer(modules=modules, device="cpu")
    original.save(str(tmp_path))
    model = build_cre_model(str(tmp_path))
    assert (model.config.pooling, model.config.normalize) == (pooling, True)
    np.testing.assert_allclose(model.encode(TEXTS, kind="cv"), original.encode(TEXTS), atol=1e-5)


def test_release_config_at_the_repository_root():
    """The repo root is a custom-code model repo: its config.json loads through AutoConfig."""
    from transformers import AutoConfig

    from tests.conftest import REPO_ROOT

    config = AutoConfig.from_pretrained(REPO_ROOT, trust_remote_code=True)
    assert type(config).__name__ == "CREConfig" and config.model_type == "cre"
    assert config.auto_map == {
        "AutoConfig": "configuration_cre.CREConfig",
        "AutoModel": "modeling_cre.CREModel",
    }
    assert config.text_config.model_type == "bert" and config.hidden_size == config.output_dim == 384
    # The main job's recipe: no CNN projection (so the checkpoint exports), a trained head that is off
    # (λ 0) until a user sets λ, feedback on.
    assert not config.cnn["enabled"] and config.boundary["enabled"] and config.boundary["trained"]
    assert config.boundary["weight"] == 0.0
    assert config.feedback["top_k"] > 0
    # JD→CV and recruiter questions get their own update, job titles theirs; JD–JD search the shared weights.
    assert set(config.task_adapters) == {"jd-cv", "title"}
    model = CREModel(CREConfig(**config.to_dict()))
    assert model.cnn is None and model.boundary_head is not None
