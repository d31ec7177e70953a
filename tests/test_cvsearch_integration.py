"""The three README commands on the demo corpus with the real MiniLM weights (as `cre` subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.train_support import subprocess_env

pytestmark = pytest.mark.integration


def cre(*args: str, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "cvsearch", *args],
        cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_demo_folder_to_shortlist_in_three_commands(tmp_path):
    cre("demo-corpus", "resumes", cwd=tmp_path)
    indexed = cre("index", "resumes", "--db", "cvs.db", "--model", "minilm", cwd=tmp_path)
    assert "files skipped: 1" in indexed.stderr and "scanned_cv.pdf" in indexed.stderr
    report = json.loads((tmp_path / "cvs.db.report.json").read_text())
    assert report["collection_cvs"] == 8 and report["skipped"][0]["reason"].startswith("unreadable PDF")

    jds = {
        "nurse": "Registered nurse for our intensive care unit: patient monitoring, medication, BLS.",
        "devops": "DevOps engineer: Terraform, Kubernetes on AWS, CI/CD pipelines, on-call.",
        "accounting": "Accountant for group consolidation under IFRS, month-end close in SAP.",
    }
    (tmp_path / "jds.jsonl").write_text(
        "".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in jds.items())
    )
    found = cre(
        "search",
        "--jds",
        "jds.jsonl",
        "--id-field",
        "id",
        "--db",
        "cvs.db",
        "--model",
        "minilm",
        "--top-k",
        "3",
        cwd=tmp_path,
    )
    top = {}
    for line in found.stdout.splitlines():
        hit = json.loads(line)
        top.setdefault(hit["jd"], hit["id"])
    assert top == {
        "nurse": "registered_nurse.docx",
        "devops": "devops_engineer.pdf",
        "accounting": "accountant.docx",
    }

    again = cre("index", "resumes", "--db", "cvs.db", "--model", "minilm", cwd=tmp_path)
    assert "index unchanged: 8" in again.stderr and "index vectors: 0" in again.stderr
    assert (
        "removed 1 vector(s)"
        in cre("delete", "registered_nurse.docx", "--db", "cvs.db", "--model", "minilm", cwd=tmp_path).stdout
    )
    after = cre("search", jds["nurse"], "--db", "cvs.db", "--model", "minilm", "--exact", cwd=tmp_path)
    assert "registered_nurse.docx" not in [json.loads(line)["id"] for line in after.stdout.splitlines()]


def test_cre_encode_matches_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    from common.backbones import resolve_backbone
    from cvsearch.encoding import EncodedCorpus

    texts = [
        "Senior Python developer, AWS and Kubernetes",
        "Registered nurse, intensive care",
        "Chef de partie",
    ]
    (tmp_path / "cvs.txt").write_text("\n".join(texts) + "\n")
    cre("encode", "cvs.txt", "--out", "out", "--model", "minilm", cwd=tmp_path)
    expected = SentenceTransformer(resolve_backbone("minilm"), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    np.testing.assert_allclose(EncodedCorpus.load(tmp_path / "out").vectors, expected, atol=1e-5)


def test_hybrid_search_finds_the_resume_that_names_a_tool_the_dense_model_misses(tmp_path):
    cre("demo-corpus", "resumes", cwd=tmp_path)
    cre("index", "resumes", "--db", "cvs.db", "--model", "minilm", "--hybrid", cwd=tmp_path)
    # Questions that only name a tool or certificate, each in exactly one demo résumé.
    named = {
        "WCAG": "frontend_developer.txt",
        "Who has ACLS certification?": "registered_nurse.docx",
        "Prometheus": "devops_engineer.pdf",
        "Kafka": "backend_engineer.pdf",
        "Salesforce": "sales_manager.txt",
        "GCP": "ml_engineer.docx",
    }
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps({"text": q}) + "\n" for q in named))

    def top(*extra: str) -> list[dict]:
        found = cre(
            "search", "--jds", "questions.jsonl", "--db", "cvs.db", "--model", "minilm", *extra, cwd=tmp_path
        )
        return [hit for hit in map(json.loads, found.stdout.splitlines()) if hit["rank"] == 1]

    dense, hybrid = top("--top-k", "1"), top("--top-k", "1", "--hybrid")
    expected = list(named.values())
    assert [hit["id"] for hit in hybrid] == expected and all(hit["bm25_rank"] == 1 for hit in hybrid)
    assert not any(hit["id"] == want for hit, want in zip(dense, expected, strict=True))
