r"""Offline reasoning traces (CRE-T1): what a JD or recruiter question really asks for, by rules.

The ``rules`` backend of :mod:`train.reasoning`. It reads a text with the synthesis's matching rules
and vocabularies (:func:`train.synth.text.extract_anchor`, the title alternates and job families) and
writes the trace an LLM is asked for by the ``reasoning`` prompt: the role, its seniority and scope,
must-haves versus nice-to-haves, related titles.

Example:
    >>> reasoning_trace("Senior Data Engineer\n\nOwn the Spark pipelines. 5+ years of experience "
    ...                 "with Airflow. Kubernetes is a plus.")  # doctest: +NORMALIZE_WHITESPACE
    'Role: Data Engineer, senior level, own scope. Must have: Apache Spark, Apache Airflow, 5+ years.
    Nice to have: Kubernetes. Related titles: Analytics Engineer, Big Data Engineer.'
"""

from __future__ import annotations

import json
import re

from train.synth.matching import (
    mentions,
    normalize,
    ownership_level,
    sentences,
    split_seniority,
)
from train.synth.prompts import parse_task
from train.synth.rules import _must_haves, infer_family, singular_title
from train.synth.text import extract_anchor
from train.synth.vocab import PHRASE_SYNONYMS, TITLE_ALTERNATES

# The vocabulary's own wordings of "optional": its phrase synonyms pair "nice to have" and "preferred"
# with their variants, so a requirement cue the paraphraser writes is one the trace reader knows.
_NICE_TO_HAVE_CUES = tuple(
    cue for pair in PHRASE_SYNONYMS if {"nice to have", "preferred"} & set(pair) for cue in pair
)
# "Job title: X", "We're hiring: X": the title is what follows the lead-in.
_TITLE_LEAD_IN = re.compile(r"^[^:]{0,30}:\s+")


def _title_line(text: str) -> str:
    """The text's first line if it reads as a job title (short, not a question), else ``""``."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = _TITLE_LEAD_IN.sub("", first).rstrip(" .:")
    return first if len(first.split()) <= 8 and not first.endswith("?") else ""


def _related_titles(base: str, skills: list[str], limit: int = 4) -> list[str]:
    """Other names of the role: title alternates first, then the titles of its vocabulary family."""
    family = infer_family(base, skills) if base or skills else None
    names = [*TITLE_ALTERNATES.get(base, ()), *(family.titles if family else ())]
    # Not title_variants(base): it counts the alternates as the title itself, and they are the point.
    return [name for name in dict.fromkeys(names) if normalize(name) != normalize(base)][:limit]


def reasoning_trace(text: str) -> str:
    """A short reasoning trace about a JD or a recruiter question: what the role really requires.

    The trace names the role and its seniority and ownership scope, splits the skills and hard
    constraints into must-haves and nice-to-haves (skills named in a sentence with a "nice to have"
    cue) and lists related titles. Parts the text gives no evidence for are left out; a text with
    none gives ``""`` (a bare "Role: <the first line>" would only restate the query).

    Args:
        text: A JD (title on its first line, as the synthesis and the benchmarks write them) or a
            recruiter question.

    Returns:
        The trace, at most a few dozen words, or ``""``.

    Example:
        >>> reasoning_trace("Which candidates have run Kubernetes with Terraform?")  # doctest: +NORMALIZE_WHITESPACE
        'Must have: Kubernetes, Terraform. Related titles: Site Reliability Engineer, DevOps Engineer,
        Platform Engineer, Cloud Engineer.'
    """
    title = _title_line(text)
    anchor = extract_anchor(title or " ", text)
    nice_sentences = [s for s in sentences(text) if any(cue in s.lower() for cue in _NICE_TO_HAVE_CUES)]
    nice = [skill for skill in anchor["skills"] if any(mentions(skill, s) for s in nice_sentences)]
    # "0+ years" (a graduate role) requires nothing.
    constraints = {**anchor["constraints"], "years": anchor["constraints"]["years"] or None}
    must = [skill for skill in anchor["skills"] if skill not in nice][:6] + _must_haves(constraints)
    base = split_seniority(singular_title(title))[1] if title else ""
    details = []
    if title and anchor["seniority"] != "unspecified":
        details.append(f"{anchor['seniority']} level")
    if title and ownership_level(text) is not None:
        details.append(f"{anchor['ownership_scope']['level']} scope")
    related = _related_titles(base, anchor["skills"])
    if not (details or must or nice or related):
        return ""
    parts = [f"Role: {', '.join([base, *details])}."] if base else []
    if must:
        parts.append(f"Must have: {', '.join(must)}.")
    if nice:
        parts.append(f"Nice to have: {', '.join(nice[:4])}.")
    if related:
        parts.append(f"Related titles: {', '.join(related)}.")
    return " ".join(parts)


class RulesTraces:
    """The ``rules`` reasoning backend: answers the ``reasoning`` prompt like an LLM would, by rules.

    It has the generators' interface (``identity``, ``complete(messages)``), so the same prompt,
    parser and validation serve every backend, and a test chat server can serve rules traces over
    HTTP (``tests/chat_server.py --responder train.synth.traces:RulesTraces``).

    Example:
        >>> from train.synth.prompts import load_prompt
        >>> messages = load_prompt("reasoning").render({"text": "Senior Nurse\\n\\nICU, 5+ years of experience."})
        >>> RulesTraces().complete(messages)
        '{"trace": "Role: Nurse, senior level. Must have: 5+ years."}'
    """

    name = "rules"
    identity = "rules"

    def complete(self, messages: list[dict], *, max_tokens: int = 0, temperature: float = 0.0) -> str:
        """The trace of the text in a rendered ``reasoning`` prompt, as ``{"trace": ...}`` JSON."""
        stage, _, inputs = parse_task(messages)
        if stage != "reasoning":
            raise ValueError(f"the rules reasoning backend answers the reasoning stage, not {stage!r}")
        return json.dumps({"trace": reasoning_trace(inputs["text"])}, ensure_ascii=False)
