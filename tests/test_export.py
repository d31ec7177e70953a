"""Plain exports (sentence-transformers, ONNX) of CRE checkpoints: exact vectors, per-task folders,
refusals. Unit tests on tiny random backbones; ``integration`` tests on the real MiniLM weights."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from cre.configuration_cre import TASKS
from tests.texts import CVS, JDS, PARITY_TEXTS
from train.export import ExportError, OnnxEmbedder, export_checkpoint, main

TINY_TEXTS = ["senior python developer", "registered nurse in a clinic ward with patients", "sql"]
INSTRUCTIONS = {"jd": "job : ", "cv": "summary : ", "query": "", "document": ""}
VALUE = "encoder.layer.0.attention.self.value"


def add_random_adapter(model, module: str, rank: int = 2, seed: int = 0) -> None:
    """A ``jd-cv`` adapter with random, non-zero factors on one linear layer of the backbone."""
    linear = model.backbone.get_submodule(module)
    generator = torch.Generator().manual_seed(seed)
    down = torch.randn(rank, linear.in_features, generator=generator) * 0.1
    up = torch.randn(linear.out_features, rank, generator=generator) * 0.1
    model.add_task_adapter("jd-cv", {module: (down, up)})


def st_vectors(folder: Path, texts: list[str], kind: str) -> np.ndarray:
    """Vectors from the exported folder through the standard loader, without remote code."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), trust_remote_code=False, device="cpu")
    return model.encode(texts, prompt_name=kind, convert_to_numpy=True)


def onnx_vectors(folder: Path, texts: list[str], kind: str, file: str = "model.onnx") -> np.ndarray:
    """Vectors from the exported ONNX graph, tokenised as its ``cre_export.json`` says."""
    return OnnxEmbedder.from_folder(folder, file).encode(texts, kind)


def cre_vectors(model, texts: list[str], kind: str, task: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # truncation of the long text is on purpose
        return model.encode(texts, kind=kind, task=task, normalize=True)


def assert_cosines(got: np.ndarray, expected: np.ndarray, floor: float) -> None:
    """Per-text cosine of two sets of vectors at least ``floor``; the message lists the worst."""
    got = torch.nn.functional.normalize(torch.as_tensor(got), dim=-1)
    expected = torch.nn.functional.normalize(torch.as_tensor(expected), dim=-1)
    assert got.shape == expected.shape
    cosine = (got * expected).sum(-1)
    assert bool((cosine >= floor).all()), (
        f"cosines below {floor}: {cosine.min():.6f} (text {cosine.argmin()})"
    )


def assert_plain_folder(folder: Path) -> None:
    """A folder standard stacks load: no custom code, no auto_map."""
    assert not list(folder.glob("*.py"))
    assert "auto_map" not in json.loads((folder / "config.json").read_text())


# ---------------------------------------------------------------------------- unit tests (tiny backbones)


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_sentence_transformers_export_loads_without_remote_code_and_matches(tiny_cre, tmp_path, kind):
    # output_dim below the width: the export needs its identity-slice Dense.
    model = tiny_cre(kind, instructions=INSTRUCTIONS, output_dim=24, max_length=16)
    [folder] = export_checkpoint(model, tmp_path / "st")

    assert folder.path == tmp_path / "st" and folder.tasks == list(TASKS)
    assert_plain_folder(folder.path)
    settings = json.loads((folder.path / "config_sentence_transformers.json").read_text())
    assert settings["prompts"] == INSTRUCTIONS
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(folder.path), device="cpu").max_seq_length == 16
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((folder.path / "modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Dense", "Normalize"]
    texts = [*TINY_TEXTS, "python developer " * 20]  # the last one is truncated at 16 tokens
    for text_kind in ("jd", "cv"):
        got = st_vectors(folder.path, texts, text_kind)
        assert got.shape == (4, 24)
        np.testing.assert_allclose(got, cre_vectors(model, texts, text_kind, "jd-cv"), atol=1e-5)
    assert "jd" in (folder.path / "README.md").read_text()


def test_task_adapters_get_one_folder_each_plus_the_shared_weights(tiny_cre, tmp_path):
    model = tiny_cre("encoder")
    add_random_adapter(model, VALUE)
    folders = export_checkpoint(model, tmp_path / "out")

    assert [(f.name, f.tasks) for f in folders] == [("jd-cv", ["jd-cv"]), ("shared", ["jd-jd", "title"])]
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"jd-cv", "shared", "README.md"}
    vectors = {}
    for folder in folders:
        assert_plain_folder(folder.path)
        exported = st_vectors(folder.path, TINY_TEXTS, "cv")
        for task in folder.tasks:  # the shared folder serves every task without an adapter
            vectors[task] = exported
            np.testing.assert_allclose(exported, cre_vectors(model, TINY_TEXTS, "cv", task), atol=1e-5)
        assert f"task(s): {', '.join(folder.tasks)}" in (folder.path / "README.md").read_text()
    assert not np.allclose(vectors["jd-cv"], vectors["jd-jd"], atol=1e-3)  # the adapter really is merged

    [single] = export_checkpoint(model, tmp_path / "one", task="jd-cv")
    assert single.path == tmp_path / "one" and single.tasks == ["jd-cv"]
    np.testing.assert_allclose(st_vectors(single.path, TINY_TEXTS, "cv"), vectors["jd-cv"], atol=1e-6)


