"""Models published with train.hub load from the Hub as they load from their local folder.

Each check pushes a folder to the Hub test double, then a subprocess with ``HF_ENDPOINT`` pointing at
it and an empty ``HF_HOME`` loads the model twice, from the local folder and by repo id, and saves
both sets of vectors. ``HF_ENDPOINT`` is read when huggingface_hub is imported, hence the subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hub_server import HubServer

from train.hub import push_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["Senior Python engineer, 5 years of data pipelines", "Registered nurse, intensive care", "sales"]

# argv: local folder, repo id, output .npz, then the loaders to use ("sentence-transformers", "cre")
LOAD_BOTH = f"""
import sys
import numpy as np
local_folder, repo_id, out, *loaders = sys.argv[1:]
sentences = {SENTENCES!r}

def vectors(loader, source):
    if loader == "sentence-transformers":
        from sentence_transformers import SentenceTransformer
        return SentenceTransformer(source, trust_remote_code=True).encode(sentences)
    from transformers import AutoModel
    return AutoModel.from_pretrained(source, trust_remote_code=True).encode(sentences, kind="cv")

arrays = {{}}
for loader in loaders:
    arrays[loader + "/local"] = vectors(loader, local_folder)
    arrays[loader + "/hub"] = vectors(loader, repo_id)
np.savez(out, **arrays)
"""


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A random 1-layer BERT with a 17-token vocabulary and its tokenizer, saved as a transformers folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    words = [
        "senior",
        "python",
        "engineer",
        "years",
        "of",
        "data",
        "registered",
        "nurse",
        "intensive",
        "care",
    ]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "sales", ","]
    (root / "vocab.txt").write_text("\n".join(tokens) + "\n")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokens),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(root / "bert")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root / "bert")
    return root / "bert"


@pytest.fixture(scope="module")
def tiny_sentence_transformer(tiny_bert) -> Path:
    """``tiny_bert`` with mean pooling and normalisation, saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    model = SentenceTransformer(modules=[Transformer(str(tiny_bert)), Pooling(16, "mean"), Normalize()])
    model.save(str(tiny_bert.parent / "sentence-transformer"))
    return tiny_bert.parent / "sentence-transformer"


def load_local_and_from_hub(
    hub: HubServer, folder: Path, repo_id: str, tmp_path: Path, loaders: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Vectors of SENTENCES from the local folder (``{loader}/local``) and from the Hub (``{loader}/hub``),
    loaded in a fresh process whose HF_HOME is ``tmp_path / "hf_home"``."""
    hf_home = tmp_path / "hf_home"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(hf_home), HF_TOKEN=hub.token)
    out = tmp_path / "vectors.npz"
    result = subprocess.run(
        [sys.executable, "-c", LOAD_BOTH, str(folder), repo_id, str(out), *loaders],
        cwd=tmp_path,  # not the repo root: checkpoint code must come from the Hub
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    snapshots = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    assert [path.name for path in snapshots.iterdir()] == [hub.repos[repo_id].branches["main"]]
    assert hub.unknown_requests == []
    return dict(np.load(out))


def test_sentence_transformer_loads_from_hub_with_same_vectors(hub, tiny_sentence_transformer, tmp_path):
    push_folder(tiny_sentence_transformer, "cre-tester/tiny-st", token=hub.token, endpoint=hub.url)

    vectors = load_local_and_from_hub(
        hub, tiny_sentence_transformer, "cre-tester/tiny-st", tmp_path, ("sentence-transformers",)
    )

    local, from_hub = vectors["sentence-transformers/local"], vectors["sentence-transformers/hub"]
    assert local.shape == (len(SENTENCES), 16)
    assert np.abs(local).sum() > 0
    np.testing.assert_array_equal(from_hub, local)


@pytest.mark.integration
def test_real_minilm_loads_from_hub_with_same_vectors(hub, tmp_path):
    from train.backbones import resolve_backbone

    folder = Path(resolve_backbone("minilm"))
    push_folder(folder, "cre-tester/minilm", token=hub.token, endpoint=hub.url)

    local, from_hub = load_local_and_from_hub(
        hub, "sentence-transformers", folder, "cre-tester/minilm", tmp_path
    )

    assert local.shape == (len(SENTENCES), 384)
    np.testing.assert_array_equal(from_hub, local)


def test_cre_checkpoint_loads_from_hub_with_remote_code_and_same_vectors(hub, tiny_bert, tmp_path):
    checkpoint = tmp_path / "cre-checkpoint"
    built = subprocess.run(
        [sys.executable, "-m", "train.init_model", "--backbone", str(tiny_bert), "--out", str(checkpoint)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    push_folder(checkpoint, "cre-tester/cre-tiny", token=hub.token, endpoint=hub.url)
    assert {"modeling_cre.py", "configuration_cre.py", "modules.json"} <= set(
        hub.files("cre-tester/cre-tiny")
    )

    vectors = load_local_and_from_hub(
        hub, checkpoint, "cre-tester/cre-tiny", tmp_path, ("cre", "sentence-transformers")
    )

    assert vectors["cre/local"].shape == (len(SENTENCES), 16)
    np.testing.assert_array_equal(vectors["cre/hub"], vectors["cre/local"])
    np.testing.assert_array_equal(
        vectors["sentence-transformers/hub"], vectors["sentence-transformers/local"]
    )
    remote_code = list((tmp_path / "hf_home" / "modules").rglob("modeling_cre.py"))
    assert remote_code, "AutoModel did not load modeling_cre.py from the Hub"
