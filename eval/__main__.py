"""Command line: ``python -m eval <command> ...``.

Commands:
    compare    Evaluate models side by side on benchmarks (default: the development suite,
               :mod:`eval.suite`); write ``{stem}.json`` (schema in :mod:`eval.compare`),
               ``{stem}.md`` and Recall@K plots. Each model is also measured against its
               zero-shot backbone (loaded when not listed): the suite's macro average.
    lambda     Grid-search λ of ``cosine − λ·s_boundary`` on a local-pool benchmark.
    boundary   BoundaryHead transfer diagnostic (AUC, Cohen's d of ``s_boundary`` vs mismatch labels).
    judge      LLM-as-judge labels for unlabeled pools; writes TREC qrels that ``compare --trec`` reads.
               The JD and CV texts go to the judge's endpoint (``--base-url``; OpenAI's API only with
               ``--allow-openai-api``).
    cache      ``info``: what the embedding cache holds; ``clear [--model M ...] [--answers]``: delete
               cached vectors (all, or one model's) and optionally the LLM answer cache.
    contrast   The suite contrast (macro Δ with CI, per-benchmark Δ, acceptable?) between two rows of
               a saved ``compare --per-query`` report, without re-encoding.

Examples::

    python -m eval compare --models minilm mpnet smollm2-135m --benchmarks onet esco resumes \\
        --out eval/results --stem baselines
    python -m eval compare --models minilm mpnet --bm25 --suite-reference minilm --stem devsuite
    python -m eval compare --models minilm --bm25 --hybrid --suite-reference minilm --stem hybrid
    python -m eval compare --models outputs/cre-ckpt --ir-json my_set.json --protocol local
    python -m eval lambda --model outputs/cre-ckpt --benchmark resumes --metric recall@20
    python -m eval boundary --model outputs/cre-ckpt
    python -m eval contrast --report eval/results/ckpts.json --model "cre-a" --reference "cre-b"
    python -m eval judge --queries jds.tsv --corpus cvs.jsonl --generator openai \\
        --base-url http://127.0.0.1:8000/v1 --top-n 20 --out judged
    python -m eval cache info
    python -m eval cache clear --model outputs/cre-ckpt
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from common.chat import ALLOW_OPENAI_API_FLAG, GeneratorError, default_answer_cache_dir, get_generator
from common.fusion import RRF_K
from common.windows import SCHEMES
from cre.configuration_cre import check_feedback
from eval.benchmarks import (
    BENCHMARKS,
    LOCAL_POOL_CUTOFFS,
    RESUME_BENCHMARKS,
    Benchmark,
    DataNotFoundError,
    load_benchmark,
)
from eval.boundary import DEFAULT_LAMBDA_GRID, boundary_diagnostic, lambda_grid_search, pool_pairs
from eval.cache import cache_entries, clear_cache, default_embedding_cache_dir
from eval.compare import build_report, paired_comparisons, run_models, write_report
from eval.ir_data import DatasetFormatError, IRDataset, load_llama_index_json, load_trec, read_texts
from eval.judge import Judge
from eval.models import load_encoder
from eval.protocols import score_pools
from eval.retrieval import bm25_pools, read_pool_file
from eval.runner import BM25_ROW, RRF_DEPTH
from eval.suite import (
    MAIN_METRICS,
    average_rows,
    markdown_suite,
    references_for,
    results_from_report,
    suite_contrast,
    suite_contrasts,
)

logger = logging.getLogger("eval")


CACHE_DIR_HELP = "embedding cache root (default $CRE_EMBEDDING_CACHE, else $CRE_CACHE/embeddings)"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ir-json", help="own dataset: llama-index JSON (queries, corpus, relevant_docs)")
    parser.add_argument("--trec", nargs=3, metavar=("QUERIES", "CORPUS", "QRELS"), help="own TREC dataset")
    parser.add_argument(
        "--data-dir", help="development data folder (default $CRE_DATA_DIR or ../shared/data)"
    )
    parser.add_argument("--max-length", type=int, default=256, help="tokens per text (default 256)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=100, help="BM25 candidates per query (local pools)")
    parser.add_argument(
        "--pool-file", help="candidate pools (JSON {qid: [docid]} or TREC run) instead of BM25"
    )
    parser.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached embeddings")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    compare = commands.add_parser("compare", help="models side by side on benchmarks")
    compare.add_argument("--models", nargs="+", required=True, help="aliases, CRE/ST folders or Hub ids")
    compare.add_argument(
        "--benchmarks",
        nargs="*",
        default=list(MAIN_METRICS),
        choices=sorted(BENCHMARKS),
        help="default: the suite",
    )
    compare.add_argument(
        "--protocol", choices=["global", "local"], default="global", help="for --ir-json/--trec"
    )
    compare.add_argument("--reference", help="row the paired tests compare against (default: first model)")
    compare.add_argument(
        "--suite-reference",
        help="measure every model's suite macro average against this model (default: each model's "
        "zero-shot backbone, from a CRE checkpoint's training_summary.json)",
    )
    compare.add_argument("--bm25", action="store_true", help="BM25 rows on global benchmarks too")
    compare.add_argument(
        "--hybrid",
        action="store_true",
        help="also each model row fused with BM25 by reciprocal rank (k 60), named '<row> + bm25 (rrf)'",
    )
    compare.add_argument(
        "--windows",
        choices=SCHEMES,
        help="also read the CVs of global benchmarks (recruiter questions) in windows, each CV scored from "
        "its windows by this scheme: rows '<model> [windows <scheme>]'",
    )
    compare.add_argument("--boundary-weight", type=float, help="λ for boundary-aware rows (default: model's)")
    compare.add_argument(
        "--feedback",
        nargs=2,
        metavar=("K", "W"),
        help="candidate feedback rows for every model on local pools: the K best candidates, weight W "
        "(default: each CRE model's config; K 0 = off)",
    )
    compare.add_argument("--bootstrap-samples", type=int, default=10_000)
    compare.add_argument("--per-query", action="store_true", help="store per-query scores in the JSON")
    compare.add_argument("--out", default="eval/results", help="output folder")
    compare.add_argument("--stem", default="results", help="output file name stem")
    _add_common(compare)

    for name, help_text in [("lambda", "λ grid search"), ("boundary", "BoundaryHead transfer diagnostic")]:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--model", required=True)
        sub.add_argument(
            "--benchmark", default="resumes", choices=sorted(BENCHMARKS), help="a local-pool benchmark"
        )
        sub.add_argument("--out", help="write the result JSON here (default: print only)")
        _add_common(sub)
    judge = commands.add_parser("judge", help="LLM-as-judge labels for unlabeled pools")
    judge.add_argument("--queries", required=True, help="JDs: id<TAB>text (.tsv) or JSON lines")
    judge.add_argument("--corpus", required=True, help="CVs: id<TAB>text (.tsv) or JSON lines")
    judge.add_argument("--pool-file", help="candidate pools (JSON or TREC run); default BM25")
    judge.add_argument("--pool-size", type=int, default=100)
    judge.add_argument("--top-n", type=int, default=20, help="judge the first N candidates of each pool")
    judge.add_argument("--generator", choices=["openai", "local"], default="openai")
    judge.add_argument("--judge-model", help="model name (openai) or folder/alias (local)")
    judge.add_argument(
        "--base-url",
        help="OpenAI-compatible API root (openai; default $OPENAI_BASE_URL): every judged JD and CV is "
        "sent there, so CV text leaves this machine unless it is a local server",
    )
    judge.add_argument(
        ALLOW_OPENAI_API_FLAG,
        action="store_true",
        help="openai: without --base-url, send the JD and CV texts to OpenAI's API (api.openai.com, "
        "a third party); refused unless this flag is given",
    )
    judge.add_argument(
        "--answer-cache",
        help="judge answer cache folder (default $CRE_CACHE/synth-answers); answers may quote the CVs",
    )
    judge.add_argument("--out", required=True, help="folder for judged.qrels and judged.json")
    cache = commands.add_parser("cache", help="show or delete cached embeddings (and LLM answers)")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    cache.add_argument(
        "--model", nargs="+", help="only these models (as passed to compare, or cache folder names)"
    )
    cache.add_argument(
        "--answers", action="store_true", help="clear: also delete the LLM answer cache (synthesis, judge)"
    )
    cache.add_argument("--answer-cache", help="LLM answer cache folder (default $CRE_CACHE/synth-answers)")
    contrast = commands.add_parser("contrast", help="suite contrast between two rows of a saved report")
    contrast.add_argument("--report", required=True, help="results JSON of compare --per-query")
    contrast.add_argument(
        "--model", required=True, nargs="+", help="row judged; several (a recipe's seeds): their mean"
    )
    contrast.add_argument(
        "--reference",
        required=True,
        nargs="+",
        help="row it is measured against; several (the same seeds without a variant): their mean",
    )
    contrast.add_argument("--bootstrap-samples", type=int, default=10_000)
    contrast.add_argument("--out", help="also write the contrast JSON here")
    commands.choices["lambda"].add_argument("--metric", default="recall@20")
    commands.choices["lambda"].add_argument(
        "--grid", type=float, nargs="+", default=list(DEFAULT_LAMBDA_GRID)
    )
    return parser


def load_benchmarks(args: argparse.Namespace, names: list[str]) -> tuple[list[Benchmark], dict[str, str]]:
    """Build the named benchmarks; an absent data folder or file is a logged, recorded skip."""
    benchmarks, skipped = [], {}
    for name in names:
        options = {"pool_size": args.pool_size} if name in RESUME_BENCHMARKS else {}
        try:
            benchmark = load_benchmark(name, args.data_dir, **options)
        except DataNotFoundError as err:
            logger.warning("skipping benchmark %s: %s", name, err)
            skipped[name] = f"skipped: {err}"
            continue
        if name in RESUME_BENCHMARKS and args.pool_file:
            benchmark.pools = read_pool_file(
                args.pool_file, benchmark.dataset.queries, benchmark.dataset.corpus
            )
            benchmark.notes["pool"] = f"user-supplied ({args.pool_file})"
        benchmarks.append(benchmark)
    return benchmarks, skipped


def custom_benchmark(args: argparse.Namespace, protocol: str = "global") -> Benchmark | None:
    """The ``--ir-json`` / ``--trec`` dataset as a benchmark, or ``None`` when neither is given."""
    if args.ir_json:
        name, dataset = Path(args.ir_json).stem, load_llama_index_json(args.ir_json)
    elif args.trec:
        name, dataset = Path(args.trec[2]).stem, load_trec(*args.trec)
    else:
        return None
    if protocol == "global":
        metrics = {"ndcg": [10], "recall": [10, 20, 50, 100], "mrr": [10], "map": [100], "hit_rate": [10]}
        return Benchmark(name, dataset, "global", metrics, notes=_skip_counts(dataset))
    pools = read_pool_file(args.pool_file, dataset.queries, dataset.corpus) if args.pool_file else None
    pools = pools or bm25_pools(dict(dataset.judged_queries()), dataset.corpus, args.pool_size)
    metrics = {"recall": LOCAL_POOL_CUTOFFS, "precision": LOCAL_POOL_CUTOFFS, "ndcg": [10]}
    return Benchmark(name, dataset, "local", metrics, pools=pools, notes=_skip_counts(dataset))


def _skip_counts(dataset: IRDataset) -> dict:
    return {"skipped": {reason: len(ids) for reason, ids in dataset.skipped.items()}}


def _loader(args: argparse.Namespace):
    cache = False if args.no_cache else (args.cache_dir or True)
    return lambda spec: load_encoder(spec, max_length=args.max_length, cache_dir=cache)


def parse_feedback(values: list[str]) -> tuple[int, float]:
    """``--feedback K W`` as ``(k, w)``, or SystemExit naming the bad value."""
    try:
        top_k, weight = int(values[0]), float(values[1])
        check_feedback(top_k, weight)
    except ValueError as err:
        raise SystemExit(f"--feedback K W: {err}") from None
    return top_k, weight


def run_compare(args: argparse.Namespace) -> dict:
    benchmarks, skipped = load_benchmarks(args, args.benchmarks)
    extra = custom_benchmark(args, args.protocol)
    if extra is not None:
        benchmarks.append(extra)
    if not benchmarks:
        raise SystemExit("no benchmark could be built: " + "; ".join(skipped.values()))
    feedback = parse_feedback(args.feedback) if args.feedback else None
    references = {}
    if any(b.name in MAIN_METRICS for b in benchmarks):
        try:
            references = references_for(args.models, args.suite_reference)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        if args.bm25 and args.suite_reference:  # BM25 has no backbone, only an explicit reference
            references[BM25_ROW] = args.suite_reference
    # A model's reference must be scored on the same queries; load it when it is not listed.
    specs = list(
        dict.fromkeys([*args.models, *(references[spec] for spec in args.models if spec in references)])
    )
    results, load_seconds, failures = run_models(
        specs,
        benchmarks,
        _loader(args),
        args.boundary_weight,
        args.batch_size,
        show_progress=True,
        feedback=feedback,
        bm25=args.bm25,
        hybrid=args.hybrid,
        windows=args.windows,
    )
    reference = args.reference or args.models[0]
    settings = {
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "pool_size": args.pool_size,
        "boundary_weight": args.boundary_weight,
        "feedback": list(feedback) if feedback else None,
        "hybrid": {"rrf_k": RRF_K, "depth": RRF_DEPTH} if args.hybrid else None,
        "windows": args.windows,
        "reference": reference,
        "suite_references": references,
        "bootstrap_samples": args.bootstrap_samples,
        "torch_threads": torch.get_num_threads(),
    }
    comparisons = paired_comparisons(results, reference, args.bootstrap_samples)
    suite = suite_contrasts(results, references, samples=args.bootstrap_samples) if references else None
    report = build_report(
        results,
        benchmarks,
        settings,
        load_seconds,
        {**skipped, **failures},
        comparisons,
        args.per_query,
        suite,
        args.bootstrap_samples,
    )
    for path in write_report(report, args.out, args.stem):
        print(f"wrote {path}")
    return report


def run_boundary_tool(args: argparse.Namespace) -> dict:
    benchmark = custom_benchmark(args, protocol="local")
    if benchmark is None:
        benchmarks, skipped = load_benchmarks(args, [args.benchmark])
        if not benchmarks:
            raise SystemExit(skipped[args.benchmark])
        benchmark = benchmarks[0]
    if benchmark.protocol != "local":
        raise SystemExit(
            f"benchmark {benchmark.name!r} has no candidate pools; choose a local-pool benchmark"
        )
    encoder = _loader(args)(args.model).for_task(benchmark.task)
    if not encoder.has_boundary_head:
        raise SystemExit(f"{args.model} has no trained BoundaryHead; nothing to tune or diagnose")
    scored = score_pools(
        encoder,
        benchmark.dataset,
        benchmark.pools,
        benchmark.query_kind,
        benchmark.doc_kind,
        args.batch_size,
        True,
    )
    if args.command == "lambda":
        result = lambda_grid_search(
            scored, benchmark.dataset.qrels, args.metric, args.grid, benchmark.min_gain
        )
    else:
        boundary, cosine, mismatch = pool_pairs(scored, benchmark.dataset.qrels, benchmark.min_gain)
        result = boundary_diagnostic(boundary, mismatch, cosine)
    result = {"model": args.model, "benchmark": benchmark.name, **result}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def run_judge(args: argparse.Namespace) -> dict:
    options = {"model": args.judge_model, "cache_dir": args.answer_cache}
    if args.generator == "openai":
        options.update(base_url=args.base_url, allow_openai_api=args.allow_openai_api)
    # Built first: a refused endpoint should stop the run before any data is read.
    generator = get_generator(args.generator, **{k: v for k, v in options.items() if v is not None})
    queries, corpus = read_texts(args.queries, "query"), read_texts(args.corpus, "document")
    if args.pool_file:
        pools = read_pool_file(args.pool_file, queries, corpus)
    else:
        pools = bm25_pools(queries, corpus, args.pool_size)
    labels = Judge(generator).judge_pools(queries, corpus, pools, args.top_n, show_progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "judged.qrels").write_text(labels.to_trec(), encoding="utf-8")
    summary = {"generator": args.generator, "top_n": args.top_n, **labels.summary()}
    summary["malformed_pairs"] = labels.malformed_pairs
    (out / "judged.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "malformed_pairs"}, indent=2))
    return summary


def run_cache(args: argparse.Namespace) -> list[dict]:
    """``cache info`` / ``cache clear``: list or delete cached embeddings (and with ``--answers`` the LLM answers)."""
    root = Path(args.cache_dir) if args.cache_dir else default_embedding_cache_dir()
    try:
        entries = clear_cache(root, args.model) if args.action == "clear" else cache_entries(root, args.model)
    except ValueError as err:  # named models without cached vectors: likely a typo, say so
        raise SystemExit(f"error: {err}") from None
    verb = "deleted" if args.action == "clear" else "holds"
    print(f"{root} {verb} {len(entries)} model folder(s), {sum(e.vectors for e in entries)} vectors")
    for entry in entries:
        print(f"  {entry.folder.name}: {entry.vectors} vectors, {entry.size_bytes / 1e6:.1f} MB")
    answers = Path(args.answer_cache) if args.answer_cache else default_answer_cache_dir()
    count = sum(1 for _ in answers.glob("*/*.json")) if answers.is_dir() else 0
    if args.action == "clear" and args.answers:
        shutil.rmtree(answers, ignore_errors=True)
        print(f"{answers} deleted ({count} LLM answers)")
    else:
        print(f"{answers} holds {count} LLM answers (delete them with: cache clear --answers)")
    return [{"folder": str(e.folder), "vectors": e.vectors, "bytes": e.size_bytes} for e in entries]


def mean_row(results: list, rows: Sequence[str]) -> tuple[str, list]:
    """The row to contrast: ``rows[0]`` itself, or for several rows (a recipe's seeds) a new row of their
    mean, added to ``results``."""
    if len(rows) == 1:
        return rows[0], results
    name = f"mean of {len(rows)}: " + ", ".join(rows)
    return name, [*results, *average_rows(results, rows, name)]


def run_contrast(args: argparse.Namespace) -> dict:
    report = json.loads(Path(args.report).read_text(encoding="utf-8"))
    rows = set(report["models"])
    unknown = [row for row in (*args.model, *args.reference) if row not in rows]
    if unknown:
        raise SystemExit(f"error: {args.report} has no row(s) {unknown}; rows: {sorted(rows)}")
    try:
        results = results_from_report(report)
        model, results = mean_row(results, args.model)
        reference, results = mean_row(results, args.reference)
    except ValueError as err:
        raise SystemExit(f"error: {args.report}: {err}") from None
    contrast = suite_contrast(results, model, reference, samples=args.bootstrap_samples)
    print(markdown_suite([contrast]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(contrast, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return contrast


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.command == "compare":
            run_compare(args)
        elif args.command == "judge":
            run_judge(args)
        elif args.command == "cache":
            run_cache(args)
        elif args.command == "contrast":
            run_contrast(args)
        else:
            run_boundary_tool(args)
    except (DatasetFormatError, DataNotFoundError, FileNotFoundError, KeyError, GeneratorError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
