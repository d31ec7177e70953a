"""The project's layers and which imports which, read from the source with ``ast``.

``python scripts/layers.py`` prints the block that ``docs/architecture.md`` shows between its
``layers:begin`` and ``layers:end`` markers; ``tests/test_architecture.py`` checks the two agree and
that the layering rules hold.

The rule: dependencies run one way. The checkpoint code imports no other layer; ``common`` (what
the others share) imports only the checkpoint code; synthesis never imports training or evaluation;
evaluation never imports synthesis or training; training may import evaluation (the main job
evaluates its rounds); only the benchmarks import the CV search application (``cvsearch``).

Example:
    >>> layer_of("train.synth.rules"), layer_of("train.r2"), layer_of("cre.modeling_cre"), layer_of("common.chat")
    ('synthesis', 'training', 'checkpoint', 'common')
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Most specific prefix first: train.synth is synthesis, the rest of train is training.
LAYERS = {
    "synthesis": ("train.synth",),
    "training": ("train",),
    "evaluation": ("eval",),
    "cvsearch": ("cvsearch",),
    "benchmarks": ("bench",),
    "checkpoint": ("cre", "configuration_cre", "modeling_cre"),
    "common": ("common",),
}
SOURCES = (
    "common",
    "train",
    "eval",
    "cvsearch",
    "bench",
    "configuration_cre.py",
    "modeling_cre.py",
    "cre.py",
)


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name (``None``: outside the project)."""
    for layer, prefixes in LAYERS.items():
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return layer
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name of the module at ``path`` below ``root``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (at the top or inside functions)."""
    graph: dict[str, set[str]] = {}
    paths = [
        p
        for source in SOURCES
        for p in ([root / source] if source.endswith(".py") else (root / source).rglob("*.py"))
    ]
    for path in sorted(paths):
        name = module_name(path, root)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
            elif isinstance(node, ast.ImportFrom) and node.level:  # modeling_cre's relative config import
                imported.add("configuration_cre" if node.module == "configuration_cre" else name)
        graph[name] = {module for module in imported if layer_of(module) and module != name}
    return graph


def layer_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """``(layer, imported layer)`` -> the ``module -> module`` imports that make the edge."""
    edges = defaultdict(list)
    for module, imported in graph.items():
        for other in sorted(imported):
            if layer_of(module) != layer_of(other):
                edges[(layer_of(module), layer_of(other))].append(f"{module} -> {other}")
    return dict(edges)


ORDER = ["checkpoint", "common", "synthesis", "training", "evaluation", "cvsearch", "benchmarks"]
# (layer, layer it must not import): the rules, with any exceptions listed by render().
FORBIDDEN = [
    *[("checkpoint", other) for other in ORDER[1:]],
    *[("common", other) for other in ORDER[2:]],
    *[("synthesis", other) for other in ORDER[3:]],
    ("evaluation", "synthesis"),
    ("evaluation", "training"),
    *[("evaluation", other) for other in ORDER[5:]],
    *[("training", other) for other in ORDER[5:]],
    ("cvsearch", "benchmarks"),
]


def render(edges: dict[tuple[str, str], list[str]]) -> str:
    """The text diagram: each layer and the layers it imports, then each rule's exceptions today."""
    lines = ["```text", "layer        imports"]
    for layer in ORDER:
        imported = [other for other in ORDER if (layer, other) in edges]
        lines.append(f"{layer:<12} {', '.join(imported) or '-'}")
    lines += ["", "rule                                  exceptions"]
    for layer, other in FORBIDDEN:
        modules = edges.get((layer, other), [])
        lines.append(f"{f'{layer} never imports {other}':<37} {len(modules) or 'none'}")
        lines += [f"    {module}" for module in modules]
    lines.append("```")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render(layer_edges(project_imports())) + "\n")
