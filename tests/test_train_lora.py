"""LoRA on CRE backbones: only the adapter (and CNN) trains, merging keeps the embeddings, no adapter files."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import PeftModel
from transformers import AutoModel

from tests.train_support import assert_jd_cv_vectors_equal
from train.checkpoint import ADAPTER_FILES, save_checkpoint
from train.lora import (
    LoraSettings,
    add_lora,
    graft_task_adapter,
    low_rank_difference,
    merge_lora,
    scale_update,
    to_task_adapter,
)

TEXTS = ["senior python developer with spark", "nurse on the ward", "sales manager, budget and team"]


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_only_the_adapter_and_the_cnn_train(tiny_cre, kind):
    model = add_lora(tiny_cre(kind, cnn={"enabled": True}), LoraSettings(rank=4, alpha=8))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or name.startswith("cnn.") for name in trainable)
    assert any(name.startswith("cnn.") for name in trainable)
    assert not any("pooler" in name for name in trainable)


def test_full_fine_tuning_with_rank_zero(tiny_cre):
    model = add_lora(tiny_cre("encoder"), LoraSettings(rank=0))
    assert not isinstance(model.backbone, PeftModel)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all("pooler" in name for name in frozen)  # only the unused pooler stays frozen


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_merged_checkpoint_embeds_like_the_adapted_model(tiny_cre, tmp_path, kind):
    model = add_lora(tiny_cre(kind), LoraSettings(rank=4, alpha=8))
    torch.manual_seed(0)
    with torch.no_grad():  # a trained adapter: lora_B starts at zero, which would make merging trivial
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    adapted = model.encode(TEXTS, kind="cv")
    base = tiny_cre(kind).encode(TEXTS, kind="cv")
    assert not torch.allclose(torch.as_tensor(adapted), torch.as_tensor(base), atol=1e-3)

    merged = merge_lora(model)
    assert not isinstance(merged.backbone, PeftModel)
    torch.testing.assert_close(merged.encode(TEXTS, kind="cv"), adapted, rtol=1e-4, atol=1e-5)

    folder = save_checkpoint(merged, tmp_path / "ckpt", round_name="r1", summary={"metrics": {}})
    assert not any((folder / name).exists() for name in ADAPTER_FILES)
    assert {"config.json", "model.safetensors", "modeling_cre.py", "modules.json", "README.md"} <= {
        path.name for path in folder.iterdir()
    }
    loaded = AutoModel.from_pretrained(folder, trust_remote_code=True)
    torch.testing.assert_close(loaded.encode(TEXTS, kind="cv"), adapted, rtol=1e-4, atol=1e-5)


def trained_round(base):
    """``base`` with a LoRA adapter and CNN projection as after training (non-zero updates)."""
    model = add_lora(copy.deepcopy(base), LoraSettings(rank=4, alpha=8))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name or name.startswith("cnn."):
                parameter.add_(torch.randn_like(parameter) * 0.2)
    return model


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_task_adapter_encodes_its_task_like_the_merged_update(tiny_cre, kind, weight):
    base = tiny_cre(kind, cnn={"enabled": True})
    trained = trained_round(base)
    merged = scale_update(copy.deepcopy(trained), base, weight)
    model = to_task_adapter(trained, base, "jd-cv", weight)

    assert not isinstance(model.backbone, PeftModel)
    assert model.config.task_adapters["jd-cv"]["rank"] == 4 and model.config.task_adapters["jd-cv"]["cnn"]
    for text_kind in ("jd", "cv"):
        expected = merged.encode(TEXTS, kind=text_kind)
        torch.testing.assert_close(
            model.encode(TEXTS, kind=text_kind, task="jd-cv"), expected, rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(
            model.encode(TEXTS, kind=text_kind), expected, rtol=1e-4, atol=1e-5
        )  # default
        # JD–JD search keeps the starting weights, CNN projection included.
        torch.testing.assert_close(
            model.encode(TEXTS, kind=text_kind, task="jd-jd"),
            base.encode(TEXTS, kind=text_kind),
            rtol=1e-4,
            atol=1e-5,
        )
    assert not torch.allclose(
        torch.as_tensor(model.encode(TEXTS, task="jd-cv")),
        torch.as_tensor(model.encode(TEXTS, task="jd-jd")),
        atol=1e-3,
    )


def test_task_adapter_survives_the_checkpoint_and_sentence_transformers(tiny_cre, tmp_path):
    from sentence_transformers import SentenceTransformer

    base = tiny_cre("encoder", cnn={"enabled": True})
    model = to_task_adapter(trained_round(base), base, "jd-cv")
    expected = {task: model.encode(TEXTS, kind="cv", task=task) for task in ("jd-jd", "jd-cv")}
    folder = save_checkpoint(model, tmp_path / "ckpt", round_name="r2", summary={"metrics": {}})
    assert not any((folder / name).exists() for name in ADAPTER_FILES)

    loaded = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert set(loaded.task_adapters) == {"jd-cv"}
    st = SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    for task, vectors in expected.items():
        torch.testing.assert_close(loaded.encode(TEXTS, kind="cv", task=task), vectors, rtol=1e-4, atol=1e-5)
        from_st = st.encode(TEXTS, prompt_name="cv", task=task, convert_to_numpy=True)
        torch.testing.assert_close(from_st, vectors, rtol=1e-4, atol=1e-5)


def test_task_adapter_errors_name_the_problem(tiny_cre):
    base = tiny_cre("encoder")
    model = to_task_adapter(trained_round(base), base, "jd-cv")
    with pytest.raises(ValueError, match="unknown task 'cv-cv'"):
        model.encode(TEXTS, task="cv-cv")
    with pytest.raises(ValueError, match="has task adapters"):
        add_lora(model, LoraSettings(rank=4))
    with pytest.raises(ValueError, match="needs a LoRA round"):
        to_task_adapter(add_lora(copy.deepcopy(base), LoraSettings(rank=0)), base, "jd-cv")


def test_low_rank_difference_recovers_a_merged_update(tiny_cre):
    base = tiny_cre("encoder")
    merged = merge_lora(trained_round(base))
    factors = low_rank_difference(merged.backbone, base.backbone)
    assert factors  # every adapted linear layer moved
    for name, (down, up) in factors.items():
        assert down.shape[0] <= 4  # the adapter's rank, not the layer's
        expected = merged.backbone.get_submodule(name).weight - base.backbone.get_submodule(name).weight
        torch.testing.assert_close(up @ down, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_grafted_adapter_encodes_like_its_round_and_the_host_keeps_its_task(tiny_cre, kind):
    base = tiny_cre(kind)
    # The host is Round 1: the base with a CNN projection and a merged low-rank update.
    host = merge_lora(trained_round(tiny_cre(kind, cnn={"enabled": True})))
    host_vectors = host.encode(TEXTS, kind="cv")
    adapted = to_task_adapter(trained_round(base), base, "jd-cv")

    grafted = graft_task_adapter(adapted, copy.deepcopy(host), base, "jd-cv")

    spec = grafted.config.task_adapters["jd-cv"]
    assert spec["rank"] == 8 and spec["cnn"]  # 4 for the update, 4 to undo the host's; identity CNN
    assert_jd_cv_vectors_equal(grafted, adapted, TEXTS)
    torch.testing.assert_close(grafted.encode(TEXTS, kind="cv", task="jd-jd"), host_vectors)


def test_graft_errors_name_the_problem(tiny_cre):
    base = tiny_cre("encoder")
    adapted = to_task_adapter(trained_round(base), base, "jd-cv")
    host = merge_lora(trained_round(tiny_cre("encoder", cnn={"enabled": True})))
    with pytest.raises(ValueError, match="no 'jd-jd' adapter"):
        graft_task_adapter(adapted, host, base, "jd-jd")
    fully_tuned = copy.deepcopy(host)
    with torch.no_grad():
        fully_tuned.backbone.embeddings.word_embeddings.weight.add_(0.1)
    with pytest.raises(ValueError, match="word_embeddings.weight differs from the base"):
        graft_task_adapter(adapted, fully_tuned, base, "jd-cv")
    with pytest.raises(ValueError, match="not the base underneath"):
        graft_task_adapter(adapted, copy.deepcopy(host), host, "jd-cv")
    with_cnn = tiny_cre("encoder", cnn={"enabled": True})
    adapted_with_cnn = to_task_adapter(trained_round(with_cnn), with_cnn, "jd-cv")
    with pytest.raises(ValueError, match="host model has none"):
        graft_task_adapter(adapted_with_cnn, merge_lora(trained_round(base)), base, "jd-cv")
