"""The openai backend against a real chat-completions server process on 127.0.0.1 (tests/chat_server.py)."""

import json
import logging
import os
import subprocess
import sys

import pytest

from common.chat import GeneratorUnavailable, MalformedResponse, OpenAIChatGenerator, ThirdPartyNotAllowed
from tests.chat_server import REPO_ROOT, ChatServer
from train.synth import load_seed_jds, run_pipeline
from train.synth.generators import get_generator
from train.synth.pipeline import MALFORMED_STOP_AFTER

RULES = "train.synth.rules:RulesGenerator"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(server, cache_dir, **options):
    return get_generator(
        "openai",
        model="test-model",
        base_url=server.url,
        api_key="k",
        cache_dir=cache_dir,
        retries=1,
        timeout=10,
        **options,
    )


@pytest.fixture(scope="module")
def jds():
    return load_seed_jds()[::40]  # 9 JDs


@pytest.fixture(scope="module")
def reference(jds, tmp_path_factory):
    """The same JDs through the rules backend directly: what the server-backed runs must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    run_pipeline(jds, backend="rules", out_dir=out, progress=False)
    return out


def synthesise(jds, server, tmp_path, concurrency=2):
    """Run the pipeline through ``server`` into ``tmp_path/run`` (answers cached in ``tmp_path/cache``)."""
    generator = client(server, tmp_path / "cache", concurrency=concurrency)
    return run_pipeline(jds, out_dir=tmp_path / "run", generator=generator, progress=False)


def texts(out, name):
    return [
        {k: v for k, v in json.loads(line).items() if k != "provenance"}
        for line in (out / f"{name}.jsonl").read_text().splitlines()
    ]


def test_complete_caches_answers_on_disk(tmp_path):
    with ChatServer(responses=["hello", "other"]) as server:
        generator = client(server, tmp_path)
        assert generator.complete(MESSAGES, max_tokens=5) == "hello"
        assert (
            OpenAIChatGenerator(model="test-model", base_url=server.url, cache_dir=tmp_path).complete(
                MESSAGES, max_tokens=5
            )
            == "hello"
        )
        assert len(server.requests()) == 1  # the second client read the cache
        assert generator.complete(MESSAGES, max_tokens=6) == "other"  # different parameters, new request
    with pytest.raises(GeneratorUnavailable):
        client(server, tmp_path).complete([{"role": "user", "content": "new prompt"}])


@pytest.mark.parametrize("mode", ["malformed_every", "foreign_every"])
def test_replies_that_are_not_chat_completions_raise_without_quoting_them(tmp_path, mode):
    with ChatServer(responses=["secret reply"], **{mode: 1}) as server:
        with pytest.raises(MalformedResponse, match="not valid JSON|not a chat completion") as error:
            client(server, tmp_path).complete(MESSAGES)
        assert len(server.requests()) == 1  # an answered request is not retried within the run
    assert (
        server.url in str(error.value)
        and "secret" not in str(error.value)
        and "trunc" not in str(error.value)
    )
    assert len(client(server, tmp_path).cache) == 0  # nor cached: the next run asks again


def test_retries_are_bounded_and_logged_as_warnings(tmp_path, caplog):
    with ChatServer(responses=["hello"], fail_first=1) as server, caplog.at_level(logging.WARNING):
        assert client(server, tmp_path).complete(MESSAGES) == "hello"
        assert [request["mode"] for request in server.requests()] == ["503", "ok"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [f"{server.url}: HTTP 503", f"{server.url}: retry 1 of 1"]
    with ChatServer(responses=["hello"], fail_first=5) as server:
        with pytest.raises(GeneratorUnavailable, match="HTTP 503 after 1 retries"):
            client(server, tmp_path).complete([{"role": "user", "content": "other"}])
        assert len(server.requests()) == 2


def test_no_endpoint_means_no_third_party_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ThirdPartyNotAllowed, match="--base-url.*--allow-openai-api"):
        get_generator("openai", cache_dir=False)
    assert (
        get_generator("openai", cache_dir=False, allow_openai_api=True).base_url
        == "https://api.openai.com/v1"
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    assert get_generator("openai", cache_dir=False).base_url == "http://127.0.0.1:9/v1"


def test_pipeline_over_http_matches_the_rules_backend(jds, reference, tmp_path):
    with ChatServer(responder=RULES) as server:
        manifest = synthesise(jds, server, tmp_path, concurrency=3)
    assert manifest["complete"] and manifest["generator"] == "openai:test-model"
    for name in ("pairs", "ranking", "jdcv", "cv_queries"):
        assert texts(tmp_path / "run", name) == texts(reference, name)


def test_a_server_dying_mid_run_loses_nothing_and_never_pays_twice(jds, reference, tmp_path):
    with ChatServer(responder=RULES, die_after=20) as dying:
        manifest = synthesise(jds, dying, tmp_path, concurrency=2)
        assert not dying.alive()
    assert not manifest["complete"] and manifest["pending_jds"] > 0 and "127.0.0.1" in manifest["failure"]
    first_keys = {request["key"] for request in dying.requests()}
    with ChatServer(responder=RULES) as server:
        manifest = synthesise(jds, server, tmp_path, concurrency=2)
    assert manifest["complete"] and manifest["pending_jds"] == 0
    second_keys = [request["key"] for request in server.requests()]
    # Requests in flight when the server died were never answered: only those may be asked again.
    assert 0 < len(first_keys) <= 20 and not first_keys & set(second_keys)
    assert len(second_keys) == len(set(second_keys))
    for name in ("pairs", "ranking", "role_negatives", "jdcv", "cv_queries"):
        assert texts(tmp_path / "run", name) == texts(reference, name)


def test_malformed_replies_leave_jds_pending_and_bad_outputs_are_rejected(jds, reference, tmp_path):
    with ChatServer(responder=RULES, malformed_every=7, foreign_every=11, garbage_every=5) as server:
        manifest = synthesise(jds, server, tmp_path)
        first = server.requests()
    assert {request["mode"] for request in first} == {"ok", "malformed", "foreign", "garbage"}
    assert not manifest["complete"] and manifest["pending_jds"] > 0
    assert "were not chat completions; their JDs are pending" in manifest["failure"]
    reasons = {reason for counts in manifest["stages"].values() for reason in counts["reasons"]}
    assert "unparseable_output" in reasons and "malformed_response" not in reasons
    # Garbage content is the model's answer (judged and cached); malformed replies are asked again.
    with ChatServer(responder=RULES, garbage_every=5) as server:
        manifest = synthesise(jds, server, tmp_path)
        second = {request["key"] for request in server.requests()}
    assert {r["key"] for r in first if r["mode"] in ("malformed", "foreign")} <= second
    assert not {r["key"] for r in first if r["mode"] in ("ok", "garbage")} & second
    assert manifest["complete"] and manifest["pending_jds"] == 0 and manifest["failure"] is None
    assert manifest["stages"]["paraphrase"]["kept"] > 0


def test_a_server_speaking_another_api_stops_the_run_early(tmp_path):
    jds = load_seed_jds()[: MALFORMED_STOP_AFTER + 5]
    with ChatServer(responder=RULES, foreign_every=1) as server:
        manifest = synthesise(jds, server, tmp_path, concurrency=1)
        assert len(server.requests()) == MALFORMED_STOP_AFTER
    assert not manifest["complete"] and manifest["pending_jds"] == len(jds)
    assert manifest["failure"].startswith(f"most replies of openai:test-model ({MALFORMED_STOP_AFTER} of ")


def cli(server, tmp_path, *extra):
    """``python -m train.synth`` (a real process) on 3 seed JDs through ``server``."""
    command = [sys.executable, "-m", "train.synth", "--jds", "default", "--limit", "3", "--backend", "openai"]
    command += ["--model", "test-model", "--base-url", server.url, "--retries", "0", "--timeout", "10"]
    command += [
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
        *extra,
    ]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_cli_fails_on_foreign_replies_and_a_rerun_against_a_healthy_server_resumes(tmp_path):
    with ChatServer(responder=RULES, foreign_every=1) as server:
        result = cli(server, tmp_path)
    assert result.returncode == 1, result.stderr
    assert "most replies of openai:test-model (3 of 3) were not chat completions" in result.stderr
    assert "3 JDs pending" in result.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["pending_jds"] == 3 and not any(manifest["files"].values())
    with ChatServer(responder=RULES) as server:
        result = cli(server, tmp_path)
        assert len(server.requests()) > 3 * 8
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["pending_jds"] == 0 and all(manifest["files"].values())


def test_cli_fails_when_a_stage_keeps_nothing(tmp_path):
    with ChatServer(responses=["Sorry, I cannot help with that."]) as server:
        result = cli(server, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "failed: stage extraction kept 0 of 3 samples (unparseable_output 3)" in result.stderr


def test_cli_refuses_openai_api_without_explicit_permission(tmp_path):
    command = [sys.executable, "-m", "train.synth", "--backend", "openai", "--out", str(tmp_path / "run")]
    env = {key: value for key, value in os.environ.items() if key != "OPENAI_BASE_URL"}
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert (
        result.returncode == 2 and "api.openai.com" in result.stderr and "--allow-openai-api" in result.stderr
    )
    assert not (tmp_path / "run").exists()
