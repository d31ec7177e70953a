"""LoRA on CRE backbones: only the adapter (and CNN) trains, merging keeps the embeddings, no adapter files."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel
from transformers import AutoModel

from train.checkpoint import ADAPTER_FILES, save_checkpoint
from train.lora import LoraSettings, add_lora, merge_lora

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
