"""Benchmark: training throughput and peak memory per round, LoRA against full fine-tuning.

For each backbone (MiniLM, SmolLM2-135M) and round (R1 ranking stage: four JDs per example plus the
frozen teacher; R2: a JD and two CVs per example), the round's own command runs a few steps in its
own process, once with the LoRA adapter and once with full fine-tuning (``--lora-rank 0``). Reported
per configuration:

* ``pairs_per_s``: training examples per second after the first step (which pays for warm-up);
* ``peak_memory_mb``: the process's peak resident memory (CPU) or peak allocated GPU memory,
  model, frozen teacher and optimizer state included;
* ``trainable_parameters``.

Results go to ``bench/results/train.json`` with the machine's description and load average: on a
shared machine, throughput is only comparable within one run.

Usage::

    python -m bench.train                       # both backbones, 4 steps each
    python -m bench.train --backbones minilm --steps 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import machine, write_report
from common.openmp import thread_wait_environment

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"
ROUNDS = {
    "r1": ["--card-steps", "0", "--semantic-steps", "0"],  # the ranking stage only: R1's heaviest step
    "r2": [],
}


def steady_step_seconds(out: Path) -> float | None:
    """Mean seconds per optimizer step after the first (which pays for warm-up), from the round's
    ``logs/train_log.csv``; ``None`` for a one-step run."""
    with (out / "logs" / "train_log.csv").open() as stream:
        elapsed = [float(row["elapsed_s"]) for row in csv.DictReader(stream)]
    return (elapsed[-1] - elapsed[0]) / (len(elapsed) - 1) if len(elapsed) > 1 else None


def run_configuration(
    round_name: str, backbone: str, lora_rank: int, data: Path, workdir: Path, args: argparse.Namespace
) -> dict:
    """Train a few steps of one round in a subprocess and read its summary and step log."""
    out = workdir / f"{round_name}-{backbone}-r{lora_rank}"
    steps = ["--ranking-steps", str(args.steps)] if round_name == "r1" else ["--steps", str(args.steps)]
    command = [
        sys.executable, "-m", f"train.{round_name}", "--data", str(data), "--base", backbone, "--out", str(out),
        "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
        "--lora-rank", str(lora_rank), "--warmup-ratio", "0", *ROUNDS[round_name], *steps,
    ]  # fmt: skip
    started = time.perf_counter()
    env = {**os.environ, **thread_wait_environment(os.environ)}  # as the main job waits (common.openmp)
    subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    training = json.loads((out / "training_summary.json").read_text())["training"]
    per_step = args.batch_size  # one process, no accumulation
    seconds = steady_step_seconds(out)
    steady = per_step / seconds if seconds else None
    return {
        "round": round_name,
        "backbone": backbone,
        "method": "lora" if lora_rank else "full",
        "lora_rank": lora_rank,
        "steps": training["steps"],
        "pairs_per_s": round(steady, 3) if steady else None,
        "pairs_per_s_with_first_step": round(training["pairs_per_second"], 3),
        "peak_memory_mb": round(training["peak_memory_mb"], 1),
        "trainable_parameters": training["trainable_parameters"],
        "process_seconds": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["minilm", "smollm2-135m"])
    parser.add_argument("--rounds", nargs="+", default=list(ROUNDS), choices=list(ROUNDS))
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per configuration")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from train.synth import load_seed_jds, run_pipeline

    rows = []
    with tempfile.TemporaryDirectory(prefix="cre-bench-train-") as tmp:
        workdir = Path(tmp)
        data = workdir / "synth"
        run_pipeline(load_seed_jds(), backend="rules", out_dir=data, seed=0, progress=False)
        for backbone in args.backbones:
            for round_name in args.rounds:
                for rank in (args.lora_rank, 0):
                    row = run_configuration(round_name, backbone, rank, data, workdir, args)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    report = {
        "benchmark": "training throughput and peak memory per round (LoRA vs full fine-tuning)",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": machine(),
        "results": rows,
    }
    write_report(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
