"""Stage validators reject what they must (with a reason) and keep the rules generator's output."""

import json
import random

import pytest

from train.synth.loaders import load_seed_jds
from train.synth.prompts import load_prompt, parse_task
from train.synth.resume import Resume, Role, _months, _portal_export
from train.synth.rules import RulesGenerator
from train.synth.schema import DECEPTIVE_TYPES, STAGES, JobDescription
from train.synth.stages import stage_inputs, validate_answer

JD = JobDescription(
    id="t-1",
    title="Senior Data Engineer",
    text=(
        "Senior Data Engineer\n\nNorthwind Labs builds logistics software.\n\nResponsibilities:\n"
        "- Own batch and streaming data pipelines end to end.\n- Lead the migration to the cloud across several teams.\n"
        "- Drive data quality checks and pipeline SLAs.\n\nRequirements:\n- 5+ years of experience as a data engineer.\n"
        "- A bachelor's degree in Computer Science.\n- Hands-on experience with Python, SQL and Apache Airflow.\n"
        "- Fluent German is required.\n\nLocation: Berlin."
    ),
)


def answer(stage, **extra):
    generator = RulesGenerator(seed=3)
    anchor = None
    if stage != "extraction":
        inputs = stage_inputs("extraction", JD)
        anchor = validate_answer(
            "extraction", generator.complete(load_prompt("extraction").render(inputs)), JD, inputs, None
        )[0][0]
    inputs = stage_inputs(stage, JD, anchor, **extra)
    return generator.complete(load_prompt(stage).render(inputs)), inputs, anchor


def test_prompts_are_versioned_and_carry_their_inputs():
    for stage in STAGES:
        prompt = load_prompt(stage)
        assert (
            prompt.version == ("v2" if stage == "cv_queries" else "v1")
            and "$"
            not in prompt.render(
                {
                    "title": "T",
                    "text": "x",
                    "count": 2,
                    "level_name": "own",
                    "constraints": {},
                    "negative_type": "x",
                }
            )[1]["content"].split("```")[0]
        )
    messages = load_prompt("card").render({"text": "JD", "anchor": {"title": "T"}})
    assert parse_task(messages) == ("card", "v1", {"text": "JD", "anchor": {"title": "T"}})


@pytest.mark.parametrize("stage", STAGES[:-1])
def test_rules_answers_pass_validation(stage):
    text, inputs, anchor = answer(stage, negative_type="career_pivot")
    kept, rejected = validate_answer(stage, text, JD, inputs, anchor)
    assert kept and not rejected, rejected


def test_extraction_anchor_is_grounded():
    text, inputs, _ = answer("extraction")
    anchor = validate_answer("extraction", text, JD, inputs, None)[0][0]
    assert anchor["title"] == "Senior Data Engineer" and anchor["seniority"] == "senior"
    assert {"Python", "SQL", "Apache Airflow"} <= set(anchor["skills"])
    assert anchor["constraints"] == {
        "years": 5,
        "degree": "bachelor",
        "certification": None,
        "language": "German",
        "location": "Berlin",
    }
    assert anchor["ownership_scope"]["level"] in ("own", "lead")


def reject(stage, output, inputs=None, anchor=None):
    if anchor is None and stage != "extraction":
        _, _, anchor = answer("paraphrase")
    kept, rejected = validate_answer(
        stage, output if isinstance(output, str) else json.dumps(output), JD, inputs or {}, anchor
    )
    assert not kept
    return rejected


def test_extraction_rejects_invented_facts():
    base = {
        "title": "Senior Data Engineer",
        "seniority": "senior",
        "skills": ["Python"],
        "responsibilities": ["Own batch and streaming data pipelines"],
        "ownership_scope": {"level": "own", "evidence": "Own"},
        "constraints": {"years": 5},
    }
    assert reject("extraction", {**base, "title": "Chief Astronaut"}) == ["title_not_grounded"]
    assert reject("extraction", {**base, "skills": ["Rust", "Haskell", "Python"]}) == ["ungrounded_skills"]
    assert reject("extraction", {**base, "constraints": {"years": 12}}) == ["ungrounded_constraint:years"]
    assert reject("extraction", {**base, "constraints": {"certification": "CISSP"}}) == [
        "ungrounded_constraint:certification"
    ]
    assert reject("extraction", "the JD is about data") == ["unparseable_output"]


