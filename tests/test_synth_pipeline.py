"""run_pipeline and the CLI with the rules backend: files, splits, provenance, determinism, resumption."""

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from datasets import load_dataset

from train.synth import load_seed_jds, run_pipeline
from train.synth.rules import RulesGenerator

REPO = Path(__file__).resolve().parents[1]
FIELDS = {
    "anchors": {"text", "title", "seniority", "skills", "responsibilities", "ownership_scope", "constraints"},
    "pairs": {"query", "positive", "stage", "title"},
    "profiles": {"query", "positive", "title"},
    "ranking": {"query", "positive", "negative_role", "negative_constraint", "title", "flipped_field"},
    "role_negatives": {"query", "negative", "title"},
    "jdcv": {"query", "positive", "negative", "negative_type", "generator"},
    "cv_queries": {"query", "positive"},
}


class CountingRules(RulesGenerator):
    """The real rules generator, counting its calls."""

    def __init__(self):
        super().__init__(seed=0)
        self.calls = 0

    def complete(self, messages, **kwargs):
        self.calls += 1
        return super().complete(messages, **kwargs)


@pytest.fixture(scope="module")
def jds():
    return load_seed_jds()[::25]  # 14 JDs across families and levels


@pytest.fixture(scope="module")
def run(jds, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, run_pipeline(jds, backend="rules", out_dir=out, progress=False)


def rows(out, name):
    return [json.loads(line) for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_outputs_are_datasets_loadable_with_the_contract_fields(run):
    out, manifest = run
    assert manifest["complete"] and manifest["pending_jds"] == 0
    for name, fields in FIELDS.items():
        dataset = load_dataset("json", data_files=str(out / f"{name}.jsonl"), split="train")
        assert dataset.num_rows == manifest["files"][f"{name}.jsonl"] > 0
        assert fields | {"source_id", "split", "provenance"} <= set(dataset.column_names)
    provenance = rows(out, "pairs")[0]["provenance"]
    assert set(provenance) == {"source_id", "stage", "generator", "prompt_version", "seed"}
    assert provenance["generator"] == "rules:seed=0" and provenance["prompt_version"].endswith("@v1")


def test_each_jd_keeps_one_split_and_texts_are_plain(run, jds):
    out, _ = run
    split_of_source = defaultdict(set)
    for name in FIELDS:
        for row in rows(out, name):
            split_of_source[row["source_id"]].add(row["split"])
            assert not row.get("query", "").startswith(("Instruct", "query:", "Represent"))
    assert all(len(splits) == 1 for splits in split_of_source.values())
    by_id = {jd.id: jd for jd in jds}
    for row in rows(out, "ranking"):
        assert row["query"] == by_id[row["source_id"]].text
        assert row["title"] in row["negative_role"] and row["title"] in row["negative_constraint"]
        assert row["flipped_field"] in ("years", "degree", "certification", "language")
    profiles = rows(out, "profiles")
    assert len(profiles) == len(jds)
    for row in profiles:  # the title and first paragraph, against the whole JD
        text = by_id[row["source_id"]].text
        assert row["positive"] == text and row["query"] == "\n".join(text.split("\n\n")[:2])
        assert len(row["query"]) < len(text)


def test_manifest_counts_every_sample_kept_or_rejected(run):
    out, manifest = run
    for stage, counts in manifest["stages"].items():
        assert (
            counts["generated"]
            == counts["kept"] + counts["rejected"]
            == counts["kept"] + sum(counts["reasons"].values())
        ), stage
    assert manifest["stages"]["extraction"]["kept"] == len(rows(out, "anchors"))
    assert manifest["stages"]["role_boundary"]["kept"] == len(rows(out, "role_negatives"))
    assert {row["negative_type"] for row in rows(out, "jdcv")} >= {
        "screening",
        "title_inflation",
        "skill_stuffing",
    }
    assert "| role_boundary |" in (out / "report.md").read_text()


def test_runs_are_deterministic_and_resume_without_redoing_work(jds, run, tmp_path):
    first_out, _ = run
    generator = CountingRules()
    run_pipeline(jds[:5], out_dir=tmp_path, generator=generator, progress=False)
    partial_calls = generator.calls
    run_pipeline(jds, out_dir=tmp_path, generator=generator, progress=False)
    resumed_calls = generator.calls - partial_calls
    assert partial_calls > 0 and resumed_calls > 0
    again = CountingRules()
    run_pipeline(jds, out_dir=tmp_path, generator=again, progress=False)
    assert again.calls == 0  # everything finished is journaled
    for name in FIELDS:
        assert (tmp_path / f"{name}.jsonl").read_text() == (first_out / f"{name}.jsonl").read_text()
    with pytest.raises(ValueError, match="other settings"):
        run_pipeline(jds, out_dir=tmp_path, seed=7, progress=False)


def test_journal_reads_back_answers_holding_line_separators(tmp_path):
    from train.synth.pipeline import Journal
    from train.synth.schema import StageOutcome

    outcome = StageOutcome("paraphrase", "jd-1", kept=[{"text": "Line one\u2028line two\u0085end"}])
    Journal(tmp_path / "journal.jsonl").add(outcome)
    assert Journal(tmp_path / "journal.jsonl").outcomes == {("jd-1", "paraphrase"): outcome}


def test_malformed_replies_journaled_by_older_versions_are_redone(jds, tmp_path):
    run_pipeline(jds[:3], out_dir=tmp_path, generator=CountingRules(), progress=False)
    journal = tmp_path / "work" / "journal.jsonl"
    lines = [line for line in journal.read_text().splitlines() if json.loads(line)["source_id"] != jds[0].id]
    legacy = {"stage": "extraction", "source_id": jds[0].id, "kept": [], "rejected": ["malformed_response"]}
    journal.write_text("\n".join([json.dumps(legacy), *lines]) + "\n")
    generator = CountingRules()
    manifest = run_pipeline(jds[:3], out_dir=tmp_path, generator=generator, progress=False)
    assert generator.calls > 0 and manifest["complete"] and manifest["stages"]["extraction"]["kept"] == 3
    assert "malformed_response" not in manifest["stages"]["extraction"]["reasons"]


def test_query_enhancement_is_optional_and_recorded(jds, tmp_path):
    manifest = run_pipeline(jds[:3], out_dir=tmp_path, enhance_queries=True, progress=False)
    assert manifest["query_enhancement"]["enabled"]
    row = rows(tmp_path, "pairs")[0]
    assert row["query_enhanced"].endswith(row["query"]) and "Key facts: title:" in row["query_enhanced"]


def test_cli_reports_malformed_rows_and_writes_a_run(tmp_path):
    jds = tmp_path / "jds.jsonl"
    seeds = [json.dumps(jd.to_dict()) for jd in load_seed_jds()[:3]]
    jds.write_text("\n".join([seeds[0], '{"id": "broken"', seeds[1], seeds[2]]) + "\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "train.synth",
            "--jds",
            str(jds),
            "--backend",
            "rules",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"{jds}:2: invalid JSON" in result.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["input"]["jds"] == 3 and manifest["input"]["issues"][0].startswith(f"{jds}:2")
    assert manifest["stages"]["extraction"]["kept"] == 3
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "train.synth",
            "--jds",
            str(tmp_path / "none.jsonl"),
            "--out",
            str(tmp_path / "x"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "not found" in missing.stderr
