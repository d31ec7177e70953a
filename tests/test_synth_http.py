"""The openai backend against a real chat-completions server process on 127.0.0.1 (tests/chat_server.py)."""

import json

import pytest

from tests.chat_server import ChatServer
from train.synth import load_seed_jds, run_pipeline
from train.synth.generators import GeneratorUnavailable, MalformedResponse, OpenAIChatGenerator, get_generator

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
        backoff=0.01,
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


def test_malformed_bodies_raise_after_retries(tmp_path):
    with ChatServer(responses=["x"], malformed_every=1) as server:
        with pytest.raises(MalformedResponse, match="malformed"):
            client(server, tmp_path).complete(MESSAGES)
        assert len(server.requests()) == 2  # first try + one retry


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


def test_malformed_outputs_are_rejected_with_a_reason(jds, tmp_path):
    with ChatServer(responder=RULES, malformed_every=7, garbage_every=5) as server:
        manifest = run_pipeline(
            jds, out_dir=tmp_path, generator=client(server, tmp_path / "cache"), progress=False
        )
        modes = {request["mode"] for request in server.requests()}
    assert manifest["complete"] and modes == {"ok", "malformed", "garbage"}
    reasons = {reason for counts in manifest["stages"].values() for reason in counts["reasons"]}
    assert {"malformed_response", "unparseable_output"} <= reasons
    assert manifest["stages"]["paraphrase"]["kept"] > 0
