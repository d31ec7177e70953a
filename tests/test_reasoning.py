"""CRE-T1 reasoning traces: the rules trace, validation, and the chat backends over a real HTTP server."""

from __future__ import annotations

import pytest

from common.chat import ThirdPartyNotAllowed
from tests.chat_server import ChatServer
from train.reasoning import TraceGenerator, parse_trace, trace_problem
from train.synth.traces import reasoning_trace

JD = (
    "Job title: Senior Backend Engineer\n\n"
    "You will own the payments API and lead the design of new services. "
    "You bring 6+ years of experience with Python and PostgreSQL. "
    "Experience with Kubernetes is a plus."
)
QUESTION = "Which candidates have shipped Kubernetes deployments with Terraform?"


def test_rules_trace_splits_must_haves_from_nice_to_haves_and_names_related_titles():
    trace = reasoning_trace(JD)
    assert trace.startswith("Role: Backend Engineer, senior level")
    must = trace.split("Must have: ")[1].split(".")[0]
    nice = trace.split("Nice to have: ")[1].split(".")[0]
    assert "Python" in must and "PostgreSQL" in must and "6+ years" in must
    assert nice == "Kubernetes" and "Kubernetes" not in must
    related = trace.split("Related titles: ")[1]
    assert related and "Backend Engineer" not in related  # other names of the role, not itself
    assert reasoning_trace(JD) == trace  # deterministic


def test_rules_trace_of_a_question_has_no_role_line_but_keeps_its_skills():
    trace = reasoning_trace(QUESTION)
    assert not trace.startswith("Role:")
    assert "Kubernetes" in trace and "Terraform" in trace


@pytest.mark.parametrize(
    ("trace", "problem"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("Python " * 121, "too long"),
        ("Sure! Here is my answer.", "off-topic"),
        ("Must have: Python, PostgreSQL.", None),
    ],
)
def test_trace_problem(trace, problem):
    assert trace_problem(JD, trace) == problem


def test_parse_trace_reads_json_or_plain_text():
    assert parse_trace('```json\n{"trace": "Must have: SQL."}\n```') == "Must have: SQL."
    assert parse_trace("Must have: SQL.") == "Must have: SQL."
    assert parse_trace('{"answer": "Must have: SQL."}') == ""
    assert parse_trace('{"trace": 3}') == ""


def test_rules_generator_returns_valid_traces_and_rejects_nothing_it_can_read():
    reason = TraceGenerator("rules")
    assert reason(JD) == reasoning_trace(JD)
    assert reasoning_trace("hello") == "" and reason("hello") is None  # nothing to reason about
    assert reason(QUESTION) == reasoning_trace(QUESTION)


def test_openai_backend_answers_through_a_real_chat_server_and_caches_on_disk(tmp_path):
    with ChatServer(responder="train.synth.traces:RulesTraces") as server:
        reason = TraceGenerator("openai", model="test-llm", base_url=server.url, cache_dir=tmp_path)
        assert reason(JD) == reasoning_trace(JD)
        assert reason(QUESTION) == reasoning_trace(QUESTION)
        assert len(server.requests()) == 2
        again = TraceGenerator("openai", model="test-llm", base_url=server.url, cache_dir=tmp_path)
        assert again(JD) == reasoning_trace(JD)
        assert len(server.requests()) == 2  # a new generator reads the disk cache, sends nothing


def test_openai_backend_rejects_chatter_and_malformed_replies(tmp_path):
    with ChatServer(responses=["Sure! Happy to help."]) as server:
        assert TraceGenerator("openai", base_url=server.url, cache_dir=False)(JD) is None
    with ChatServer(responses=["{}"], foreign_every=1) as server:
        assert TraceGenerator("openai", base_url=server.url, cache_dir=False)(JD) is None


def test_openai_backend_refuses_openai_api_without_an_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ThirdPartyNotAllowed, match="--allow-openai-api"):
        TraceGenerator("openai", cache_dir=False)


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown reasoning backend 'gpt'"):
        TraceGenerator("gpt")


@pytest.mark.integration
def test_local_smollm2_writes_a_trace_or_is_rejected(tmp_path):
    reason = TraceGenerator("local", max_new_tokens=64, cache_dir=tmp_path)
    trace = reason.trace(JD)
    assert isinstance(trace, str)
    assert reason(JD) == (None if trace_problem(JD, trace) else trace)
    assert len(reason.backend.cache) == 1
