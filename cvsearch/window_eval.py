"""Measure window scoring on the development résumé benchmarks (``python -m cvsearch.window_eval``).

Every résumé of the ``resumes`` benchmarks is cut into windows (:mod:`cvsearch.windows`) and each
window encoded once; each JD wording (``resumes``, ``resumes-brief``, ``resumes-duties``,
``resumes-titles``) then ranks its BM25 pool by every scheme, and Recall@50 per scheme is reported
with a 95 % bootstrap interval over the JDs and the paired difference to ``first`` (truncation).
Only ids, counts and metrics are written: résumé text never leaves memory.

Example:
    >>> results = measure("minilm")  # doctest: +SKIP
    >>> write_results(results, "eval/results/windows_minilm")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from common.windows import window_weights
from cvsearch.encoding import load_model
from cvsearch.parsing import Document
from cvsearch.windows import Windows, expand
from eval.benchmarks import RESUME_BENCHMARKS, load_benchmark
from eval.metrics import recall_at_k
from eval.stats import paired_bootstrap

# (label, scheme, weight): the schemes, and first+max at a few weights to show how sensitive it is.
VARIANTS = [("first", "first", 0.0), ("mean", "mean", 0.0), ("max", "max", 0.0)] + [
    (f"first+max w={w}", "first+max", w) for w in (0.25, 0.5, 1.0)
]
K = 50


def measure(
    model_spec: str = "minilm", data_dir: str | None = None, stride: int | None = None
) -> dict[str, Any]:
    """Recall@50 per scheme and JD wording (see the module docstring)."""
    model = load_model(model_spec)
    benchmarks = {name: load_benchmark(name, data_dir) for name in RESUME_BENCHMARKS}
    corpus = next(iter(benchmarks.values())).dataset.corpus
    documents = [Document(doc_id, text, doc_id) for doc_id, text in corpus.items()]
    windows = Windows(stride=stride)
    rows, long_documents = expand(model, documents, "cv", windows)
    texts = [row.text for row in rows]
    started = time.perf_counter()
    vectors = model.encode(texts, kind="cv", task="jd-cv", normalize=True, show_progress=True)
    all_seconds = time.perf_counter() - started
    first_rows = [i for i, row in enumerate(rows) if row.chunk == 0]
    started = time.perf_counter()
    model.encode([texts[i] for i in first_rows], kind="cv", task="jd-cv", normalize=True)
    first_seconds = time.perf_counter() - started
    positions: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        positions.setdefault(row.id, []).append(i)
    size, stride_tokens = windows.resolve(model, "cv")
    counts = np.array([len(p) for p in positions.values()])
    results: dict[str, Any] = {
        "model": model_spec,
        "window_tokens": size,
        "stride_tokens": stride_tokens,
        "resumes": len(documents),
        "resumes_longer_than_one_window": int(long_documents),
        "windows_per_cv": {
            "mean": float(counts.mean()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
        },
        "encode_seconds": {"first_window": first_seconds, "all_windows": all_seconds},
        "encode_time_ratio": all_seconds / first_seconds,
        "benchmarks": {},
    }
    for name, bench in benchmarks.items():
        queries = list(bench.dataset.queries)
        jd_vectors = model.encode(
            [bench.dataset.queries[q] for q in queries], kind="jd", task="jd-cv", normalize=True
        )
        per_variant = {}
        for label, scheme, weight in VARIANTS:
            recalls = []
            for query, jd_vector in zip(queries, jd_vectors, strict=True):
                pool = bench.pools[query]
                scores = [
                    float(window_weights(s := vectors[positions[d]] @ jd_vector, scheme, weight) @ s)
                    for d in pool
                ]
                ranking = [pool[i] for i in np.argsort(scores, kind="stable")[::-1]]
                recalls.append(recall_at_k(ranking, bench.dataset.qrels[query], K))
            per_variant[label] = np.array(recalls)
        results["benchmarks"][name] = {
            label: {
                "recall@50": float(values.mean()),
                "ci95": _ci(values),
                "vs_first": paired_bootstrap(values, per_variant["first"]) if label != "first" else None,
            }
            for label, values in per_variant.items()
        }
        results["benchmarks"][name]["_queries"] = len(queries)
    return results


def _ci(values: np.ndarray) -> list[float]:
    """95 % bootstrap interval of the mean (the paired bootstrap against zero is the plain one)."""
    interval = paired_bootstrap(values, np.zeros_like(values))
    return [interval["ci_low"], interval["ci_high"]]


def write_results(results: dict[str, Any], stem: str | Path) -> None:
    """``stem.json`` (everything) and ``stem.md`` (the table and the cost)."""
    stem = Path(stem)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    names = list(results["benchmarks"])
    lines = [
        f"# Long résumés: window scoring, zero-shot `{results['model']}`",
        "",
        f"Written by `python -m cvsearch.window_eval`. {results['resumes']} deduplicated résumés "
        f"({results['resumes_longer_than_one_window']} longer than one window), windows of "
        f"{results['window_tokens']} tokens every {results['stride_tokens']} tokens; each JD reranks its BM25 "
        "pool of 100 (the benchmarks' local protocol). Recall@50 with a 95 % bootstrap interval over the "
        "25 JDs; Δ = paired difference to `first` (truncation) with its interval and sign-flip p.",
        "",
        "| scheme | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, _, _ in VARIANTS:
        cells = []
        for name in names:
            cell = results["benchmarks"][name][label]
            text = f"{cell['recall@50']:.3f} [{cell['ci95'][0]:.3f}, {cell['ci95'][1]:.3f}]"
            if cell["vs_first"]:
                diff = cell["vs_first"]
                text += f"<br>Δ {diff['mean_diff']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}] p={diff['p_value']:.2f}"
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    per_cv = results["windows_per_cv"]
    seconds = results["encode_seconds"]
    lines += [
        "",
        f"Cost: {per_cv['mean']:.1f} windows per résumé on average (median {per_cv['median']:.0f}, "
        f"max {per_cv['max']}); encoding every window took {seconds['all_windows']:.1f} s against "
        f"{seconds['first_window']:.1f} s for the first windows only (× {results['encode_time_ratio']:.1f}), "
        "and the index holds that many more vectors.",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    """Command line: ``--model``, ``--data-dir``, ``--stride``, ``--out`` (a path stem)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data-dir")
    parser.add_argument("--stride", type=int)
    parser.add_argument("--out", default="eval/results/windows_minilm")
    args = parser.parse_args()
    results = measure(args.model, args.data_dir, args.stride)
    write_results(results, args.out)
    print(Path(args.out).with_suffix(".md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
