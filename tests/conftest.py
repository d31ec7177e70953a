"""Shared fixtures: tiny randomly initialised backbones (encoder and decoder) saved as real folders.

Each tiny backbone is a real transformers model folder (safetensors weights, tokenizer.json) built
here, so unit tests run the same loading and conversion code as the real backbones, in seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel, PreTrainedTokenizerFast

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

CHECKPOINT_FILES = {
    "config.json",
    "configuration_cre.py",
    "modeling_cre.py",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
}


def assert_complete_checkpoint(folder: Path) -> None:
    """A CRE checkpoint: code, merged safetensors weights, tokenizer and sentence-transformers files."""
    files = {path.name for path in folder.iterdir()}
    assert files >= CHECKPOINT_FILES, f"missing {CHECKPOINT_FILES - files}"
    assert not files & {"adapter_config.json", "adapter_model.safetensors", "pytorch_model.bin"}
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_cre.CREConfig",
        "AutoModel": "modeling_cre.CREModel",
    }


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "</s>"]
WORDS = (
    "senior junior lead staff principal intern data software backend frontend engineer developer analyst "
    "scientist manager nurse teacher accountant designer recruiter sales marketing product python java sql "
    "spark airflow aws kubernetes react excel figma tableau owns leads builds supports maintains designs "
    "team platform pipeline service roadmap budget clinic ward patients students ledger audit campaign "
    "years of experience with and the a in for to on at degree bachelor master certified english german "
    "remote london berlin company worked as responsible summary skills education 2019 2020 2021 2022 2023 "
    ", . : ; - ( ) /"
).split()


def build_tokenizer(decoder: bool) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over :data:`WORDS`: BERT-style ``[CLS] … [SEP]`` for encoders, plain for decoders."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if decoder:
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", eos_token="</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_backbone(decoder: bool, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    vocab_size = len(SPECIAL_TOKENS) + len(WORDS)
    common = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, intermediate_size=64)
    if decoder:
        eos = SPECIAL_TOKENS.index("</s>")
        config = LlamaConfig(
            **common, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
            bos_token_id=None, eos_token_id=eos, pad_token_id=None,
        )  # fmt: skip
        return LlamaModel(config)
    config = BertConfig(**common, num_attention_heads=2, max_position_embeddings=128)
    return BertModel(config)


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory):
    """Factory: ``tiny_backbone_dir("encoder" | "decoder")`` → folder with random weights and a tokenizer."""
    folders: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in folders:
            folder = tmp_path_factory.mktemp(f"tiny-{kind}")
            decoder = kind == "decoder"
            build_backbone(decoder).save_pretrained(folder)
            build_tokenizer(decoder).save_pretrained(folder)
            folders[kind] = folder
        return folders[kind]

    return make


@pytest.fixture
def tiny_cre(tiny_backbone_dir):
    """Factory: ``tiny_cre("encoder", **config_overrides)`` → a CREModel on a tiny random backbone."""
    from common.models import build_cre_model

    def make(kind: str = "encoder", **overrides):
        return build_cre_model(str(tiny_backbone_dir(kind)), **overrides)

    return make
