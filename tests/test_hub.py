"""Publishing with train.hub, end to end against the Hub test double of tests/hub_server.py."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.hub_server import HubServer
from train.hub import HubPublishError, push_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
UPLOADED = [
    "1_Pooling/config.json",
    "README.md",
    "config.json",
    "model.safetensors",
    "modeling_cre.py",
    "modules.json",
    "tokenizer.json",
    "vocab.txt",
]
# What a training round leaves in its output folder and must never reach the Hub.
LOCAL_ONLY = {
    "logs/train_log.csv": b"step,loss\n1,0.5\n",
    "logs/tensorboard/events.out.tfevents.1.host": b"\x00events",
    "state/step-2/model.safetensors": b"\x01optimiser-era weights",
    "state/step-2/optimizer.bin": b"\x02adam moments",
    "state/step-2/random_states_0.pkl": b"\x03rng",
    "state/step-2/scheduler.json": b"{}",
    "training_summary.json": b'{"base_model": "/home/someone/runs/r1"}',
}


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A checkpoint-like folder: text, nested and binary files, plus local clutter that must stay local."""
    folder = tmp_path / "checkpoint"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}\n')
    (folder / "config.json").write_text('{"model_type": "bert", "hidden_size": 16}\n')
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags:\n- cre\n---\n# CRE test checkpoint\n")
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 512 + b"\0\xff" * 1000)
    (folder / "modeling_cre.py").write_text('"""CRE model code."""\n')
    (folder / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "x"}]\n')
    (folder / "tokenizer.json").write_text('{"version": "1.0"}\n')
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\nnurse\n")
    for name, content in LOCAL_ONLY.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "modeling_cre.cpython-311.pyc").write_bytes(b"\x00compiled")
    return folder


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, hidden ones included."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def local_files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in UPLOADED}


