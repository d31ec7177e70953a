"""Choose the title round's options on occupations held out of its training pairs, not on a benchmark.

Job-title normalisation is scored on the development suite (``jobnorm``), so a setting chosen there
would be tuned on what it is judged by. Instead, a seeded share of the title pairs' occupations (O*NET
``train`` split and ESCO, :func:`train.synth.titles.title_pairs`) leaves the training pairs; the title
round (:mod:`train.r2`, the recipe's ``title_adapter`` options) trains on the others once per candidate
option set, and each adapter is scored by how well the held-out variants find their own occupation's
name among all occupation names (task ``title``, the job-title benchmark's metrics and paired CIs
against the starting model).

::

    python -m train.title_holdout --base outputs/cre-minilm/r1 --out outputs/title-holdout \\
        --candidate= --candidate="--title-steps 160" --candidate=--symmetric

Each ``--candidate`` is ``train.r2`` flags over the recipe's title round (empty: the recipe as it is),
given with ``=`` since they start with dashes. Writes ``title_holdout.{json,md}`` under ``--out`` (with
per-query scores, so that ``python -m eval contrast`` can set two candidates side by side); each
candidate's checkpoint stays in its own folder there, and a rerun reuses those whose options did not
change.
"""

from __future__ import annotations

import os

from common.openmp import thread_wait_environment

# As in train.pipeline, before torch loads OpenMP (see common.openmp).
os.environ.update(thread_wait_environment(os.environ))

import argparse
import hashlib
import json
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from common.backbones import check_model_source
from eval.benchmarks import Benchmark, title_benchmark
from eval.compare import build_report, paired_comparisons, run_models, write_report
from eval.ir_data import IRDataset
from eval.models import load_encoder
from train import r2
from train.data import report_data_errors
from train.loop import latest_state
from train.pipeline import RECIPES
from train.recipes import recipe_argv
from train.synth.titles import title_pairs

BASE_ROW = "base (no title adapter)"
RECIPE_ROW = "(the recipe as it is)"


def held_out_fraction(value: str | float) -> float:
    """``value`` as the share of occupations held out: a number strictly between 0 and 1."""
    fraction = float(value)
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must lie strictly between 0 and 1, got {value}")
    return fraction


