"""The eight synthesis stages: their inputs, the parser of a generator's answer, and the validators.

Every stage renders a versioned prompt (:mod:`train.synth.prompts`) from its inputs, sends it to a
generator, parses the JSON object in the answer and validates each sample against its source JD. The
validators are script-level and independent of the generator: schema, grounding (the title kept where it
must be, skills and constraints present in the JD, the flipped field the only one that differs), length
bounds and stage-specific checks. A rejected sample carries a short reason (``"title_not_kept"``,
``"not_shallower"``, ...) that the run's report counts. Duplicate removal happens later, across JDs.

Stages: ``extraction`` (structured anchor), ``paraphrase`` and ``card`` (positives), ``role_boundary`` and
``constraint_conflict`` (hard negatives), ``jdcv_balanced`` and ``jdcv_deceptive`` (JD-CV triplets),
``cv_queries`` (recruiter queries answered by a CV chunk).

Example:
    >>> from train.synth.stages import parse_json_object
    >>> parse_json_object('Sure! ```json\\n{"paraphrase": "..."}\\n```')
    {'paraphrase': '...'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from train.synth.matching import (
    CONSTRAINT_FIELDS,
    FLIPPABLE_FIELDS,
    degree_lexicon,
    extract_constraints,
    keeps_title,
    mentions,
    normalize,
    ownership_level,
)
from train.synth.schema import NEGATIVE_TYPES, SENIORITIES, JobDescription
from train.synth.text import content_words
from train.synth.vocab import DEGREE_FORMS, OWNERSHIP_LEVELS

ROLE_NEGATIVES_PER_JD = 3
QUERIES_PER_CV = 3
# Character bounds per kind of text.
LENGTH_BOUNDS = {
    "summary": (40, 1200),
    "card": (30, 800),
    "cv": (400, 9000),
    "query": (12, 300),
    "chunk": (30, 3000),
}
# A rewrite of a JD keeps roughly its length.
REWRITE_RATIO = (0.5, 1.7)


class Rejection(Exception):
    """A generated answer or sample that failed validation; ``reason`` is a short report key."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_json_object(text: str) -> dict:
    """The first JSON object in a generator's answer (code fences and chatter around it are ignored)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise Rejection("unparseable_output")


def _string(output: dict, key: str) -> str:
    value = output.get(key)
    if not isinstance(value, str) or not value.strip():
        raise Rejection(f"schema:{key}")
    return value.strip()


def _list(output: dict, key: str) -> list:
    value = output.get(key)
    if not isinstance(value, list) or not value:
        raise Rejection(f"schema:{key}")
    return value


def _check_length(text: str, kind: str) -> None:
    low, high = LENGTH_BOUNDS[kind]
    if len(text) < low:
        raise Rejection("too_short")
    if len(text) > high:
        raise Rejection("too_long")


def _check_rewrite(text: str, source: str) -> None:
    """A rewrite of a JD: about as long as the source and not a copy of it."""
    ratio = len(text) / max(1, len(source))
    if ratio < REWRITE_RATIO[0]:
        raise Rejection("too_short")
    if ratio > REWRITE_RATIO[1]:
        raise Rejection("too_long")
    if normalize(text) == normalize(source):
        raise Rejection("unchanged")


# ---- inputs -------------------------------------------------------------------------------------------


def stage_inputs(stage: str, jd: JobDescription, anchor: dict | None = None, **extra: object) -> dict:
    """The inputs a stage's prompt shows for one JD (and its anchor, once extracted)."""
    if stage == "extraction":
        return {"title": jd.title, "text": jd.text}
    assert anchor is not None, f"stage {stage} needs the JD's anchor"
    title = anchor["title"]
    if stage == "paraphrase":
        return {"title": title, "text": jd.text}
    if stage == "card":
        return {"text": jd.text, "anchor": anchor}
    if stage == "role_boundary":
        return {
            "title": title,
            "text": jd.text,
            "count": ROLE_NEGATIVES_PER_JD,
            "level_name": anchor["ownership_scope"]["level"],
        }
    if stage == "constraint_conflict":
        return {"title": title, "text": jd.text, "constraints": anchor["constraints"]}
    if stage == "jdcv_balanced":
        return {"jd": jd.text, "anchor": anchor}
    if stage == "jdcv_deceptive":
        return {"jd": jd.text, "anchor": anchor, "negative_type": extra["negative_type"]}
    if stage == "cv_queries":
        return {"title": title, "cv": extra["cv"], "count": QUERIES_PER_CV}
    raise ValueError(f"unknown stage {stage!r}")


# ---- validators: each returns the kept samples and the reasons of the rejected ones ------------------------


