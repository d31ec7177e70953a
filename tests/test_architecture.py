"""The layers in docs/architecture.md match the imports, and every layering rule holds without exception."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("layers", ROOT / "scripts" / "layers.py")
layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layers)


def test_the_architecture_doc_shows_the_imports_as_they_are():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    shown = text.split("<!-- layers:begin -->\n", 1)[1].split("\n<!-- layers:end -->", 1)[0]
    assert shown == layers.render(layers.layer_edges(layers.project_imports())), (
        "docs/architecture.md is out of date: paste the output of `python scripts/layers.py`"
    )


def test_dependencies_run_one_way_without_exception():
    graph = layers.project_imports()
    edges = layers.layer_edges(graph)
    broken = {
        f"{layer} -> {other}": edges[(layer, other)]
        for layer, other in layers.FORBIDDEN
        if (layer, other) in edges
    }
    assert not broken, f"imports against the layering rules: {broken}"
    assert graph["modeling_cre"] == {"configuration_cre"}
    assert {layers.layer_of(module) for module in graph} >= set(layers.ORDER)  # every layer is scanned


def test_layer_edges_name_the_importing_modules(tmp_path):
    (tmp_path / "train" / "synth").mkdir(parents=True)
    (tmp_path / "eval").mkdir()
    (tmp_path / "train" / "synth" / "stages.py").write_text("import os\n")
    (tmp_path / "train" / "r9.py").write_text("from train.synth.stages import x\n")
    (tmp_path / "eval" / "m.py").write_text("def f():\n    from train import r9\n")
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "chat.py").write_text("from train.synth import stages\n")
    for name in ("configuration_cre.py", "modeling_cre.py", "cre.py"):
        (tmp_path / name).write_text(
            "from .configuration_cre import CREConfig\n" if name == "modeling_cre.py" else ""
        )
    (tmp_path / "bench").mkdir()
    graph = layers.project_imports(tmp_path)
    assert graph["eval.m"] == {"train"}  # imports inside functions count too
    edges = layers.layer_edges(graph)
    assert edges[("training", "synthesis")] == ["train.r9 -> train.synth.stages"]
    assert edges[("evaluation", "training")] == ["eval.m -> train"]
    assert edges[("common", "synthesis")] == ["common.chat -> train.synth"]
    rendered = layers.render(edges)
    assert "evaluation never imports training     1\n    eval.m -> train" in rendered
    assert "common never imports synthesis        1\n    common.chat -> train.synth" in rendered
    assert "checkpoint never imports common       none" in rendered
