"""The development suite: which benchmarks decide, by which metric, and the rule that accepts a recipe.

A recipe change is judged by ONE number, the suite's macro average: for each benchmark of
:data:`SUITE`, the main metric of the model minus that of its reference (by default the zero-shot
backbone the model was trained from, :func:`zero_shot_reference`), averaged over the benchmarks with
equal weight. Its 95 % interval comes from a paired bootstrap: each replicate resamples every
benchmark's queries independently (with replacement, the same draw for model and reference), takes
each benchmark's mean Δ and averages them; the interval is the 2.5th–97.5th percentile of those
averages. A benchmark is *significantly worse* when its own Δ interval (from the same replicates)
lies entirely below 0. :func:`recipe_is_acceptable`: macro Δ above 0 and no benchmark significantly
worse.

Variant rows (``"model [cos−0.2·boundary]"``) exist only on the local-pool benchmarks, where the
extra term applies; on the others they take their model's plain row, which is what the variant
produces there.

Example:
    >>> [entry.name for entry in SUITE][:2], MAIN_METRICS["cvseeker"]
    (['onet', 'esco'], 'hit_rate@5')
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.backbones import is_cre_checkpoint
from eval.runner import RunResult, dense_row
from eval.stats import bootstrap_means, percentile_interval

# What a CRE training round writes beside its weights; ``base_model`` names what it started from.
TRAINING_SUMMARY = "training_summary.json"


@dataclass(frozen=True)
class SuiteBenchmark:
    """One benchmark of the suite.

    Attributes:
        name: A key of :data:`eval.benchmarks.BENCHMARKS`.
        main_metric: The per-query metric that enters the macro average.
        measures: What it tells about a model, for reports.
    """

    name: str
    main_metric: str
    measures: str


SUITE = (
    SuiteBenchmark("onet", "ndcg@10", "JD–JD: related O*NET occupations (dev split)"),
    SuiteBenchmark("esco", "ndcg@10", "JD–JD: ESCO occupations of the same ISCO group"),
    SuiteBenchmark("resumes", "recall@50", "JD→CV: O*NET-based postings, BM25 pools"),
    SuiteBenchmark("resumes-brief", "recall@50", "JD→CV: title and description only"),
    SuiteBenchmark("resumes-duties", "recall@50", "JD→CV: the other tasks and tools"),
    SuiteBenchmark("resumes-titles", "recall@50", "JD→CV: reported job titles, not the category"),
    SuiteBenchmark("cvseeker", "hit_rate@5", "recruiter questions → CV passages (unseen)"),
    SuiteBenchmark("jobnorm", "mrr@100", "vacancy titles → ESCO occupations (unseen)"),
)
MAIN_METRICS = {entry.name: entry.main_metric for entry in SUITE}


def base_row(row: str) -> str:
    """The model a results row belongs to: ``"ckpt [cos−0.2·boundary]"`` -> ``"ckpt"``.

    Example:
        >>> base_row("out/final [cos+1·feedback@3]"), base_row("minilm")
        ('out/final', 'minilm')
    """
    return row.split(" [", 1)[0]


def zero_shot_reference(spec: str) -> str:
    """The zero-shot model a model's gains are measured against.

    A CRE checkpoint names what it was trained from in ``training_summary.json`` (``base_model``);
    a chain of rounds (a checkpoint trained from another checkpoint) is followed to its backbone.
    Anything else (an alias such as ``minilm``, a sentence-transformers folder) is its own
    zero-shot reference.

    Raises:
        ValueError: A CRE checkpoint without a readable ``base_model`` (the file is named).

    Example:
        >>> zero_shot_reference("minilm")
        'minilm'
    """
    seen = []
    while Path(spec).is_dir() and is_cre_checkpoint(spec):
        if spec in seen:
            raise ValueError(f"{spec}: base_model chain loops back on itself ({' -> '.join(seen)})")
        seen.append(spec)
        path = Path(spec) / TRAINING_SUMMARY
        try:
            base = json.loads(path.read_text(encoding="utf-8")).get("base_model")
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read the checkpoint's base_model ({err})") from None
        if not base:
            raise ValueError(f"{path}: no base_model; pass the reference explicitly (--suite-reference)")
        # A relative base folder is relative to where training ran; resolve beside the checkpoint too.
        beside = Path(spec).parent / str(base)
        spec = str(beside) if not Path(base).exists() and beside.is_dir() else str(base)
    return spec


def _row_on(by_key: Mapping[tuple[str, str], RunResult], row: str, benchmark: str) -> RunResult | None:
    """``row``'s result on ``benchmark``, else its model's plain row (a variant exists only on the
    benchmarks it changes: boundary and feedback on local pools, windows on recruiter questions)."""
    return by_key.get((row, benchmark)) or by_key.get((base_row(row), benchmark))


def suite_contrast(
    results: Sequence[RunResult],
    model: str,
    reference: str,
    suite: Sequence[SuiteBenchmark] = SUITE,
    samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Per-benchmark Δ of the main metric (``model`` − ``reference``) and the macro average, with CIs.

    Args:
        results: Rows of a comparison (per-query scores included).
        model: Row name of the model (or variant) judged.
        reference: Row name it is measured against.
        suite: The benchmarks and main metrics.
        samples: Bootstrap replicates.
        confidence: Interval width.
        seed: RNG seed, so reports are reproducible.

    Returns:
        ``{"model", "reference", "benchmarks": {name: {"metric", "model_score", "reference_score",
        "delta", "ci_low", "ci_high", "significantly_worse", "n_queries"}}, "macro": {"delta",
        "ci_low", "ci_high"} or None, "missing": [names], "acceptable": bool}``. A benchmark either
        row lacks is listed in ``missing``; the macro average then covers only the others and the
        recipe is not acceptable (a partial average is not the suite's).

    Raises:
        ValueError: The two rows were scored on different queries of a benchmark.
        KeyError: A benchmark's results lack its main metric.

    Example:
        >>> contrast = suite_contrast(results, "out/final", "minilm")  # doctest: +SKIP
        >>> contrast["macro"]["delta"], recipe_is_acceptable(contrast)  # doctest: +SKIP
        (0.012, True)
    """
    by_key = {(r.model, r.benchmark): r for r in results}
    rng = np.random.default_rng(seed)
    per_benchmark, replicates, missing = {}, [], []
    for entry in suite:
        ours, theirs = _row_on(by_key, model, entry.name), _row_on(by_key, reference, entry.name)
        if ours is None or theirs is None:
            missing.append(entry.name)
            continue
        if ours.query_ids != theirs.query_ids:
            raise ValueError(f"{model} and {reference} were scored on different queries of {entry.name}")
        if entry.main_metric not in ours.per_query:
            raise KeyError(
                f"{entry.name}: main metric {entry.main_metric!r} not among {sorted(ours.per_query)}"
            )
        diff = ours.per_query[entry.main_metric] - theirs.per_query[entry.main_metric]
        means = bootstrap_means(diff, samples, rng)
        low, high = percentile_interval(means, confidence)
        replicates.append(means)
        per_benchmark[entry.name] = {
            "metric": entry.main_metric,
            "model_score": float(ours.per_query[entry.main_metric].mean()),
            "reference_score": float(theirs.per_query[entry.main_metric].mean()),
            "delta": float(diff.mean()),
            "ci_low": low,
            "ci_high": high,
            "significantly_worse": high < 0,
            "n_queries": int(diff.size),
        }
    macro = None
    if per_benchmark:
        low, high = percentile_interval(np.mean(replicates, axis=0), confidence)
        macro = {
            "delta": float(np.mean([b["delta"] for b in per_benchmark.values()])),
            "ci_low": low,
            "ci_high": high,
        }
    contrast = {
        "model": model,
        "reference": reference,
        "benchmarks": per_benchmark,
        "macro": macro,
        "missing": missing,
    }
    contrast["acceptable"] = recipe_is_acceptable(contrast)
    return contrast


