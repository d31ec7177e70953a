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

from tests.hub_server import HubServer
from train.hub import push_folder

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
def tiny_sentence_transformer(tiny_backbone_dir) -> Path:
    """The tiny random encoder of conftest with mean pooling and normalisation, as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(tiny_backbone_dir("encoder")))
    model = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()]
    )
    folder = tiny_backbone_dir("encoder").parent / "tiny-sentence-transformer"
    model.save(str(folder))
    return folder


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
    assert local.shape == (len(SENTENCES), 32)
    assert np.abs(local).sum() > 0
    np.testing.assert_array_equal(from_hub, local)


@pytest.mark.integration
def test_real_minilm_loads_from_hub_with_same_vectors(hub, tmp_path):
    from common.backbones import resolve_backbone

    folder = Path(resolve_backbone("minilm"))
    push_folder(folder, "cre-tester/minilm", token=hub.token, endpoint=hub.url)

    vectors = load_local_and_from_hub(hub, folder, "cre-tester/minilm", tmp_path, ("sentence-transformers",))

    local, from_hub = vectors["sentence-transformers/local"], vectors["sentence-transformers/hub"]

    assert local.shape == (len(SENTENCES), 384)
    np.testing.assert_array_equal(from_hub, local)


@pytest.mark.parametrize("backbone", ["encoder", "decoder"])
def test_cre_checkpoint_loads_from_hub_with_remote_code_and_same_vectors(hub, tiny_cre, backbone, tmp_path):
    checkpoint = tmp_path / "cre-checkpoint"
    tiny_cre(backbone).save_pretrained(checkpoint)
    push_folder(checkpoint, "cre-tester/cre-tiny", token=hub.token, endpoint=hub.url)
    assert {"modeling_cre.py", "configuration_cre.py", "modules.json"} <= set(
        hub.files("cre-tester/cre-tiny")
    )

    vectors = load_local_and_from_hub(
        hub, checkpoint, "cre-tester/cre-tiny", tmp_path, ("cre", "sentence-transformers")
    )

    assert vectors["cre/local"].shape[0] == len(SENTENCES)
    assert np.abs(vectors["cre/local"]).sum() > 0
    np.testing.assert_array_equal(vectors["cre/hub"], vectors["cre/local"])
    np.testing.assert_array_equal(
        vectors["sentence-transformers/hub"], vectors["sentence-transformers/local"]
    )
    remote_code = list((tmp_path / "hf_home" / "modules").rglob("modeling_cre.py"))
    assert remote_code, "AutoModel did not load modeling_cre.py from the Hub"