def closed_port_url() -> str:
    """The URL of a 127.0.0.1 port nothing listens on, so connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_hub_server_whoami_knows_the_token_user(hub):
    assert HfApi(endpoint=hub.url).whoami(token=hub.token)["name"] == "cre-tester"
    with pytest.raises(HfHubHTTPError, match="Invalid user token"):
        HfApi(endpoint=hub.url).whoami(token="hf_wrong")


def test_push_then_download_from_fresh_cache_gives_same_bytes(hub, checkpoint, tmp_path):
    commit = push_folder(
        checkpoint, "cre-tester/ckpt", token=hub.token, endpoint=hub.url, commit_message="First CRE weights"
    )

    assert commit == f"{hub.url}/cre-tester/ckpt/commit/{commit.oid}"
    repo = hub.repos["cre-tester/ckpt"]
    assert repo.branches["main"] == commit.oid
    assert repo.commits[commit.oid].message == "First CRE weights"
    assert not repo.private
    assert hub.files("cre-tester/ckpt") == local_files(checkpoint)  # no .git, no __pycache__
    # logs/, state/ and the run record were never even announced to the server
    assert hub.received_paths == set(UPLOADED)

    snapshot = Path(snapshot_download("cre-tester/ckpt", endpoint=hub.url, cache_dir=tmp_path / "cache"))
    downloaded = {
        path.relative_to(snapshot).as_posix(): path.read_bytes()
        for path in snapshot.rglob("*")
        if path.is_file()
    }
    assert downloaded == local_files(checkpoint)
    single = hf_hub_download(
        "cre-tester/ckpt", "1_Pooling/config.json", endpoint=hub.url, cache_dir=tmp_path / "cache2"
    )
    assert Path(single).read_bytes() == (checkpoint / "1_Pooling" / "config.json").read_bytes()
    assert hub.unknown_requests == []


def test_push_private_repo_to_a_new_branch(hub, checkpoint, tmp_path):
    commit = push_folder(
        checkpoint,
        "cre-tester/private-ckpt",
        token=hub.token,
        endpoint=hub.url,
        private=True,
        revision="v0.1",
        commit_message="Release candidate",
    )

    repo = hub.repos["cre-tester/private-ckpt"]
    assert repo.private
    assert repo.branches["v0.1"] == commit.oid
    assert hub.files("cre-tester/private-ckpt", "v0.1") == local_files(checkpoint)
    assert hub.files("cre-tester/private-ckpt", "main") == {}
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(
            "cre-tester/private-ckpt", "config.json", revision="v0.1", endpoint=hub.url, token=False
        )
    with_token = hf_hub_download(
        "cre-tester/private-ckpt",
        "config.json",
        revision="v0.1",
        endpoint=hub.url,
        token=hub.token,
        cache_dir=tmp_path / "cache",
    )
    assert Path(with_token).read_bytes() == (checkpoint / "config.json").read_bytes()


def test_repush_commits_only_changes_and_unchanged_folder_is_a_no_op(hub, checkpoint):
    first = push_folder(checkpoint, "cre-tester/ckpt", token=hub.token, endpoint=hub.url)
    assert push_folder(checkpoint, "cre-tester/ckpt", token=hub.token, endpoint=hub.url).oid == first.oid

    (checkpoint / "config.json").write_text('{"model_type": "bert", "hidden_size": 32}\n')
    second = push_folder(checkpoint, "cre-tester/ckpt", token=hub.token, endpoint=hub.url)

    assert second.oid != first.oid
    assert hub.files("cre-tester/ckpt") == local_files(checkpoint)
    assert hub.count("commit") == 2


def test_token_is_read_from_hf_token(hub, checkpoint, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.token)
    push_folder(checkpoint, "cre-tester/ckpt", endpoint=hub.url)
    assert hub.files("cre-tester/ckpt") == local_files(checkpoint)


def test_server_down_gives_clear_error_and_keeps_files(checkpoint):
    before = file_hashes(checkpoint)
    endpoint = closed_port_url()

    with pytest.raises(HubPublishError) as caught:
        push_folder(
            checkpoint, "cre-tester/ckpt", token="hf_any", endpoint=endpoint, max_retries=2, retry_wait=0.01
        )

    message = str(caught.value)
    assert "'cre-tester/ckpt'" in message and endpoint in message and "cannot connect" in message
    assert caught.value.attempts == 3
    assert file_hashes(checkpoint) == before


def test_5xx_in_the_middle_of_an_upload_is_retried(hub, checkpoint):
    before = file_hashes(checkpoint)
    hub.fail("commit", status=503)

    commit = push_folder(checkpoint, "cre-tester/ckpt", token=hub.token, endpoint=hub.url, retry_wait=0.01)

    assert hub.count("commit") == 2
    assert hub.repos["cre-tester/ckpt"].branches["main"] == commit.oid
    assert hub.files("cre-tester/ckpt") == local_files(checkpoint)
    assert file_hashes(checkpoint) == before


def test_lost_commit_answer_is_retried_without_a_second_commit(hub, checkpoint):
    hub.lose_answer("commit")

    commit = push_folder(checkpoint, "cre-tester/ckpt", token=hub.token, endpoint=hub.url, retry_wait=0.01)

    repo = hub.repos["cre-tester/ckpt"]
    assert hub.count("create") == 2  # the push was tried again
    assert hub.count("commit") == 1  # and found every file already there
    assert len(repo.commits) == 2  # the initial commit and the push
    assert commit.oid == repo.branches["main"]
    assert hub.files("cre-tester/ckpt") == local_files(checkpoint)


def test_persistent_5xx_gives_clear_error_and_publishes_nothing(hub, checkpoint):
    before = file_hashes(checkpoint)
    hub.fail("commit", status=500, times=10)

    with pytest.raises(HubPublishError) as caught:
        push_folder(
            checkpoint, "cre-tester/ckpt", token=hub.token, endpoint=hub.url, max_retries=2, retry_wait=0.01
        )

    message = str(caught.value)
    assert "'cre-tester/ckpt'" in message and hub.url in message
    assert "HTTP 500" in message and "after 3 attempts" in message
    assert hub.count("commit") == 3
    assert hub.files("cre-tester/ckpt") == {}
    assert file_hashes(checkpoint) == before


def test_bad_token_fails_at_once_with_clear_error(hub, checkpoint):
    before = file_hashes(checkpoint)

    with pytest.raises(HubPublishError) as caught:
        push_folder(checkpoint, "cre-tester/ckpt", token="hf_wrong", endpoint=hub.url, retry_wait=0.01)

    message = str(caught.value)
    assert "'cre-tester/ckpt'" in message and hub.url in message
    assert "rejected the token (HTTP 401" in message
    assert caught.value.attempts == 1
    assert hub.count("create") == 1
    assert hub.repos == {}
    assert file_hashes(checkpoint) == before


def test_foreign_namespace_is_forbidden_without_retry(hub, checkpoint):
    with pytest.raises(HubPublishError, match="may not write to this repo \\(HTTP 403"):
        push_folder(checkpoint, "someone-else/ckpt", token=hub.token, endpoint=hub.url, retry_wait=0.01)
    assert hub.count("create") == 1


def test_bad_folder_fails_before_any_request(hub, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        push_folder(tmp_path / "missing", "cre-tester/ckpt", token=hub.token, endpoint=hub.url)
    (tmp_path / "empty" / ".git").mkdir(parents=True)
    (tmp_path / "empty" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    with pytest.raises(ValueError, match="holds no file"):
        push_folder(tmp_path / "empty", "cre-tester/ckpt", token=hub.token, endpoint=hub.url)
    assert hub.requests == []


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "train.hub", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def cli_env(hub: HubServer, tmp_path: Path, token: str | None) -> dict[str, str]:
    """The CLI's environment: the test Hub as HF_ENDPOINT, an empty HF_HOME (no stored login)."""
    env = {key: value for key, value in os.environ.items() if key not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf_home"))
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def test_cli_pushes_with_options(hub, checkpoint, tmp_path):
    result = run_cli(
        str(checkpoint),
        "cre-tester/cli",
        "--private",
        "--revision",
        "dev",
        "--message",
        "Pushed from the CLI",
        env=cli_env(hub, tmp_path, hub.token),
    )

    assert result.returncode == 0, result.stderr
    repo = hub.repos["cre-tester/cli"]
    assert result.stdout.strip() == f"{hub.url}/cre-tester/cli/commit/{repo.branches['dev']}"
    assert repo.private
    assert repo.commits[repo.branches["dev"]].message == "Pushed from the CLI"
    assert hub.files("cre-tester/cli", "dev") == local_files(checkpoint)


@pytest.mark.parametrize(
    ("token", "expected"), [(None, "no Hub token"), ("hf_wrong", "rejected the token (HTTP 401")]
)
def test_cli_failure_is_one_clear_line(hub, checkpoint, tmp_path, token, expected):
    before = file_hashes(checkpoint)

    result = run_cli(str(checkpoint), "cre-tester/cli", env=cli_env(hub, tmp_path, token))

    assert result.returncode == 1
    assert expected in result.stderr and "cre-tester/cli" in result.stderr
    assert "Traceback" not in result.stderr
    assert file_hashes(checkpoint) == before
