"""Helpers shared by the training tests: a small real synthesis run and subprocess launchers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED_JDS = 40  # enough for every stage and both validation halves, small enough to train in seconds
# Tiny-model round options: a few steps, short texts (the tiny backbones have 128 positions).
TINY_R1 = [
    "--card-steps",
    "1",
    "--semantic-steps",
    "1",
    "--profile-steps",
    "1",
    "--ranking-steps",
    "2",
    "--batch-size",
    "4",
    "--max-length",
    "48",
]
TINY_R2 = ["--steps", "2", "--batch-size", "4", "--max-length", "48"]


def make_synth_run(folder: Path) -> Path:
    """The rules backend on the first :data:`SEED_JDS` embedded seed JDs, written to ``folder``."""
    from train.synth import load_seed_jds, run_pipeline

    run_pipeline(load_seed_jds()[:SEED_JDS], backend="rules", out_dir=folder, seed=0, progress=False)
    return folder


def subprocess_env(**extra: str) -> dict[str, str]:
    """The test environment for child processes: repo importable, one thread each (2 shared cores)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    return {**env, **extra}


def run_python(
    *args: str, env: dict[str, str] | None = None, timeout: int = 300, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess:
    """``python ARGS`` from ``cwd`` (the repo root); fails the test with the child's output if it fails."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{args[:3]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def accelerate_launch(
    processes: int, target: str, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess:
    """``accelerate launch`` of ``python -m target ARGS`` (or of the script ``target`` when it ends in
    ``.py``) with ``processes`` CPU processes."""
    launcher = ["-m", "accelerate.commands.launch", "--num_cpu_threads_per_process", "1"]
    if processes > 1:
        launcher += ["--multi_gpu", "--num_processes", str(processes)]
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    program = [target] if target.endswith(".py") else ["-m", target]
    return run_python(*launcher, *program, *args, env=env, cwd=cwd)


def assert_jd_cv_vectors_equal(model, expected, texts: list[str]) -> None:
    """``model`` encodes ``texts`` for JD→CV matching (both kinds) as ``expected`` does."""
    import torch

    for kind in ("jd", "cv"):
        torch.testing.assert_close(
            model.encode(texts, kind=kind, task="jd-cv"),
            expected.encode(texts, kind=kind, task="jd-cv"),
            rtol=1e-4,
            atol=1e-5,
        )
