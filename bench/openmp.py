"""Benchmark: how idle OpenMP threads should wait while a round trains (:mod:`common.openmp`).

A LoRA step on a 2-core CPU is many small parallel regions, so how libgomp's threads wait between
them matters. For each policy, a few steps of the main job's Round 2 (JD–CV and recruiter-question
batches) and of its title round run in their own process on the machine alone; then two title
rounds run at once, as when a second job or the test suite shares the cores. Reported per run: the
steady seconds per optimizer step (the first step, which pays for warm-up, left out).

Results go to ``bench/results/openmp.json`` with the machine's description; compare policies within
one run only.

Usage::

    python -m bench.openmp                  # about 10 minutes on 2 cores
    python -m bench.openmp --steps 4 --pair-steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench import machine, write_report
from bench.train import steady_step_seconds
from common.openmp import SHORT_SPIN

RESULTS = Path(__file__).resolve().parent / "results" / "openmp.json"
# What each policy adds to an environment cleared of both variables.
POLICIES = {
    "passive (no spin)": {"OMP_WAIT_POLICY": "PASSIVE"},
    f"short spin ({SHORT_SPIN}, the main job's)": {"GOMP_SPINCOUNT": SHORT_SPIN},
    "libgomp default (300,000 spins)": {},
    "active (spin until work)": {"OMP_WAIT_POLICY": "ACTIVE"},
}


def round_commands(
    data: Path, workdir: Path, steps: int, pair_steps: int
) -> Callable[[str, str, bool], list[str]]:
    """A function of (round, run label, pair mode) giving that run's ``train.r2`` command line."""
    from train.pipeline import RECIPES
    from train.recipes import recipe_argv

    recipe = RECIPES["minilm"]
    # Round 2 keeps the recipe's one triplet step to three question steps.
    r2 = replace(recipe.r2, steps=max(1, steps // 4), question_steps=steps - max(1, steps // 4))
    rounds = {"r2": r2, "title": recipe.title_adapter}

    def command(name: str, label: str, pair: bool) -> list[str]:
        options = rounds[name]
        if name == "title":
            options = replace(options, title_steps=pair_steps if pair else steps)
        return [
            sys.executable, "-m", "train.r2", "--data", str(data), "--base", "minilm",
            "--out", str(workdir / label), "--save-every", "0", *recipe_argv(options),
        ]  # fmt: skip

    return command


def run(commands: list[list[str]], policy: dict[str, str]) -> None:
    """Start every command at once under ``policy`` and wait for all of them."""
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    processes = [
        subprocess.Popen(
            command, env={**environ, **policy}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for command in commands
    ]
    for process in processes:
        _, errors = process.communicate()
        if process.returncode:
            raise RuntimeError(f"{' '.join(process.args[:4])} failed:\n{errors.decode()[-2000:]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per round run alone")
    parser.add_argument(
        "--pair-steps", type=int, default=6, help="title steps per round when two share the cores"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.steps < 2 or args.pair_steps < 2:
        parser.error("--steps and --pair-steps need at least 2 (the first step is left out)")

    from train.synth import load_seed_jds, run_pipeline
    from train.synth.titles import title_pairs

    rows = []
    with tempfile.TemporaryDirectory(prefix="cre-bench-openmp-") as tmp:
        workdir = Path(tmp)
        data = workdir / "synth"
        run_pipeline(
            load_seed_jds(), backend="rules", out_dir=data, seed=0, progress=False, title_pairs=title_pairs()
        )
        command = round_commands(data, workdir, args.steps, args.pair_steps)
        for number, (policy, variables) in enumerate(POLICIES.items()):
            for name in ("r2", "title"):
                label = f"{number}-{name}-alone"
                run([command(name, label, pair=False)], variables)
                row = {"policy": policy, "round": name, "processes": 1}
                row["seconds_per_step"] = [round(steady_step_seconds(workdir / label), 3)]
                print(json.dumps(row), flush=True)
                rows.append(row)
            labels = [f"{number}-title-pair{i}" for i in range(2)]
            run([command("title", label, pair=True) for label in labels], variables)
            row = {"policy": policy, "round": "title", "processes": 2}
            row["seconds_per_step"] = [round(steady_step_seconds(workdir / label), 3) for label in labels]
            print(json.dumps(row), flush=True)
            rows.append(row)
    report = {
        "benchmark": "seconds per training step under each OpenMP wait policy, alone and two processes at once",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "policies": POLICIES,
        "machine": machine(),
        "results": rows,
    }
    write_report(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
