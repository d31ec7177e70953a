"""Benchmark: CRE-T1 on the decoder recipe: last-token versus ``<embtoken>`` pooling, each with and
without reasoning before encoding (rules traces), on cheap development benchmarks; and the cost of
reasoning per query.

Reasoning expands the benchmark's queries only (:func:`with_reasoning`: each query becomes
``join_reasoning(query, trace)``, the corpus stays as it is), so any encoder runs it unchanged and
the corpus vectors come from the embedding cache. Rows are compared with paired bootstrap tests
against the first row, with 95 % CIs, as ``python -m eval compare`` does. Results go to
``bench/results/reasoning.{json,md}``.

Usage::

    python -m bench.reasoning                                  # onet + resumes, SmolLM2-135M zero-shot
    python -m bench.reasoning --benchmarks resumes --poolings last_token
    python -m bench.reasoning --models outputs/t1-last/final outputs/t1-embtoken/final --stem reasoning_trained
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from functools import partial
from pathlib import Path

import torch

from cre.modeling_cre import expand_queries
from eval.benchmarks import Benchmark, load_benchmark
from eval.compare import build_report, paired_comparisons, write_report
from eval.models import load_encoder
from eval.runner import evaluate
from train.reasoning import TraceGenerator

RESULTS = Path(__file__).resolve().parent / "results"


def with_reasoning(benchmark: Benchmark, reason: TraceGenerator) -> Benchmark:
    """The benchmark with every query expanded by its reasoning trace; documents untouched.

    Queries whose trace fails validation stay plain (one warning counts them).

    Example:
        >>> with_reasoning(load_benchmark("resumes"), TraceGenerator("rules")).dataset.queries  # doctest: +SKIP
    """
    ids = list(benchmark.dataset.queries)
    expanded = expand_queries([benchmark.dataset.queries[i] for i in ids], reason)
    dataset = dataclasses.replace(benchmark.dataset, queries=dict(zip(ids, expanded, strict=True)))
    return dataclasses.replace(benchmark, dataset=dataset)


def trace_cost(reason: TraceGenerator, queries: list[str], repeats: int = 3) -> dict[str, float]:
    """Milliseconds per query to write a trace (median of ``repeats`` passes over ``queries``), and
    the share of queries whose trace passed validation.

    Example:
        >>> trace_cost(TraceGenerator("rules"), ["Senior nurse, ICU, 5+ years of experience"])["valid_share"]
        1.0
    """
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        traces = [reason(query) for query in queries]
        passes.append((time.perf_counter() - start) * 1000 / len(queries))
    return {
        "backend": reason.identity,
        "queries": len(queries),
        "ms_per_query": round(statistics.median(passes), 3),
        "valid_share": round(sum(trace is not None for trace in traces) / len(queries), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="smollm2-135m", help="a decoder alias of eval.models")
    parser.add_argument("--benchmarks", nargs="+", default=["onet", "resumes"])
    parser.add_argument("--poolings", nargs="+", default=["last_token", "embtoken"])
    parser.add_argument(
        "--models",
        nargs="+",
        help="trained CRE checkpoints instead of --backbone/--poolings (their own pooling)",
    )
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--bootstrap-samples", type=int, default=10_000)
    parser.add_argument(
        "--data-dir", help="development data folder (default $CRE_DATA_DIR or ../shared/data)"
    )
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--stem", default="reasoning", help="output file name stem")
    args = parser.parse_args(argv)

    benchmarks = [load_benchmark(name, args.data_dir) for name in args.benchmarks]
    reason = TraceGenerator("rules")
    queries = [text for b in benchmarks for text in b.dataset.queries.values()]
    cost = trace_cost(reason, queries)
    print(f"rules reasoning: {cost['ms_per_query']} ms/query over {cost['queries']} queries")
    expanded = {b.name: with_reasoning(b, reason) for b in benchmarks}

    if args.models:
        loaders = [partial(load_encoder, spec, max_length=args.max_length) for spec in args.models]
    else:
        loaders = [
            partial(load_encoder, args.backbone, max_length=args.max_length, pooling=pooling)
            for pooling in args.poolings
        ]
    results, load_seconds = [], {}
    for load in loaders:
        start = time.perf_counter()
        encoder = load()
        row = f"{encoder.name} [{encoder.model.config.pooling}]"
        load_seconds[row] = time.perf_counter() - start
        for benchmark in benchmarks:
            for name, variant in [(row, benchmark), (f"{row} +rules reasoning", expanded[benchmark.name])]:
                encoder.name = name
                results += evaluate(encoder, variant, batch_size=args.batch_size, show_progress=True)
                print(f"{name} on {benchmark.name}: {results[-1].metrics}")
    reference = results[0].model
    settings = {
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "reference": reference,
        "bootstrap_samples": args.bootstrap_samples,
        "torch_threads": torch.get_num_threads(),
        "reasoning": cost,
    }
    comparisons = paired_comparisons(results, reference, samples=args.bootstrap_samples)
    report = build_report(
        results, benchmarks, settings, load_seconds, {}, comparisons, samples=args.bootstrap_samples
    )
    for path in write_report(report, args.out, stem=args.stem):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
