r"""Text helpers that synthesis and training share: a JD's opening, its content words, its anchor.

Synthesis builds its samples with them; the rounds apply the same readings to training texts (Round
2 anchors JD openings, the BoundaryHead compares responsibility sentences), so they live here rather
than in the synthesis orchestrator or a generator backend: the rounds import nothing of synthesis
but its data schema (:mod:`train.synth.schema`), its matching rules (:mod:`train.synth.matching`)
and this module.

Example:
    >>> opening("Data Engineer\n\nWe build pipelines.\n\n- Own Spark jobs")
    'Data Engineer\nWe build pipelines.'
    >>> sorted(content_words("We are looking for a Python developer"))
    ['developer', 'python']
"""

from __future__ import annotations

import re

from train.synth.matching import (
    extract_constraints,
    find_skills,
    ownership_level,
    ownership_of,
    seniority_of,
    sentences,
    words,
)
from train.synth.vocab import OWNERSHIP_LEVELS

STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it of on or our the their this to we with you your who which "
    "what will can candidate candidates experience someone find looking".split()
)
_SKILL_LINE = re.compile(
    r"^(?:technology skills|skills|tools|tech stack)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE
)


def opening(text: str) -> str:
    """The title and first paragraph of a JD: what a listing or an occupation summary shows of it."""
    return "\n".join(paragraph.strip() for paragraph in text.strip().split("\n\n")[:2])


def content_words(text: str) -> set[str]:
    """The lower-cased words of ``text`` longer than two letters, without stopwords."""
    return {word for word in words(text) if word not in STOPWORDS and len(word) > 2}


def extract_anchor(title: str, text: str) -> dict:
    """A structured anchor read from a JD with the matching rules."""
    skills = find_skills(text)
    for line in _SKILL_LINE.findall(text):
        skills += [item.strip(" .") for item in re.split(r",|;", line) if item.strip(" .")]
    skills = list(dict.fromkeys(skills))[:15]
    responsibilities = [s for s in sentences(text) if ownership_of(s) is not None][:8]
    level = ownership_level(text)
    level_index = round(level) if level is not None else 2
    evidence = next(
        (s for s in responsibilities if ownership_of(s) == level_index),
        responsibilities[0] if responsibilities else "",
    )
    constraints = extract_constraints(text)
    return {
        "title": title.strip() or text.strip().splitlines()[0][:80],
        "seniority": seniority_of(title, constraints["years"]),
        "skills": skills,
        "responsibilities": responsibilities or sentences(text)[1:4],
        "ownership_scope": {"level": OWNERSHIP_LEVELS[level_index], "evidence": evidence},
        "constraints": constraints,
    }
