"""CRE-T1 reasoning traces: the rules trace, validation, and the chat backends over a real HTTP server."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from common.chat import ThirdPartyNotAllowed
from cre.configuration_cre import InputTypeError
from cre.modeling_cre import join_reasoning
from tests.chat_server import ChatServer
from train.reasoning import TraceGenerator, parse_trace, trace_problem
from train.synth.prompts import parse_task
from train.synth.traces import reasoning_trace

JD = (
    "Job title: Senior Backend Engineer\n\n"
    "You will own the payments API and lead the design of new services. "
    "You bring 6+ years of experience with Python and PostgreSQL. "
    "Experience with Kubernetes is a plus."
)
QUESTION = "Which candidates have shipped Kubernetes deployments with Terraform?"


def chatty_about_questions(messages: list[dict]) -> str:
    """A chat server responder: rules traces for JDs, chatter (an off-topic trace) for questions."""
    text = parse_task(messages)[2]["text"]
    trace = "Sure! Happy to help." if text.endswith("?") else reasoning_trace(text)
    return json.dumps({"trace": trace})


def test_rules_trace_splits_must_haves_from_nice_to_haves_and_names_related_titles():
    trace = reasoning_trace(JD)
    assert trace.startswith("Role: Backend Engineer, senior level")
    must = trace.split("Must have: ")[1].split(".")[0]
    nice = trace.split("Nice to have: ")[1].split(".")[0]
    assert "Python" in must and "PostgreSQL" in must and "6+ years" in must
    assert nice == "Kubernetes" and "Kubernetes" not in must
    related = trace.split("Related titles: ")[1]
    assert related.startswith("Back-End Developer, Server-Side Engineer")  # the title's alternates first
    assert "Backend Engineer" not in related  # other names of the role, not itself
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
        ("Role: Backend Engineers.", None),  # plural and singular alike
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


def test_encode_expands_only_the_query_side_and_a_second_encode_sends_nothing(tiny_cre, tmp_path):
    model = tiny_cre("decoder")
    queries = [JD, QUESTION, JD]
    expected = model.encode([join_reasoning(q, reasoning_trace(q)) for q in queries], kind="jd")
    with ChatServer(responder="train.synth.traces:RulesTraces") as server:
        reason = TraceGenerator("openai", model="test-llm", base_url=server.url, cache_dir=tmp_path)
        np.testing.assert_allclose(model.encode(queries, kind="jd", reason=reason), expected, atol=1e-5)
        assert len(server.requests()) == 2  # one request per distinct query
        fresh = TraceGenerator("openai", model="test-llm", base_url=server.url, cache_dir=tmp_path)
        np.testing.assert_allclose(model.encode(queries, kind="jd", reason=fresh), expected, atol=1e-5)
        assert len(server.requests()) == 2  # traces come from the on-disk cache
        cvs = model.encode(queries, kind="cv", reason=reason)
        np.testing.assert_allclose(cvs, model.encode(queries, kind="cv"), atol=1e-6)  # never expanded
        assert len(server.requests()) == 2
    assert not np.allclose(expected, model.encode(queries, kind="jd"), atol=1e-3)


def test_encode_falls_back_to_the_plain_query_with_one_counted_warning(tiny_cre):
    model = tiny_cre("decoder")
    with ChatServer(responder="tests.test_reasoning:chatty_about_questions") as server:
        reason = TraceGenerator("openai", base_url=server.url, cache_dir=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vectors = model.encode([JD, QUESTION, QUESTION], kind="query", reason=reason)
    messages = [str(w.message) for w in caught]
    assert messages == ["2 of 3 queries got no valid reasoning trace and were encoded without one."]
    assert caught[0].filename == __file__  # points at the caller
    plain = model.encode([QUESTION], kind="query")[0]
    np.testing.assert_allclose(vectors[1:], [plain, plain], atol=1e-6)
    expanded = model.encode(join_reasoning(JD, reasoning_trace(JD)), kind="query")
    np.testing.assert_allclose(vectors[0], expanded, atol=1e-6)


def test_encode_refuses_a_reason_that_is_not_a_trace_function(tiny_cre):
    model = tiny_cre("encoder")
    with pytest.raises(InputTypeError, match="reason must be a callable"):
        model.encode([JD], kind="jd", reason="rules")
    with pytest.raises(InputTypeError, match="reason must return a trace string or None, got int"):
        model.encode([JD], kind="jd", reason=lambda query: 3)


@pytest.mark.integration
def test_local_smollm2_writes_a_trace_or_is_rejected(tmp_path):
    reason = TraceGenerator("local", max_new_tokens=64, cache_dir=tmp_path)
    trace = reason.trace(JD)
    assert isinstance(trace, str)
    assert reason(JD) == (None if trace_problem(JD, trace) else trace)
    assert len(reason.backend.cache) == 1


def test_bench_reasoning_expands_the_queries_and_leaves_the_corpus():
    from bench.reasoning import trace_cost, with_reasoning
    from eval.benchmarks import Benchmark
    from eval.ir_data import IRDataset

    dataset = IRDataset.from_dicts(
        {"q1": JD, "q2": "hello"}, {"d1": JD, "d2": "Nurse"}, {"q1": {"d1": 1}, "q2": {"d2": 1}}
    )
    benchmark = Benchmark("toy", dataset, "global", {"recall": [1]}, query_kind="jd", doc_kind="jd")
    with pytest.warns(UserWarning, match="1 of 2 queries got no valid reasoning trace"):
        expanded = with_reasoning(benchmark, TraceGenerator("rules"))
    assert expanded.dataset.queries == {"q1": join_reasoning(JD, reasoning_trace(JD)), "q2": "hello"}
    assert expanded.dataset.corpus == dataset.corpus and expanded.dataset.qrels == dataset.qrels
    assert benchmark.dataset.queries["q1"] == JD  # the original is left as it was
    cost = trace_cost(TraceGenerator("rules"), [JD, "hello"], repeats=1)
    assert cost["queries"] == 2 and cost["valid_share"] == 0.5 and cost["ms_per_query"] > 0


def test_load_encoder_refuses_a_pooling_it_cannot_apply(tiny_backbone_dir):
    from eval.models import load_encoder

    with pytest.raises(ValueError, match="pooling='embtoken' applies to a decoder alias built in memory"):
        load_encoder(str(tiny_backbone_dir("decoder")), pooling="embtoken", cache_dir=False)
