"""Compare models side by side: one table (markdown + JSON) with 95 % CIs, Recall@K curves, paired
bootstrap tests, and the development suite's macro average (:mod:`eval.suite`).

Results JSON (what the model card reads), ``schema_version`` 1::

    {
      "schema_version": 1,
      "created": "2026-11-27T14:00:00+00:00",           # UTC, ISO 8601
      "settings": {"max_length": 256, "batch_size": 32, "pool_size": 100, "boundary_weight": null,
                   "feedback": null,                     # [k, w] given for every model, or null
                   "hybrid": {"rrf_k": 60, "depth": 100},  # compare --hybrid, else null
                   "reference": "minilm", "bootstrap_samples": 10000, "torch_threads": 2},
      "benchmarks": {
        "<benchmark>": {"protocol": "global" | "local", "queries": int, "corpus": int,
                        "metrics": {"ndcg": [10], ...}, "min_gain": float, "notes": {...},
                        "skipped": {"<reason>": int}}
      },
      "models": {
        "<row name>": {                                  # a model, a variant (λ / feedback row), or
                                                         # a hybrid twin "<model> + bm25 (rrf)[ [...]]"
          "<benchmark>": {"metrics": {"ndcg@10": float, ...}, "seconds": float, "texts_encoded": int,
                          "ci": {"ndcg@10": [low, high]},  # 95 % bootstrap CI over queries
                          "per_query": {"ndcg@10": {"<query id>": float}}}   # only with per_query=True
        }
      },
      "load_seconds": {"<model spec>": float},
      "comparisons": [                                   # each row vs the reference, every metric
        {"benchmark": str, "metric": str, "model": str, "reference": str, "mean_diff": float,
         "ci_low": float, "ci_high": float, "p_value": float, "n_queries": int}
      ],
      "failures": {"<model spec or benchmark>": "<error message>"},
      "suite": {                                          # eval.suite; absent when not computed
        "benchmarks": {"<benchmark>": "<main metric>"},
        "contrasts": [{"model": str, "reference": str, "acceptable": bool, "missing": [str],
                       "macro": {"delta": float, "ci_low": float, "ci_high": float},
                       "benchmarks": {"<benchmark>": {"metric": str, "model_score": float,
                                      "reference_score": float, "delta": float, "ci_low": float,
                                      "ci_high": float, "significantly_worse": bool,
                                      "n_queries": int}}}]
      }
    }

Example (the command line chains :func:`run_models`, :func:`paired_comparisons`, :func:`build_report`
and :func:`write_report`)::

    python -m eval compare --models minilm mpnet --benchmarks onet --out eval/results
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from eval.benchmarks import Benchmark
from eval.runner import RRF_DEPTH, RunResult, bm25_rankings, evaluate, evaluate_bm25
from eval.stats import mean_interval, paired_bootstrap
from eval.suite import MAIN_METRICS, markdown_suite

logger = logging.getLogger(__name__)
SCHEMA_VERSION = 1


def run_models(
    specs: Sequence[str],
    benchmarks: Sequence[Benchmark],
    load: Callable[[str], object],
    boundary_weight: float | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
    feedback: tuple[int, float] | None = None,
    bm25: bool = False,
    hybrid: bool = False,
    windows: str | None = None,
) -> tuple[list[RunResult], dict[str, float], dict[str, str]]:
    """Evaluate each model on each benchmark, loading one model at a time to bound memory.

    A model that fails to load is recorded in the failures and the others still run. ``feedback``
    ``(k, w)`` applies candidate feedback to every model's local pools (``None``: each model's own).
    Local pools always get the BM25 pool-order row; ``bm25`` adds a BM25 row on global benchmarks.
    ``hybrid`` gives every model row a twin fused with BM25 by reciprocal rank
    (:func:`eval.runner.hybrid_row`); BM25 runs once per benchmark for both. ``windows`` (a scheme of
    :data:`common.windows.SCHEMES`) adds each model's ``[windows <scheme>]`` row on global benchmarks of
    CVs (:func:`eval.runner.evaluate`).

    Returns:
        ``(results, load_seconds per spec, failures per spec)``.
    """
    lexical = {
        b.name: bm25_rankings(b, max(b.top_k, RRF_DEPTH))
        for b in benchmarks
        if hybrid or bm25 or b.protocol == "local"
    }
    results = [
        evaluate_bm25(b, rankings=lexical[b.name]) for b in benchmarks if bm25 or b.protocol == "local"
    ]
    load_seconds, failures = {}, {}
    for spec in specs:
        start = time.perf_counter()
        try:
            encoder = load(spec)
        except Exception as err:  # noqa: BLE001 - one broken model must not sink a whole comparison
            failures[spec] = f"{type(err).__name__}: {err}"
            logger.error("could not load %s: %s", spec, failures[spec])
            continue
        load_seconds[spec] = time.perf_counter() - start
        for benchmark in benchmarks:
            logger.info("evaluating %s on %s", spec, benchmark.name)
            rows = evaluate(
                encoder,
                benchmark,
                boundary_weight,
                batch_size,
                show_progress,
                feedback,
                lexical[benchmark.name] if hybrid else None,
                windows,
            )
            results.extend(rows)
            logger.info("%s on %s: %.1f s, %s", spec, benchmark.name, rows[0].seconds, rows[0].metrics)
        del encoder
        gc.collect()
    return results, load_seconds, failures


def paired_comparisons(
    results: Sequence[RunResult], reference: str, samples: int = 10_000
) -> list[dict[str, float | str]]:
    """Every row against ``reference`` on every benchmark and metric both have."""
    by_key = {(r.model, r.benchmark): r for r in results}
    comparisons = []
    for result in results:
        base = by_key.get((reference, result.benchmark))
        if base is None or result.model == reference:
            continue
        if base.query_ids != result.query_ids:
            raise ValueError(
                f"{result.model} and {reference} were scored on different queries of {result.benchmark}"
            )
        for metric, scores in result.per_query.items():
            test = paired_bootstrap(scores, base.per_query[metric], samples=samples)
            comparisons.append(
                {
                    "benchmark": result.benchmark,
                    "metric": metric,
                    "model": result.model,
                    "reference": reference,
                    **test,
                }
            )
    return comparisons


def build_report(
    results: Sequence[RunResult],
    benchmarks: Sequence[Benchmark],
    settings: dict,
    load_seconds: dict[str, float],
    failures: dict[str, str],
    comparisons: list[dict],
    per_query: bool = False,
    suite: list[dict] | None = None,
    samples: int = 10_000,
) -> dict:
    """Assemble the results JSON (schema in the module docstring).

    Args:
        suite: :func:`eval.suite.suite_contrasts` output, stored under ``"suite"`` when given.
        samples: Bootstrap replicates of each metric's CI.
    """
    models: dict[str, dict] = {}
    for r in results:
        entry = {
            "metrics": r.metrics,
            "seconds": round(r.seconds, 2),
            "texts_encoded": r.texts_encoded,
            "ci": {m: list(mean_interval(scores, samples)) for m, scores in r.per_query.items()},
        }
        if per_query:
            entry["per_query"] = {
                m: dict(zip(r.query_ids, map(float, scores), strict=True))
                for m, scores in r.per_query.items()
            }
        models.setdefault(r.model, {})[r.benchmark] = entry
    report = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "benchmarks": {
            b.name: {
                "protocol": b.protocol,
                "queries": b.dataset.num_judged_queries,
                "corpus": len(b.dataset.corpus),
                "metrics": b.metrics,
                "min_gain": b.min_gain,
                "notes": b.notes,
                "skipped": {reason: len(ids) for reason, ids in b.dataset.skipped.items()},
            }
            for b in benchmarks
        },
        "models": models,
        "load_seconds": {spec: round(s, 2) for spec, s in load_seconds.items()},
        "comparisons": comparisons,
        "failures": failures,
    }
    if suite is not None:
        names = {b.name for b in benchmarks}
        report["suite"] = {
            "benchmarks": {name: metric for name, metric in MAIN_METRICS.items() if name in names},
            "contrasts": suite,
        }
    return report


def markdown_table(report: dict) -> str:
    """One table per benchmark (rows = models, columns = metrics, the 95 % CI of its main metric),
    then the development suite, timings and significance."""
    lines = []
    for name, info in report["benchmarks"].items():
        columns = [f"{m}@{k}" for m, cutoffs in info["metrics"].items() for k in cutoffs]
        main = MAIN_METRICS.get(name, columns[0])
        rows = [(model, per[name]) for model, per in report["models"].items() if name in per]
        lines += [
            f"### {name} ({info['protocol']} pool, {info['queries']} queries, {info['corpus']} documents)",
            "",
            "| model | " + " | ".join(columns) + f" | {main} 95% CI | seconds |",
            "|---|" + "---:|" * (len(columns) + 2),
        ]
        for model, entry in rows:
            cells = [f"{entry['metrics'][c]:.4f}" for c in columns]
            low, high = entry["ci"][main]
            cells.append(f"[{low:.4f}, {high:.4f}]")
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {entry['seconds']:.1f} |")
        lines.append("")
    if report.get("suite"):
        lines += [markdown_suite(report["suite"]["contrasts"], report["suite"]["benchmarks"]), ""]
    significant = [c for c in report["comparisons"] if c["p_value"] < 0.05]
    if report["comparisons"]:
        lines += [
            f"Paired tests against `{report['comparisons'][0]['reference']}`: "
            f"{len(significant)} of {len(report['comparisons'])} differences have p < 0.05.",
            "",
            "| benchmark | metric | model | Δ mean | 95% CI | p |",
            "|---|---|---|---:|---|---:|",
        ]
        lines += [
            f"| {c['benchmark']} | {c['metric']} | {c['model']} | {c['mean_diff']:+.4f} "
            f"| [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['p_value']:.4f} |"
            for c in report["comparisons"]
        ]
        lines.append("")
    for spec, error in report["failures"].items():
        lines.append(f"- **{spec}** failed: {error}")
    return "\n".join(lines).rstrip() + "\n"


def plot_recall_curves(report: dict, out_dir: str | Path, stem: str = "results") -> list[Path]:
    """A Recall@K curve per benchmark that reports recall at two or more cut-offs (PNG files)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers
    import matplotlib.pyplot as plt

    paths = []
    for name, info in report["benchmarks"].items():
        cutoffs = info["metrics"].get("recall", [])
        if len(cutoffs) < 2:
            continue
        figure, axis = plt.subplots(figsize=(6, 4))
        for model, per in report["models"].items():
            if name in per:
                axis.plot(
                    cutoffs, [per[name]["metrics"][f"recall@{k}"] for k in cutoffs], marker="o", label=model
                )
        axis.set(xlabel="K (review budget)", ylabel="Recall@K", title=f"{name}: Recall@K", ylim=(0, 1))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        path = Path(out_dir) / f"{stem}_recall_{name}.png"
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        paths.append(path)
    return paths


def write_report(report: dict, out_dir: str | Path, stem: str = "results") -> list[Path]:
    """Write ``{stem}.json``, ``{stem}.md`` and the Recall@K plots into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(markdown_table(report), encoding="utf-8")
    return [json_path, md_path, *plot_recall_curves(report, out, stem)]