def average_rows(results: Sequence[RunResult], rows: Sequence[str], name: str) -> list[RunResult]:
    """One row ``name`` whose per-query scores are the mean over ``rows`` (e.g. a recipe's seeds), on the
    benchmarks every one of them was scored on (a variant row by its model's plain row where the variant
    does not exist, as in :func:`suite_contrast`).

    A recipe is judged by its mean over seeds: the contrast of this row with a reference is the mean of
    the seeds' contrasts, and its bootstrap interval (over queries) reflects the queries, not the seeds.

    Raises:
        ValueError: A row is missing, or two rows were scored on different queries of a benchmark.

    Example:
        >>> a = RunResult("s0", "b", {}, {"m": np.array([1.0, 0.0])}, ["q1", "q2"])
        >>> b = RunResult("s1", "b", {}, {"m": np.array([0.0, 0.0])}, ["q1", "q2"])
        >>> mean = average_rows([a, b], ["s0", "s1"], "seeds")[0]
        >>> mean.model, mean.per_query["m"].tolist(), mean.metrics
        ('seeds', [0.5, 0.0], {'m': 0.25})
    """
    by_key = {(r.model, r.benchmark): r for r in results}
    unknown = [row for row in rows if not any(r.model == row for r in results)]
    if unknown:
        raise ValueError(f"no rows {unknown} to average")
    averaged = []
    for benchmark in dict.fromkeys(r.benchmark for r in results):
        members = [_row_on(by_key, row, benchmark) for row in rows]
        if any(member is None for member in members):
            continue
        if any(member.query_ids != members[0].query_ids for member in members):
            raise ValueError(f"{', '.join(rows)} were scored on different queries of {benchmark}")
        per_query = {
            metric: np.mean([member.per_query[metric] for member in members], axis=0)
            for metric in members[0].per_query
        }
        metrics = {metric: float(values.mean()) for metric, values in per_query.items()}
        averaged.append(RunResult(name, benchmark, metrics, per_query, members[0].query_ids))
    return averaged


