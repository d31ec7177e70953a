"""LLM-as-judge: rubric arithmetic, answer parsing, and whole runs against the real test chat server."""

from __future__ import annotations

import json

import pytest

from common.chat import GeneratorUnavailable, get_generator
from eval.__main__ import main
from eval.judge import Judge, MalformedJudgement, parse_judgement, rubric_total

JDS = {"jd-py": "Senior Python developer. MUST: Python. Preferred: AWS."}
CVS = {
    "cv-fit": "python developer with aws",
    "cv-no-aws": "python developer",
    "cv-java": "java developer",
    "cv-chatty": "says hello",
    "cv-weak": "chef",
}


def respond(messages: list[dict]) -> str:
    """The test server's judge: a verdict decided by keywords of the résumé part of the prompt."""
    cv = messages[-1]["content"].split("RÉSUMÉ:\n", 1)[1]
    high = {"career": 90, "skills": 95, "education": 80, "innovation": 70}
    if "hello" in cv:
        return "Looks like a great candidate to me!"
    if "chef" in cv:
        return json.dumps({"career": 10, "skills": 120, "education": 0, "innovation": 0})
    if "java" in cv:
        return json.dumps({**high, "must_unmet": ["Python"], "preferred_missing": []})
    missing = [] if "aws" in cv else ["AWS"]
    return "```json\n" + json.dumps({**high, "must_unmet": [], "preferred_missing": missing}) + "\n```"


@pytest.fixture(scope="module")
def chat_server():
    from tests.chat_server import ChatServer

    with ChatServer(responder="tests.test_eval_judge:respond") as server:
        yield server


def test_rubric_weights_and_caps():
    scores = {"career": 80, "skills": 90, "education": 60, "innovation": 100}
    assert rubric_total(scores, [], []) == pytest.approx(0.35 * 80 + 0.40 * 90 + 0.15 * 60 + 0.10 * 100)
    assert rubric_total(scores, ["5 years Python"], ["AWS"]) == 50.0
    assert rubric_total({k: 100 for k in scores}, [], ["AWS"]) == 85.0
    assert rubric_total({k: 40 for k in scores}, [], ["AWS"]) == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("no idea", "no JSON object"),
        ('{"career": 1,}', "invalid JSON"),
        ('{"career": 50, "skills": 50, "education": 50}', "bad score"),
        ('{"career": true, "skills": 50, "education": 50, "innovation": 1}', "bad score"),
        ('{"career": 1, "skills": 1, "education": 1, "innovation": 1, "must_unmet": "SQL"}', "bad list"),
    ],
)
def test_malformed_answers_are_classified(answer, reason):
    with pytest.raises(MalformedJudgement) as err:
        parse_judgement(answer)
    assert err.value.reason == reason


def test_judge_pools_against_the_chat_server_counts_malformed_and_caches(chat_server, tmp_path):
    generator = get_generator("openai", base_url=chat_server.url, cache_dir=tmp_path / "answers", retries=0)
    requests_before = len(chat_server.requests())
    pools = {"jd-py": list(CVS)}
    labels = Judge(generator).judge_pools(JDS, CVS, pools)
    assert labels.qrels == {"jd-py": {"cv-fit": 1, "cv-no-aws": 1, "cv-java": 0}}
    assert labels.totals["jd-py"]["cv-no-aws"] == 85.0 and labels.totals["jd-py"]["cv-java"] == 50.0
    assert labels.summary() == {
        "judged": 3,
        "positive": 2,
        "malformed": 2,
        "malformed_reasons": {"no JSON object": 1, "bad score": 1},
        "threshold": 75.0,
    }
    assert sorted(labels.malformed_pairs) == [("jd-py", "cv-chatty"), ("jd-py", "cv-weak")]
    assert labels.to_trec().splitlines() == ["jd-py 0 cv-fit 1", "jd-py 0 cv-no-aws 1", "jd-py 0 cv-java 0"]
    requests = len(chat_server.requests())
    assert requests - requests_before == 5
    again = Judge(generator).judge_pools(JDS, CVS, {"jd-py": ["cv-fit", "cv-java"]}, top_n=1)
    assert again.qrels == {"jd-py": {"cv-fit": 1}}
    assert len(chat_server.requests()) == requests  # answered from the cache


def test_broken_backend_replies_are_counted_and_a_dead_backend_stops(tmp_path):
    from tests.chat_server import ChatServer

    with ChatServer(responses=["{}"], malformed_every=1) as server:
        generator = get_generator("openai", base_url=server.url, cache_dir=False, retries=0)
        labels = Judge(generator).judge_pools(JDS, CVS, {"jd-py": ["cv-fit", "cv-java"]})
    assert labels.summary()["malformed_reasons"] == {"backend reply is not a chat completion": 2}
    with ChatServer(responses=["{}"], die_after=0) as server:
        generator = get_generator("openai", base_url=server.url, cache_dir=False, retries=0)
        with pytest.raises(GeneratorUnavailable):
            Judge(generator).judge_pools(JDS, CVS, {"jd-py": ["cv-fit"]})


def test_cli_judge_writes_qrels_that_compare_can_read(chat_server, tmp_path):
    queries = tmp_path / "jds.tsv"
    queries.write_text("".join(f"{k}\t{v}\n" for k, v in JDS.items()))
    corpus = tmp_path / "cvs.jsonl"
    corpus.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in CVS.items()))
    out = tmp_path / "judged"
    argv = ["judge", "--queries", str(queries), "--corpus", str(corpus), "--base-url", chat_server.url]
    argv += ["--top-n", "5", "--answer-cache", str(tmp_path / "answers"), "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "judged.json").read_text())
    assert summary["judged"] == 3 and summary["malformed"] == 2
    from eval.ir_data import load_trec

    dataset = load_trec(queries, corpus, out / "judged.qrels")
    assert dataset.qrels == {"jd-py": {"cv-fit": 1.0, "cv-no-aws": 1.0}}


def test_cli_judge_refuses_to_send_cvs_to_openai_without_explicit_permission(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    missing = str(tmp_path / "never-read.tsv")  # refused before any data is read
    argv = ["judge", "--queries", missing, "--corpus", missing, "--out", str(tmp_path / "judged")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "api.openai.com" in error and "--base-url" in error and "--allow-openai-api" in error
    assert not (tmp_path / "judged").exists()