def test_an_identity_cnn_is_exported_and_a_trained_one_refused(tiny_cre, tmp_path):
    model = tiny_cre("encoder", cnn={"enabled": True})  # zero fusion until trained: the identity
    [folder] = export_checkpoint(model, tmp_path / "identity")
    np.testing.assert_allclose(
        st_vectors(folder.path, TINY_TEXTS, "jd"), cre_vectors(model, TINY_TEXTS, "jd", "jd-cv"), atol=1e-5
    )
    with torch.no_grad():
        model.cnn.fusion.weight[0, 0] = 0.5
    with pytest.raises(
        ExportError,
        match="CNN projection used by task.s. jd-jd, jd-cv, title is enabled and not the identity",
    ):
        export_checkpoint(model, tmp_path / "trained")
    assert not (tmp_path / "trained").exists()  # refused before anything is written


def test_a_grafted_adapter_with_an_identity_cnn_exports_its_task_only(tiny_cre, tmp_path):
    # The host's trained CNN serves jd-jd; the jd-cv adapter brings an identity CNN of its own.
    model = tiny_cre("encoder", cnn={"enabled": True})
    with torch.no_grad():
        model.cnn.fusion.weight.normal_()
    add_random_adapter(model, VALUE)
    identity = model.task_adapters["jd-cv"]
    identity.cnn = type(model.cnn)(32, model.config.cnn["kernel_sizes"], model.config.cnn["channels"])
    with torch.no_grad():
        identity.cnn.fusion.weight.zero_()
        identity.cnn.fusion.bias.zero_()

    with pytest.raises(ExportError, match="task.s. jd-jd, title .*export another task with --task"):
        export_checkpoint(model, tmp_path / "all")
    [folder] = export_checkpoint(model, tmp_path / "jd-cv", task="jd-cv")
    np.testing.assert_allclose(
        st_vectors(folder.path, TINY_TEXTS, "cv"), cre_vectors(model, TINY_TEXTS, "cv", "jd-cv"), atol=1e-5
    )