def recipe_is_acceptable(contrast: Mapping) -> bool:
    """The suite's rule: the macro Δ is above 0 and no benchmark is significantly worse.

    Judged on the whole suite only: a contrast that misses a benchmark is never acceptable.

    Example:
        >>> recipe_is_acceptable({"macro": {"delta": 0.01}, "missing": [],
        ...                       "benchmarks": {"onet": {"significantly_worse": False}}})
        True
    """
    if contrast["missing"] or contrast["macro"] is None:
        return False
    worse = any(b["significantly_worse"] for b in contrast["benchmarks"].values())
    return contrast["macro"]["delta"] > 0 and not worse


def suite_contrasts(
    results: Sequence[RunResult],
    references: Mapping[str, str],
    suite: Sequence[SuiteBenchmark] = SUITE,
    samples: int = 10_000,
) -> list[dict]:
    """Every model row against its model's reference; every variant row against its plain row, and
    every hybrid row (``"<row> + bm25 (rrf)"``) against the dense row it fuses with BM25.

    Args:
        results: Rows of a comparison.
        references: Model spec -> the row it is measured against (models without one, such as BM25,
            and models that are their own reference get no "vs reference" contrast).
        suite: The benchmarks and main metrics.
        samples: Bootstrap replicates.
    """
    contrasts = []
    for row in dict.fromkeys(r.model for r in results):
        model, dense = base_row(row), dense_row(row)
        reference = references.get(dense_row(model))
        if reference is not None and reference != row:
            contrasts.append(suite_contrast(results, row, reference, suite, samples))
        if dense not in (row, reference):
            contrasts.append(suite_contrast(results, row, dense, suite, samples))
        elif row != model and model != reference:  # else the same contrast as against the reference
            contrasts.append(suite_contrast(results, row, model, suite, samples))
    return contrasts


def markdown_suite(contrasts: Sequence[Mapping], main_metrics: Mapping[str, str] = MAIN_METRICS) -> str:
    """The suite table: one line per contrast, Δ of each main metric with its CI, the macro average.

    A ``▼`` marks a benchmark significantly worse; the last column applies :func:`recipe_is_acceptable`.
    """
    names = list(main_metrics)
    lines = [
        "### Development suite: Δ of each main metric vs the reference (95 % CI), macro average",
        "",
        "Main metrics: " + ", ".join(f"{name} {metric}" for name, metric in main_metrics.items()) + ".",
        "",
        "| model | reference | " + " | ".join(names) + " | macro Δ | acceptable |",
        "|---|---|" + "---:|" * len(names) + "---:|:---:|",
    ]
    for contrast in contrasts:
        cells = []
        for name in names:
            b = contrast["benchmarks"].get(name)
            if b is None:
                cells.append("–")
                continue
            mark = " ▼" if b["significantly_worse"] else ""
            cells.append(f"{b['delta']:+.4f} [{b['ci_low']:+.4f}, {b['ci_high']:+.4f}]{mark}")
        macro = contrast["macro"]
        macro_cell = (
            f"{macro['delta']:+.4f} [{macro['ci_low']:+.4f}, {macro['ci_high']:+.4f}]" if macro else "–"
        )
        lines.append(
            f"| {contrast['model']} | {contrast['reference']} | "
            + " | ".join(cells)
            + f" | {macro_cell} | {'yes' if contrast['acceptable'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def results_from_report(report: Mapping) -> list[RunResult]:
    """Rebuild the rows of a saved ``eval compare`` report (written with ``--per-query``), so that
    contrasts between any two rows need no re-encoding.

    Raises:
        ValueError: A row has no per-query scores (the report was written without ``--per-query``).
    """
    results = []
    for model, per_benchmark in report["models"].items():
        for benchmark, entry in per_benchmark.items():
            if "per_query" not in entry:
                raise ValueError(
                    f"{model} on {benchmark}: no per-query scores; rerun compare with --per-query"
                )
            per_query = entry["per_query"]
            query_ids = sorted(next(iter(per_query.values())))
            scores = {m: np.array([values[q] for q in query_ids]) for m, values in per_query.items()}
            results.append(RunResult(model, benchmark, entry["metrics"], scores, query_ids, entry["seconds"]))
    return results


def references_for(specs: Sequence[str], override: str | os.PathLike | None = None) -> dict[str, str]:
    """Model spec -> its reference row: ``override`` for every model, else :func:`zero_shot_reference`."""
    return {spec: str(override) if override else zero_shot_reference(spec) for spec in specs}
