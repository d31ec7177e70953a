"""Rounds under `accelerate launch`: two CPU processes stay identical, and a stopped run resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.train_support import (
    REPO_ROOT,
    TINY_R1,
    TINY_R2,
    accelerate_launch,
    make_synth_run,
    subprocess_env,
)
from train.checkpoint import SUMMARY_FILE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    return make_synth_run(tmp_path_factory.mktemp("synth"))


def summary(folder: Path) -> dict:
    return json.loads((folder / SUMMARY_FILE).read_text())


def test_two_processes_stay_identical_and_a_resumed_run_ends_with_the_same_weights(
    synth_dir, tiny_backbone_dir, tmp_path
):
    options = [
        "--data", str(synth_dir), "--base", str(tiny_backbone_dir("encoder")), *TINY_R1,
        "--cnn", "--grad-accum", "2", "--lr", "1e-3", "--save-every", "2", "--seed", "3",
    ]  # fmt: skip
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    accelerate_launch(2, "train.r1", *options, "--out", str(uninterrupted))
    training = summary(uninterrupted)["training"]
    assert training["replicas_identical"]
    assert (
        training["pairs"] == 5 * 2 * 4 * 2
    )  # steps (card, semantic, profile, 2 ranking) x accumulation x batch x processes

    accelerate_launch(2, "train.r1", *options, "--out", str(interrupted), "--stop-after", "2")
    assert not (interrupted / "model.safetensors").exists()
    assert [path.name for path in (interrupted / "state").iterdir()] == ["step-2"]
    accelerate_launch(2, "train.r1", *options, "--out", str(interrupted), "--resume")
    assert summary(interrupted)["training"]["resumed_from"] == 2

    expected, resumed = (
        load_file(uninterrupted / "model.safetensors"),
        load_file(interrupted / "model.safetensors"),
    )
    assert expected.keys() == resumed.keys()
    different = [name for name in expected if not expected[name].equal(resumed[name])]
    assert not different, f"resumed weights differ in {different[:5]}"


def test_round_two_gathers_and_caches_across_two_processes(synth_dir, tiny_backbone_dir, tmp_path):
    out = tmp_path / "r2"
    options = ["--data", str(synth_dir), "--base", str(tiny_backbone_dir("encoder")), *TINY_R2]
    # Questions in windows gather their windows' keys too, so each process masks the other's rows.
    questions = ["--question-steps", "2", "--pair-batch-size", "4", "--question-windows"]
    accelerate_launch(2, "train.r2", *options, *questions, "--cache-chunk", "3", "--out", str(out))
    training = summary(out)["training"]
    assert training["replicas_identical"]
    assert training["pairs"] == 2 * 4 * 2 + 2 * 4 * 2
    assert summary(out)["recipe"]["question_windows"] is True


def test_rounds_run_by_path_from_any_directory(synth_dir, tiny_backbone_dir, tmp_path):
    """`accelerate launch train/r2.py` as the docs write it: no PYTHONPATH, from the repo root and from
    another directory (the script then has only its own folder, train/, on sys.path)."""
    env = {key: value for key, value in subprocess_env().items() if key != "PYTHONPATH"}
    for script in ("train/r1.py", "train/boundary.py"):
        usage = accelerate_launch(1, script, "--help", env=env).stdout
        assert "--base" in usage and "--out" in usage
    elsewhere, out = tmp_path / "elsewhere", tmp_path / "r2"
    elsewhere.mkdir()
    script = str(REPO_ROOT / "train" / "r2.py")
    options = ["--data", str(synth_dir), "--base", str(tiny_backbone_dir("encoder")), *TINY_R2]
    accelerate_launch(1, script, *options, "--out", str(out), env=env, cwd=elsewhere)
    assert summary(out)["round"] == "r2" and (out / "model.safetensors").exists()
    assert not list(elsewhere.iterdir())  # nothing written into the working directory