def test_refusals_are_one_line_errors(tiny_cre, tmp_path, capsys):
    model = tiny_cre("encoder", rt={"iterations": 1})
    with pytest.raises(ExportError, match=r"RT is on \(config.rt.iterations = 1\)"):
        export_checkpoint(model, tmp_path / "rt")
    model.save_pretrained(tmp_path / "ckpt-rt")
    assert main([str(tmp_path / "ckpt-rt"), str(tmp_path / "rt")]) == 2
    [error] = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert error.startswith("error: RT is on")  # one line, no traceback

    plain = tiny_cre("encoder")
    with pytest.raises(ExportError, match="--quantize applies to --format onnx only"):
        export_checkpoint(plain, tmp_path / "q", quantize="int8")
    with pytest.raises(ExportError, match="unknown task 'jd-xx'"):
        export_checkpoint(plain, tmp_path / "t", task="jd-xx")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="exists and is not empty"):
        export_checkpoint(plain, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert "is not a CRE checkpoint folder" in capsys.readouterr().err


def test_rerank_features_are_not_carried_and_the_export_says_so(tiny_cre, tmp_path):
    model = tiny_cre("encoder", boundary={"enabled": True, "trained": True}, feedback={"top_k": 3})
    with pytest.warns(
        UserWarning, match="BoundaryHead .* and candidate feedback .* are not carried"
    ) as caught:
        [folder] = export_checkpoint(model, tmp_path / "st")
    assert len([w for w in caught if "not carried" in str(w.message)]) == 1
    readme = (folder.path / "README.md").read_text()
    assert "BoundaryHead (s = cos − 0.3·s_boundary)" in readme and "candidate feedback (top_k 3" in readme
    assert json.loads((folder.path / "cre_export.json").read_text())["not_carried"]


def test_cli_writes_a_checkpoint_folder(tiny_cre, tmp_path, capsys):
    model = tiny_cre("decoder", instructions=INSTRUCTIONS)
    model.save_pretrained(tmp_path / "ckpt")
    assert main([str(tmp_path / "ckpt"), str(tmp_path / "st"), "--format", "sentence-transformers"]) == 0
    assert "for task(s) jd-jd, jd-cv" in capsys.readouterr().out
    np.testing.assert_allclose(
        st_vectors(tmp_path / "st", TINY_TEXTS, "jd"),
        cre_vectors(model, TINY_TEXTS, "jd", "jd-cv"),
        atol=1e-5,
    )


@pytest.mark.slow
def test_onnx_export_of_a_decoder_pools_the_last_token_inside_the_graph(tiny_cre, tmp_path):
    model = tiny_cre("decoder", instructions=INSTRUCTIONS, output_dim=24)
    [folder] = export_checkpoint(model, tmp_path / "onnx", format="onnx", quantize="int8")

    assert folder.files == ["model.onnx", "model_int8.onnx"]
    for kind in ("jd", "cv"):
        got = onnx_vectors(folder.path, TINY_TEXTS, kind)
        assert got.shape == (3, 24)
        np.testing.assert_allclose(got, cre_vectors(model, TINY_TEXTS, kind, "jd-cv"), atol=1e-5)
    # Dynamic axes: a batch and a length the graph was not traced with.
    one = onnx_vectors(folder.path, ["nurse " * 30], "cv")
    np.testing.assert_allclose(one, cre_vectors(model, ["nurse " * 30], "cv", "jd-cv"), atol=1e-5)


# ---------------------------------------------------------------------------- integration (real MiniLM)

# JD- and CV-like texts; the last one is longer than MiniLM's 256-token budget, so it is truncated.
REAL_TEXTS = JDS[:3] + CVS[:3] + PARITY_TEXTS[-1:]


@pytest.fixture(scope="module")
def minilm_exports(tmp_path_factory):
    """MiniLM checkpoints exported once: plain (sentence-transformers, ONNX with int8) and with a random
    jd-cv adapter (sentence-transformers; the merge is the same code for ONNX)."""
    from common.models import build_cre_model

    root = tmp_path_factory.mktemp("minilm-export")
    plain = build_cre_model("minilm")
    adapted = build_cre_model("minilm")
    for layer in (0, 3):
        add_random_adapter(adapted, f"encoder.layer.{layer}.attention.self.query", rank=4, seed=layer)
    plain.save_pretrained(root / "plain")  # the plain one goes through the command line's loader
    assert (
        main([str(root / "plain"), str(root / "plain-onnx"), "--format", "onnx", "--quantize", "int8"]) == 0
    )
    return {
        "plain": plain,
        "adapted": adapted,
        "plain-st": export_checkpoint(root / "plain", root / "plain-st"),
        "plain-onnx": root / "plain-onnx",
        "adapted-st": export_checkpoint(adapted, root / "adapted-st"),
    }


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["jd", "cv"])
def test_minilm_sentence_transformers_export_equals_cre_encode(minilm_exports, kind):
    [folder] = minilm_exports["plain-st"]
    expected = cre_vectors(minilm_exports["plain"], REAL_TEXTS, kind, "jd-cv")
    assert_cosines(st_vectors(folder.path, REAL_TEXTS, kind), expected, 0.9999)
    for folder in minilm_exports["adapted-st"]:
        exported = st_vectors(folder.path, REAL_TEXTS, kind)
        for task in folder.tasks:
            assert_cosines(exported, cre_vectors(minilm_exports["adapted"], REAL_TEXTS, kind, task), 0.9999)


@pytest.mark.integration
def test_minilm_onnx_export_equals_cre_encode_in_fp32_and_int8(minilm_exports):
    folder = minilm_exports["plain-onnx"]
    expected = cre_vectors(minilm_exports["plain"], REAL_TEXTS, "cv", "jd-cv")
    assert_cosines(onnx_vectors(folder, REAL_TEXTS, "cv"), expected, 0.9999)
    assert_cosines(onnx_vectors(folder, REAL_TEXTS, "cv", "model_int8.onnx"), expected, 0.99)
    assert (folder / "model_int8.onnx").stat().st_size < (folder / "model.onnx").stat().st_size / 2