def split_occupations(pairs: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """``(training pairs, held-out pairs)``: a seeded ``fraction`` of the occupations, all their variants.

    Example:
        >>> pairs = [{"source_id": f"o{n % 10}", "query": str(n)} for n in range(30)]
        >>> kept, held = split_occupations(pairs, 0.2, seed=0)
        >>> len({p["source_id"] for p in held}), len(kept) + len(held)
        (2, 30)
    """
    held_out_fraction(fraction)
    occupations = sorted({pair["source_id"] for pair in pairs})
    count = round(fraction * len(occupations))
    if not 0 < count < len(occupations):
        raise ValueError(
            f"holding out {fraction:g} of {len(occupations)} occupations leaves no occupation on one side"
        )
    held = set(random.Random(seed).sample(occupations, count))
    return [p for p in pairs if p["source_id"] not in held], [p for p in pairs if p["source_id"] in held]


def holdout_benchmark(pairs: list[dict], held: list[dict]) -> Benchmark:
    """Each held-out variant must find its occupation's name among every occupation's name."""
    names = {pair["source_id"]: pair["positive"] for pair in pairs}
    queries = {pair["id"]: pair["query"] for pair in held}
    qrels = {pair["id"]: {pair["source_id"]: 1} for pair in held}
    dataset = IRDataset.from_dicts(queries, names, qrels, source="held-out title pairs")
    notes = {"corpus": "occupation names of the title pairs", "split": "held-out occupations"}
    return title_benchmark("title-holdout", dataset, notes)


def candidate_argv(
    recipe: str, base: str, data: Path, out: Path, seed: int, candidate: str, save_every: int
) -> list[str]:
    """``train.r2``'s command line: the recipe's title round and learning rate, then ``candidate``."""
    job = RECIPES[recipe]
    if job.title_adapter is None:
        raise ValueError(f"recipe {recipe!r} trains no title adapter")
    lr = [] if job.title_lr is None else ["--lr", str(job.title_lr)]
    options = ["--data", str(data), "--base", base, "--out", str(out), "--seed", str(seed)]
    options += ["--save-every", str(save_every), *recipe_argv(job.title_adapter), *lr]
    return options + shlex.split(candidate)


def train_candidate(argv: list[str]) -> None:
    """Run the title round (a subprocess, as the pipeline runs it); a finished run of the same ``argv``
    is reused, a killed one resumes from its last saved state, any other is trained afresh."""
    r2.build_parser().parse_args(argv)  # a wrong flag fails here, before anything trains
    out = Path(argv[argv.index("--out") + 1])
    marker = out / "holdout_run.json"
    earlier = json.loads(marker.read_text()) if marker.exists() else {}
    if earlier.get("argv") == argv and earlier.get("finished"):
        print(f"    {out.name}: trained in an earlier run, reused", flush=True)
        return
    resume = earlier.get("argv") == argv and latest_state(out) is not None
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
    marker.write_text(json.dumps({"argv": argv, "finished": False}))
    subprocess.run([sys.executable, "-m", "train.r2", *argv, *(["--resume"] if resume else [])], check=True)
    marker.write_text(json.dumps({"argv": argv, "finished": True}))


def run(args: argparse.Namespace) -> dict:
    check_model_source(args.base)  # a wrong path fails before anything is read or trained
    out = Path(args.out)
    # The recipe's pairs, with its share of vacancy-style variants, so each candidate trains as it would.
    share = RECIPES[args.recipe].vacancy_titles
    pairs = title_pairs(
        args.data_dir, per_occupation=args.per_occupation, seed=args.seed, vacancy_share=share
    )
    kept, held = split_occupations(pairs, args.fraction, args.seed)
    data = out / "pairs"
    data.mkdir(parents=True, exist_ok=True)
    (data / "titles.jsonl").write_text("".join(json.dumps(pair) + "\n" for pair in kept))
    print(
        f"title pairs: {len(kept)} for training, {len(held)} held out "
        f"({len({p['source_id'] for p in held})} occupations)",
        flush=True,
    )
    models = {BASE_ROW: args.base}
    for candidate in args.candidate:
        folder = out / ("candidate-" + hashlib.sha256(candidate.encode()).hexdigest()[:10])
        argv = candidate_argv(args.recipe, args.base, data, folder, args.seed, candidate, args.save_every)
        label = candidate or RECIPE_ROW
        print(f"[{len(models)}/{len(args.candidate)}] {label}", flush=True)
        train_candidate(argv)
        models[label] = str(folder)

    def load(label: str):
        encoder = load_encoder(models[label], max_length=args.max_length, cache_dir=False)
        encoder.name = label
        return encoder

    benchmark = holdout_benchmark(pairs, held)
    results, load_seconds, failures = run_models(list(models), [benchmark], load, show_progress=True)
    if failures:
        raise RuntimeError(f"could not load {', '.join(failures)}: {failures}")
    settings = {
        "base": args.base,
        "recipe": args.recipe,
        "fraction": args.fraction,
        "seed": args.seed,
        "per_occupation": args.per_occupation,
        "max_length": args.max_length,
        "reference": BASE_ROW,
        "candidates": dict(models),
    }
    comparisons = paired_comparisons(results, BASE_ROW)
    report = build_report(results, [benchmark], settings, load_seconds, failures, comparisons, per_query=True)
    write_report(report, out, stem="title_holdout")
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the model the title round starts from (R1)")
    parser.add_argument("--out", required=True, help="output folder (pairs, checkpoints, report)")
    parser.add_argument(
        "--candidate",
        action="append",
        required=True,
        help="train.r2 flags over the recipe's title round, as --candidate='...' (repeat; empty: the recipe)",
    )
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="minilm", help="the job recipe")
    parser.add_argument(
        "--fraction", type=held_out_fraction, default=0.1, help="share of occupations held out (0 to 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="held-out split, variant draw and training seed")
    parser.add_argument("--per-occupation", type=int, default=8, help="title variants per occupation")
    parser.add_argument("--max-length", type=int, default=32, help="token budget when scoring")
    parser.add_argument("--save-every", type=int, default=20, help="training state saved every N steps")
    parser.add_argument(
        "--data-dir", help="data folder with onet/ and esco/ (default: the shipped training-only copy)"
    )
    return parser


@report_data_errors
def main(argv: list[str] | None = None) -> int:
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