def test_positive_and_negative_validators_name_the_problem():
    assert reject("paraphrase", {"paraphrase": JD.text}) == ["unchanged"]
    assert reject("paraphrase", {"paraphrase": JD.text.replace("5+", "9+").replace("Senior", "Sr.")}) == [
        "constraints_changed"
    ]
    assert reject("paraphrase", {"paraphrase": JD.text.replace("Senior Data Engineer", "Baker")}) == [
        "title_not_kept"
    ]
    same_scope = JD.text.replace("Northwind", "Southwind")
    assert reject("role_boundary", {"negatives": [same_scope]}) == ["not_shallower"]
    renamed = JD.text.replace("Own", "Assist with").replace("Lead", "Support").replace("Drive", "Help with")
    assert reject(
        "role_boundary", {"negatives": [renamed.replace("Senior Data Engineer", "Data Engineer")]}
    ) == ["title_not_kept"]
    two_flips = JD.text.replace("5+", "9+").replace("German", "French")
    assert reject("constraint_conflict", {"flipped_field": "years", "text": two_flips}) == [
        "other_field_changed"
    ]
    assert reject(
        "constraint_conflict", {"flipped_field": "location", "text": JD.text.replace("Berlin", "Paris")}
    ) == ["flipped_location"]
    assert reject(
        "constraint_conflict", {"flipped_field": "degree", "text": JD.text.replace("5+", "9+")}
    ) == ["flip_not_found"]


def test_jdcv_and_query_validators():
    text, inputs, anchor = answer("jdcv_balanced")
    output = json.loads(text)
    assert reject("jdcv_balanced", {**output, "positive_cv": output["negative_cv"]}, inputs, anchor)[0] in (
        "positive_not_grounded",
        "negative_equals_positive",
    )
    assert reject("jdcv_balanced", {**output, "negative_type": "adjacent_role"}, inputs, anchor) == [
        "schema:negative_type"
    ]
    query_inputs = stage_inputs("cv_queries", JD, anchor, cv=output["positive_cv"])
    bad = {
        "queries": [
            {
                "query": "Who has led data pipelines?",
                "chunk": "Led pipelines at a company that does not appear in this CV.",
            },
            {"query": "Who likes cooking pasta?", "chunk": output["positive_cv"][:200]},
        ]
    }
    assert reject("cv_queries", bad, query_inputs, anchor) == ["chunk_not_in_cv", "query_not_grounded"]


def test_deceptive_negatives_are_near_misses_of_each_type():
    jd = next(jd for jd in load_seed_jds() if jd.seniority == "senior")
    generator = RulesGenerator(seed=1)
    inputs = stage_inputs("extraction", jd)
    anchor = validate_answer(
        "extraction", generator.complete(load_prompt("extraction").render(inputs)), jd, inputs, None
    )[0][0]
    negatives = {}
    for kind in DECEPTIVE_TYPES:
        inputs = stage_inputs("jdcv_deceptive", jd, anchor, negative_type=kind)
        kept, rejected = validate_answer(
            "jdcv_deceptive",
            generator.complete(load_prompt("jdcv_deceptive").render(inputs)),
            jd,
            inputs,
            anchor,
        )
        assert kept and not rejected, (kind, rejected)
        negatives[kind] = kept[0]["negative"]
    assert "followers" in negatives["influencer_noise"]
    assert (
        "Intern" in negatives["contractor_intern_confusion"]
        and "Contract" in negatives["contractor_intern_confusion"]
    )
    assert "Career changer" in negatives["career_pivot"] or "moving into" in negatives["career_pivot"]
    assert all(skill in negatives["skill_stuffing"] for skill in anchor["skills"][:3])
    assert len(set(negatives.values())) == len(DECEPTIVE_TYPES)


def test_portal_layout_leads_with_skills_and_carries_no_contact_details():
    roles = [
        Role("Data Engineer", "Nova Labs", "Lisbon", (2024, 1), None, ["Built pipelines."]),
        Role("Analyst", "Old Co", "Porto", (2023, 10), (2023, 12), ["Wrote SQL."]),
    ]
    cv = Resume(
        "Ana Silva",
        "Data Engineer",
        "Lisbon",
        "Data engineer.",
        roles,
        ["SQL", "Python"],
        [("BSc", "Computer Science", "University of Porto", 2020)],
    )
    for seed in range(20):
        text = _portal_export(cv, random.Random(seed))
        assert text.startswith("Skills ") and "SQL" in text.splitlines()[0]
        assert "Ana Silva" not in text and "@" not in text
        assert "description - Built pipelines." in text and "company - Old Co" in text
        total = sum(_months(role) for role in roles)
        months = [
            int(line.split(" - ")[1].split()[0]) for line in text.splitlines() if "- Experience -" in line
        ]
        assert len(months) == 2 and all(1 <= m <= total for m in months)


def test_one_paper_name_per_code_stage_and_the_docs_use_the_same_words():
    from pathlib import Path

    from train.synth.schema import PAPER_STAGES, STAGES

    assert list(PAPER_STAGES) == list(STAGES)
    assert sum(name.startswith("Stage ") for name in PAPER_STAGES.values()) == 5  # the paper's five
    docs = (Path(__file__).resolve().parents[1] / "docs" / "synthesis.md").read_text(encoding="utf-8")
    for number, stage in enumerate(STAGES, start=1):
        assert f"| {number} | `{stage}` | {PAPER_STAGES[stage]} |" in docs