def _validate_extraction(output: dict, jd: JobDescription, inputs: dict) -> dict:
    title = _string(output, "title")
    if not (keeps_title(title, jd.text) or normalize(title) == normalize(jd.title)):
        raise Rejection("title_not_grounded")
    seniority = output.get("seniority", "unspecified")
    if seniority not in SENIORITIES:
        raise Rejection("schema:seniority")
    skills = [skill for skill in output.get("skills") or [] if isinstance(skill, str) and skill.strip()]
    grounded = list(dict.fromkeys(skill.strip() for skill in skills if mentions(skill, jd.text)))
    if skills and len(grounded) < 0.5 * len(skills):
        raise Rejection("ungrounded_skills")
    responsibilities = [
        r.strip() for r in _list(output, "responsibilities") if isinstance(r, str) and r.strip()
    ]
    jd_words = content_words(jd.text)
    if not any(
        len(content_words(r) & jd_words) >= 0.6 * max(1, len(content_words(r))) for r in responsibilities
    ):
        raise Rejection("ungrounded_responsibilities")
    scope = output.get("ownership_scope")
    if not isinstance(scope, dict) or scope.get("level") not in OWNERSHIP_LEVELS:
        raise Rejection("schema:ownership_scope")
    constraints = _grounded_constraints(output.get("constraints"), jd.text)
    return {
        "title": title,
        "seniority": seniority,
        "skills": grounded,
        "responsibilities": responsibilities,
        "ownership_scope": {"level": scope["level"], "evidence": str(scope.get("evidence") or "")},
        "constraints": constraints,
    }


def _grounded_constraints(raw: object, text: str) -> dict:
    """Canonical constraint values, each checked against the JD text."""
    if not isinstance(raw, dict):
        raise Rejection("schema:constraints")
    found = extract_constraints(text)
    constraints = {}
    for name in CONSTRAINT_FIELDS:
        value = raw.get(name)
        if value in (None, "", [], "null", "none", "None"):
            constraints[name] = None
            continue
        if name == "years":
            try:
                value = int(str(value).strip().rstrip("+"))
            except ValueError as error:
                raise Rejection("schema:constraints") from error
            grounded = value == found["years"] or re.search(rf"\b{value}\b", text) is not None
        elif name == "degree":
            levels = [level for _, _, level in degree_lexicon().finditer(str(value))]
            value = levels[0] if levels else str(value).lower()
            grounded = value in DEGREE_FORMS and any(
                level == value for _, _, level in degree_lexicon().finditer(text)
            )
        elif name == "language":
            languages = [lang.strip() for lang in re.split(r",|\band\b", str(value)) if lang.strip()]
            value = ", ".join(sorted(languages))
            grounded = all(mentions(lang, text) for lang in languages)
        else:
            value = str(value).strip()
            grounded = mentions(value, text) or (
                name == "location" and value.lower() == "remote" and "remote" in text.lower()
            )
        if not grounded:
            raise Rejection(f"ungrounded_constraint:{name}")
        constraints[name] = value
    return constraints


def _validate_paraphrase(output: dict, jd: JobDescription, inputs: dict, anchor: dict) -> dict:
    text = _string(output, "paraphrase")
    _check_rewrite(text, jd.text)
    if not keeps_title(anchor["title"], text):
        raise Rejection("title_not_kept")
    if extract_constraints(text) != extract_constraints(jd.text):
        raise Rejection("constraints_changed")
    skills = anchor["skills"]
    if skills and sum(mentions(skill, text) for skill in skills) < 0.7 * len(skills):
        raise Rejection("skills_dropped")
    return {"text": text}


def _validate_card(output: dict, jd: JobDescription, inputs: dict, anchor: dict) -> dict:
    summary, card = _string(output, "summary"), _string(output, "card")
    _check_length(summary, "summary")
    _check_length(card, "card")
    if len(summary) >= len(jd.text):
        raise Rejection("summary_not_shorter")
    if not (keeps_title(anchor["title"], card) and keeps_title(anchor["title"], summary)):
        raise Rejection("title_not_kept")
    skills = anchor["skills"]
    if skills and not any(mentions(skill, card) for skill in skills):
        raise Rejection("ungrounded_card")
    stated = extract_constraints(card)["years"]
    if stated is not None and stated != extract_constraints(jd.text)["years"]:
        raise Rejection("ungrounded_card")
    return {"summary": summary, "card": card}


def _validate_role_negative(text: object, jd: JobDescription, anchor: dict) -> dict:
    if not isinstance(text, str) or not text.strip():
        raise Rejection("schema:negatives")
    text = text.strip()
    _check_rewrite(text, jd.text)
    if not keeps_title(anchor["title"], text, exact=True):
        raise Rejection("title_not_kept")
    source_level = ownership_level(jd.text)
    if source_level is None:
        source_level = OWNERSHIP_LEVELS.index(anchor["ownership_scope"]["level"])
    level = ownership_level(text)
    if level is None or level > source_level - 0.5:
        raise Rejection("not_shallower")
    if extract_constraints(text) != extract_constraints(jd.text):
        raise Rejection("constraints_changed")
    return {"text": text}


