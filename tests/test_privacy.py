"""CV and JD text never reaches logs, progress bars or error messages: real synthesis and judge runs
against the real test chat server (tests/chat_server.py), with every failure mode that produces a
message (HTTP 503 and retries, invalid JSON, another API's reply shape, answers that fail validation,
answers that put the résumé where a score belongs), and every log level captured."""

from __future__ import annotations

import json
import logging

import pytest

from tests.chat_server import ChatServer
from train.synth import load_seed_jds

SENTINEL = "Zyxwq Sentinel-4471"
RULES = "train.synth.rules:RulesGenerator"


def leaky_judge(messages: list[dict]) -> str:
    """A judge that copies the résumé into a score field (a malformed verdict that quotes the CV)."""
    cv = messages[-1]["content"].split("RÉSUMÉ:\n", 1)[1]
    return json.dumps({"career": cv, "skills": 50, "education": 50, "innovation": 50})


def assert_never_shown(caplog, capfd) -> str:
    """The sentinel is in no log record and in nothing written to stdout/stderr; returns the logs."""
    out, err = capfd.readouterr()
    logs = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert logs.strip(), "no log was captured: the check would be vacuous"
    assert SENTINEL not in logs and SENTINEL not in out and SENTINEL not in err
    return logs


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)  # the SDK's and the HTTP client's debug records too
    return caplog


def test_synthesis_never_logs_jd_or_cv_text(tmp_path, debug_logs, capfd):
    from train.synth.__main__ import main

    jds = load_seed_jds()[:3]
    path = tmp_path / "jds.jsonl"
    path.write_text(
        "".join(json.dumps({**jd.to_dict(), "text": f"{jd.text}\nContact: {SENTINEL}"}) + "\n" for jd in jds)
    )
    argv = ["--jds", str(path), "--backend", "openai", "--model", "m", "--retries", "1", "--timeout", "10"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    # Echoed prompts (they hold the JD) in another API's shape, invalid bodies, 503s, unparseable answers.
    with ChatServer(foreign_every=2, malformed_every=3, fail_first=2) as server:
        assert main([*argv, "--base-url", server.url]) in (1, 3)
    logs = assert_never_shown(debug_logs, capfd)
    assert "retry 1 of 1" in logs and "were not chat completions" in logs
    with ChatServer(responder=RULES) as server:
        assert main([*argv, "--base-url", server.url]) == 0
    assert_never_shown(debug_logs, capfd)
    assert SENTINEL in (tmp_path / "run" / "anchors.jsonl").read_text()  # the text did go through


def test_judge_never_logs_cv_text(tmp_path, debug_logs, capfd):
    from eval.__main__ import main

    queries, corpus = tmp_path / "jds.tsv", tmp_path / "cvs.jsonl"
    queries.write_text("jd-1\tSenior Python developer. MUST: Python.\n")
    corpus.write_text(
        "".join(
            json.dumps({"id": f"cv-{n}", "text": f"Python developer {n}. {SENTINEL}"}) + "\n"
            for n in range(8)
        )
    )
    argv = ["judge", "--queries", str(queries), "--corpus", str(corpus), "--top-n", "8"]
    argv += ["--answer-cache", str(tmp_path / "answers"), "--out", str(tmp_path / "judged")]
    with ChatServer(
        responder="tests.test_privacy:leaky_judge", foreign_every=2, malformed_every=3, fail_first=1
    ) as s:
        assert main([*argv, "--base-url", s.url]) == 0
    assert_never_shown(debug_logs, capfd)
    summary = json.loads((tmp_path / "judged" / "judged.json").read_text())
    assert summary["malformed"] == 8 and "bad score" in summary["malformed_reasons"]
    assert SENTINEL not in (tmp_path / "judged" / "judged.json").read_text()
    cached = "".join(path.read_text() for path in (tmp_path / "answers").rglob("*.json"))
    assert SENTINEL in cached  # the CVs did reach the judge, and its answers are cached (docs/privacy.md)


def test_hybrid_index_and_search_never_show_cv_text(tiny_cre, tmp_path, debug_logs, capfd, monkeypatch):
    from cvsearch.cli import main

    monkeypatch.chdir(tmp_path)
    tiny_cre("encoder", max_length=24).save_pretrained(tmp_path / "model")
    lines = [json.dumps({"id": f"cv-{n}", "text": f"python developer {n}. {SENTINEL}"}) for n in range(4)]
    (tmp_path / "cvs.jsonl").write_text("\n".join(lines) + "\n")
    common = ["--model", str(tmp_path / "model"), "--db", "cvs.db"]
    assert main(["index", "cvs.jsonl", "--id-field", "id", "--hybrid", *common]) == 0
    # The question names the sentinel, so BM25 matches it in every stored text.
    assert main(["search", SENTINEL, "--hybrid", "--top-k", "4", *common]) == 0
    out, err = capfd.readouterr()
    hits = [json.loads(line) for line in out.splitlines()]
    assert len(hits) == 4 and all(hit["bm25_rank"] for hit in hits)  # the texts were searched
    assert SENTINEL not in out and SENTINEL not in err
    assert debug_logs.text.strip() and SENTINEL not in debug_logs.text
    # A purge reads every stored text back and writes it into a new collection.
    assert main(["delete", "cv-0", "--purge", *common]) == 0
    out, err = capfd.readouterr()
    assert "purged cvs.db: 3 CV(s)" in out and SENTINEL not in out + err + debug_logs.text
