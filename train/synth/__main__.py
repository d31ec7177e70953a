"""Command line: ``python -m train.synth --jds PATH --backend rules --out RUN_DIR``.

``--jds`` takes a JSONL/CSV file, or ``default`` (the embedded seeds), ``onet`` (O*NET train split),
``onet-dev`` or ``esco`` (from the development data folder, ``--data-dir`` or ``$CRE_DATA_DIR``). Exit
status: 0 when the run is complete, 1 when it is not (the generator became unavailable or sent replies
that are not chat completions: rerun to resume), 2 on bad input or options, 3 when the run finished but
a stage kept no sample at all.

The ``openai`` backend sends every JD (and the CVs it writes) to its endpoint: ``--base-url`` names
it, and OpenAI's own API is used only with ``--allow-openai-api``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from common.chat import ALLOW_OPENAI_API_FLAG, GeneratorError
from train.synth.loaders import DataNotFoundError, load_esco_jds, load_onet_jds, load_seed_jds
from train.synth.pipeline import retention_table, run_pipeline


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.synth", description="Synthesise CRE training supervision from JDs."
    )
    parser.add_argument(
        "--jds", default="default", help="JSONL/CSV file, or default | onet | onet-dev | esco"
    )
    parser.add_argument("--backend", choices=("rules", "openai", "local"), default="rules")
    parser.add_argument("--out", required=True, help="run folder (rerunning into it resumes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use only the first N JDs")
    parser.add_argument(
        "--data-dir", help="development data folder (default ../shared/data or $CRE_DATA_DIR)"
    )
    parser.add_argument(
        "--model", help="openai: model name ($CRE_SYNTH_MODEL); local: folder or alias (smollm2-135m)"
    )
    parser.add_argument(
        "--base-url",
        help="openai: API root, e.g. http://127.0.0.1:8000/v1 ($OPENAI_BASE_URL); the JD text and the "
        "generated CVs are sent there, so they leave this machine unless it is a local server",
    )
    parser.add_argument(
        ALLOW_OPENAI_API_FLAG,
        action="store_true",
        help="openai: without --base-url, send the JD text to OpenAI's API (api.openai.com, a third "
        "party); refused unless this flag is given",
    )
    parser.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the key"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="openai: requests in flight")
    parser.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per request")
    parser.add_argument(
        "--retries", type=int, default=4, help="openai: retries per request (each logged as a warning)"
    )
    parser.add_argument(
        "--cache-dir", help="answer cache of the LLM backends (default $CRE_CACHE/synth-answers)"
    )
    parser.add_argument(
        "--enhance-queries", action="store_true", help="also write query_enhanced (instruction + card)"
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _load(args: argparse.Namespace, issues: list[str]):
    if args.jds == "default":
        return load_seed_jds(issues=issues)
    if args.jds in ("onet", "onet-dev"):
        return load_onet_jds(args.data_dir, split="dev" if args.jds == "onet-dev" else "train")
    if args.jds == "esco":
        return load_esco_jds(args.data_dir)
    return load_seed_jds(args.jds, issues=issues)


def _generator_options(args: argparse.Namespace) -> dict:
    if args.backend == "openai":
        return {
            "model": args.model,
            "base_url": args.base_url,
            "api_key": os.environ.get(args.api_key_env, ""),
            "concurrency": args.concurrency,
            "timeout": args.timeout,
            "retries": args.retries,
            "cache_dir": args.cache_dir,
            "allow_openai_api": args.allow_openai_api,
        }
    if args.backend == "local":
        return {"model": args.model or "smollm2-135m", "cache_dir": args.cache_dir}
    return {}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    issues: list[str] = []
    try:
        jds = _load(args, issues)
    except (FileNotFoundError, DataNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.limit:
        jds = jds[: args.limit]
    try:
        manifest = run_pipeline(
            jds,
            backend=args.backend,
            out_dir=args.out,
            seed=args.seed,
            enhance_queries=args.enhance_queries,
            progress=not args.no_progress,
            input_issues=issues,
            source=args.jds,
            **_generator_options(args),
        )
    except GeneratorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(retention_table(manifest))
    print(json.dumps({"out": args.out, "files": manifest["files"], "complete": manifest["complete"]}))
    if not manifest["complete"]:
        print(
            f"incomplete: {manifest['failure']}; {manifest['pending_jds']} JDs pending. "
            "Rerun the same command to resume.",
            file=sys.stderr,
        )
        return 1
    if manifest["failure"]:
        print(f"failed: {manifest['failure']}; the output files lack that stage's data.", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
