"""A base model that is not there (``--base /nonexistent``) stops a command with one named error."""

from __future__ import annotations

import pytest

from common.backbones import ALIASES, ModelNotFoundError, check_model_source, resolve_backbone
from train import boundary, init_model, pipeline, r1, r2

MISSING = "/nonexistent/cre-r1"


def test_models_that_can_exist_pass_through_unchanged(tiny_backbone_dir, tmp_path, monkeypatch):
    folder = str(tiny_backbone_dir("encoder"))
    monkeypatch.chdir(tmp_path)  # no local folder shadows the Hub ids below
    for name in [*ALIASES, folder, "gpt2", "sentence-transformers/all-MiniLM-L6-v2"]:
        assert check_model_source(name) == name
    assert resolve_backbone(folder) == folder
    assert resolve_backbone("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"  # users with the Hub


def test_paths_that_name_nothing_are_refused_with_the_reason(tmp_path, monkeypatch):
    with pytest.raises(
        ModelNotFoundError,
        match=f"no checkpoint or backbone at {MISSING}: the path does not exist, and it is not a known alias",
    ):
        resolve_backbone(MISSING)
    with pytest.raises(ModelNotFoundError, match="is a folder without config.json"):
        check_model_source(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(ModelNotFoundError, match="is a file: a CRE checkpoint or a backbone is a folder"):
        check_model_source(tmp_path / "weights.bin")
    # "outputs/r1" has a Hub id's shape, but with a local ./outputs it is a path that Round 1 never wrote.
    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no checkpoint or backbone at outputs/r1"):
        check_model_source("outputs/r1")
    assert issubclass(ModelNotFoundError, FileNotFoundError)


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        (r1.main, ["--data", "{data}", "--base", MISSING, "--out", "{out}"]),
        (r2.main, ["--data", "{data}", "--base", MISSING, "--out", "{out}"]),
        (boundary.main, ["--data", "{data}", "--base", MISSING, "--out", "{out}"]),
        (init_model.main, ["--backbone", MISSING, "--out", "{out}"]),
        (pipeline.main, ["--backbone", MISSING, "--out", "{out}"]),
    ],
    ids=["r1", "r2", "boundary", "init_model", "pipeline"],
)
def test_a_command_with_a_missing_base_stops_first_with_one_line(tmp_path, capsys, command, argv):
    out = tmp_path / "out"
    argv = [arg.format(data=tmp_path / "data", out=out) for arg in argv]  # the data folder is missing too
    assert command(argv) == 2
    err = capsys.readouterr().err
    assert f"error: no checkpoint or backbone at {MISSING}: the path does not exist" in err
    assert "Traceback" not in err and "training data" not in err  # the base is checked first
    assert not out.exists()  # nothing was started


def test_r2_checks_the_graft_target_before_the_data(tmp_path, tiny_backbone_dir, capsys):
    argv = ["--data", str(tmp_path / "data"), "--base", str(tiny_backbone_dir("encoder"))]
    argv += ["--out", str(tmp_path / "out"), "--task-adapter", "jd-cv", "--graft-onto", MISSING]
    assert r2.main(argv) == 2
    assert f"error: no checkpoint or backbone at {MISSING}" in capsys.readouterr().err