def _validate_constraint_conflict(output: dict, jd: JobDescription, inputs: dict, anchor: dict) -> dict:
    text = _string(output, "text")
    field = output.get("flipped_field")
    if field == "location":
        raise Rejection("flipped_location")
    if field not in FLIPPABLE_FIELDS:
        raise Rejection("schema:flipped_field")
    _check_rewrite(text, jd.text)
    if not keeps_title(anchor["title"], text, exact=True):
        raise Rejection("title_not_kept")
    before, after = extract_constraints(jd.text), extract_constraints(text)
    changed = {name for name in CONSTRAINT_FIELDS if before[name] != after[name]}
    if field not in changed:
        raise Rejection("flip_not_found")
    if changed != {field}:
        raise Rejection("other_field_changed")
    return {"text": text, "flipped_field": field, "original_value": before[field], "new_value": after[field]}


def _validate_jdcv(output: dict, jd: JobDescription, inputs: dict, anchor: dict) -> dict:
    positive, negative = _string(output, "positive_cv"), _string(output, "negative_cv")
    _check_length(positive, "cv")
    _check_length(negative, "cv")
    negative_type = inputs.get("negative_type", "screening")
    if output.get("negative_type", negative_type) != negative_type or negative_type not in NEGATIVE_TYPES:
        raise Rejection("schema:negative_type")
    skills = anchor["skills"]
    positive_hits = sum(mentions(skill, positive) for skill in skills)
    if positive_hits < min(2, len(skills)):
        raise Rejection("positive_not_grounded")
    shared = content_words(positive) & content_words(negative)
    if len(shared) > 0.8 * min(len(content_words(positive)), len(content_words(negative))):
        raise Rejection("negative_equals_positive")
    if (
        negative_type == "screening"
        and skills
        and sum(mentions(s, negative) for s in skills) >= positive_hits
    ):
        raise Rejection("negative_too_close")
    return {"positive": positive, "negative": negative, "negative_type": negative_type}


def _validate_cv_query(item: object, cv: str) -> dict:
    if not isinstance(item, dict):
        raise Rejection("schema:queries")
    query, chunk = _string(item, "query"), _string(item, "chunk")
    _check_length(query, "query")
    _check_length(chunk, "chunk")
    if normalize(chunk) not in normalize(cv):
        raise Rejection("chunk_not_in_cv")
    if len(content_words(query) & content_words(chunk)) < 2:
        raise Rejection("query_not_grounded")
    return {"query": query, "chunk": chunk}


def _each(items: list, check: Callable[[object], dict]) -> tuple[list[dict], list[str]]:
    kept, reasons = [], []
    for item in items:
        try:
            kept.append(check(item))
        except Rejection as rejection:
            reasons.append(rejection.reason)
    return kept, reasons


def validate_answer(
    stage: str, answer: str, jd: JobDescription, inputs: dict, anchor: dict | None
) -> tuple[list[dict], list[str]]:
    """Parse a generator's answer for a stage and validate it: ``(kept samples, rejection reasons)``."""
    try:
        output = parse_json_object(answer)
        if stage == "extraction":
            return [_validate_extraction(output, jd, inputs)], []
        if stage == "role_boundary":
            return _each(_list(output, "negatives"), lambda text: _validate_role_negative(text, jd, anchor))
        if stage == "cv_queries":
            return _each(_list(output, "queries"), lambda item: _validate_cv_query(item, inputs["cv"]))
        return [SINGLE_SAMPLE_VALIDATORS[stage](output, jd, inputs, anchor)], []
    except Rejection as rejection:
        return [], [rejection.reason]


SINGLE_SAMPLE_VALIDATORS = {
    "paraphrase": _validate_paraphrase,
    "card": _validate_card,
    "constraint_conflict": _validate_constraint_conflict,
    "jdcv_balanced": _validate_jdcv,
    "jdcv_deceptive": _validate_jdcv,
}


def dedup_key(stage: str, sample: dict) -> str | None:
    """The text whose repetition makes a sample of this stage a duplicate (``None``: input JDs are deduplicated up front)."""
    if stage == "extraction":
        return None
    if stage in ("jdcv_balanced", "jdcv_deceptive"):
        return sample["positive"] + "\n" + sample["negative"]
    if stage == "cv_queries":
        return sample["query"] + "\n" + sample["chunk"]
    if stage == "card":
        return sample["card"]
    return sample.get("text", "")
