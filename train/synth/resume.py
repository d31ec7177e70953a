"""Write realistic, fictional résumés: a profile of roles, skills and schooling rendered in varied layouts.

The ``rules`` generator builds a :class:`Resume` for the candidate it has in mind (a fit, a screening
negative, a deceptive near miss) and :func:`render_resume` writes it in one of several common forms: a
plain capitalised-heading CV, a Markdown CV, or a narrative "curriculum vitae" with one line per job.
People, e-mail addresses and companies are invented (``example.com`` addresses).

Example:
    >>> import random
    >>> from train.synth.resume import Resume, Role, render_resume
    >>> cv = Resume(name="Ana Silva", headline="Data Engineer", location="Lisbon", summary="Data engineer.",
    ...             roles=[Role("Data Engineer", "Nova Labs", "Lisbon", (2021, 3), None, ["Built pipelines."])],
    ...             skills=["SQL", "Python"], education=[("BSc", "Computer Science", "University of Porto", 2020)])
    >>> "Nova Labs" in render_resume(cv, random.Random(0))
    True
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from train.synth.vocab import MONTHS

TODAY = (2025, 6)
_IRREGULAR_PAST = {
    "lead": "led",
    "drive": "drove",
    "build": "built",
    "write": "wrote",
    "run": "ran",
    "set": "set",
    "teach": "taught",
    "make": "made",
    "give": "gave",
    "take": "took",
    "keep": "kept",
    "meet": "met",
    "do": "did",
    "oversee": "oversaw",
    "undertake": "undertook",
    "sell": "sold",
    "buy": "bought",
    "hold": "held",
    "bring": "brought",
    "speak": "spoke",
    "understand": "understood",
    "choose": "chose",
    "feed": "fed",
    "be": "was",
    "stay": "stayed",
    "put": "put",
    "read": "read",
    "send": "sent",
    "spend": "spent",
    "cut": "cut",
    "find": "found",
    "get": "got",
    "lay": "laid",
    "shadow": "shadowed",
    "plan": "planned",
    "ship": "shipped",
    "stop": "stopped",
    "log": "logged",
    "map": "mapped",
}
_PARTICIPLE = {
    "drove": "driven",
    "wrote": "written",
    "took": "taken",
    "oversaw": "overseen",
    "gave": "given",
    "spoke": "spoken",
    "chose": "chosen",
    "undertook": "undertaken",
    "was": "been",
    "ran": "run",
    "did": "done",
    "got": "gotten",
}


def past_tense(verb: str) -> str:
    """Simple past of an English base-form verb (``"coordinate"`` -> ``"coordinated"``)."""
    lowered = verb.lower()
    if lowered in _IRREGULAR_PAST:
        past = _IRREGULAR_PAST[lowered]
    elif lowered.endswith("e"):
        past = lowered + "d"
    elif re.search(r"[^aeiou]y$", lowered):
        past = lowered[:-1] + "ied"
    else:
        past = lowered + "ed"
    return past.capitalize() if verb[:1].isupper() else past


def participle(past: str) -> str:
    """Past participle from a simple past (``"drove"`` -> ``"driven"``)."""
    return _PARTICIPLE.get(past.lower(), past.lower())


def responsibility_to_bullet(sentence: str) -> str:
    """A JD responsibility in the imperative as a CV bullet in the past tense (both verbs of ``"Plan or direct"``)."""
    sentence = sentence.strip().rstrip(".")
    match = re.match(r"^([A-Za-z]+)((?:,\s*|\s+(?:or|and)\s+)([a-z]+))?(.*)$", sentence)
    if not match:
        return sentence + "."
    first, joined, second, rest = match.groups()
    text = past_tense(first)
    if joined:
        text += joined.replace(second, past_tense(second))
    return text + rest + "."


@dataclass
class Role:
    """One job on a CV; ``end=None`` means "present"."""

    title: str
    company: str
    city: str
    start: tuple[int, int]
    end: tuple[int, int] | None
    bullets: list[str]


@dataclass
class Resume:
    """A candidate as a CV shows them."""

    name: str
    headline: str
    location: str
    summary: str
    roles: list[Role]
    skills: list[str]
    education: list[tuple[str, str, str, int]]  # (degree, field, school, year)
    certifications: list[str] = field(default_factory=list)
    languages: list[tuple[str, str]] = field(default_factory=list)  # (language, level)
    extras: list[str] = field(default_factory=list)  # talks, publications, volunteering


def timeline(
    months_per_role: list[int], rng: random.Random
) -> list[tuple[tuple[int, int], tuple[int, int] | None]]:
    """Start and end months of consecutive roles, newest first, the newest ending today."""
    spans, end = [], None
    cursor = TODAY[0] * 12 + TODAY[1] - 1
    for months in months_per_role:
        start = cursor - max(1, months)
        spans.append(((start // 12, start % 12 + 1), end))
        cursor = start - rng.choice((0, 0, 1, 2))
        end = (cursor // 12, cursor % 12 + 1)
    return spans


def _date(month: tuple[int, int] | None, style: int) -> str:
    if month is None:
        return "Present" if style != 2 else "present"
    year, number = month
    return (f"{MONTHS[number - 1]} {year}", f"{number:02d}/{year}", f"{year}-{number:02d}")[style]


def _span(role: Role, style: int) -> str:
    dash = (" – ", " - ", " to ")[style]
    return _date(role.start, style) + dash + _date(role.end, style)


def _education_line(entry: tuple[str, str, str, int]) -> str:
    degree, subject, school, year = entry
    return f"{degree} {subject}, {school}, {year}" if subject else f"{degree}, {school}, {year}"


def _languages_line(resume: Resume) -> str:
    return ", ".join(f"{lang} ({level})" for lang, level in resume.languages)


def _contact(resume: Resume, rng: random.Random) -> str:
    handle = re.sub(r"[^a-z.]", "", resume.name.lower().replace(" ", "."))
    phone = f"+{rng.randint(1, 49)} {rng.randint(100, 999)} {rng.randint(1000, 9999)} {rng.randint(100, 999)}"
    return f"{handle}@example.com", phone


def _plain(resume: Resume, rng: random.Random) -> str:
    email, phone = _contact(resume, rng)
    style, bullet = rng.choice((0, 1)), rng.choice(("• ", "- "))
    lines = [
        resume.name.upper(),
        resume.headline,
        f"{resume.location} · {email} · {phone}",
        "",
        "SUMMARY",
        resume.summary,
        "",
        "EXPERIENCE",
    ]
    for role in resume.roles:
        lines += [
            f"{role.title} | {role.company} | {role.city}",
            _span(role, style),
            *(bullet + b for b in role.bullets),
            "",
        ]
    lines += [
        "SKILLS",
        ", ".join(resume.skills),
        "",
        "EDUCATION",
        *(_education_line(e) for e in resume.education),
    ]
    if resume.certifications:
        lines += ["", "CERTIFICATIONS", *resume.certifications]
    if resume.languages:
        lines += ["", "LANGUAGES", _languages_line(resume)]
    if resume.extras:
        lines += ["", "ACTIVITIES", *(bullet + extra for extra in resume.extras)]
    return "\n".join(lines)


def _markdown(resume: Resume, rng: random.Random) -> str:
    email, phone = _contact(resume, rng)
    lines = [
        f"# {resume.name}",
        f"**{resume.headline}** — {resume.location}",
        f"{email} | {phone}",
        "",
        rng.choice(("## Profile", "## About me", "## Summary")),
        resume.summary,
        "",
        "## Work history",
    ]
    for role in resume.roles:
        lines += [
            "",
            f"### {role.company} — {role.title}",
            f"*{_span(role, 2)}, {role.city}*",
            *(f"- {b}" for b in role.bullets),
        ]
    lines += [
        "",
        "## Skills",
        " · ".join(resume.skills),
        "",
        "## Education",
        *(f"- {_education_line(e)}" for e in resume.education),
    ]
    if resume.certifications:
        lines += ["", "## Certifications", *(f"- {c}" for c in resume.certifications)]
    if resume.languages:
        lines += ["", "## Languages", _languages_line(resume)]
    if resume.extras:
        lines += ["", "## Talks & community", *(f"- {extra}" for extra in resume.extras)]
    return "\n".join(lines)


def _narrative(resume: Resume, rng: random.Random) -> str:
    email, _ = _contact(resume, rng)
    lines = [
        f"Curriculum Vitae — {resume.name}",
        f"{resume.headline}. Location: {resume.location}. Email: {email}",
        "",
        f"Professional summary: {resume.summary}",
        "",
        "Employment history:",
    ]
    for role in resume.roles:
        lines.append(
            f"{_span(role, 2)}: {role.title}, {role.company} ({role.city}). " + " ".join(role.bullets)
        )
    lines += [
        "",
        "Education: " + "; ".join(_education_line(e) for e in resume.education) + ".",
        "",
        "Core competencies: " + " • ".join(resume.skills),
    ]
    if resume.certifications:
        lines.append("Certifications: " + ", ".join(resume.certifications) + ".")
    if resume.languages:
        lines.append("Languages: " + _languages_line(resume) + ".")
    if resume.extras:
        lines.append("Other: " + " ".join(resume.extras))
    return "\n".join(lines)


def _portal_export(resume: Resume, rng: random.Random) -> str:
    """A job-portal profile flattened to text: skills and schooling first, then per-skill experience
    and per-company descriptions; no name or contact details. Scraped résumé collections look like
    this, and 256-token encoders only see their beginning."""
    months = max(1, sum(_months(role) for role in resume.roles))
    lines = [
        "Skills " + rng.choice((" * ", " • ", ", ")).join(resume.skills),
        "Education Details",
        *(
            f"{year} {degree} {subject} {school}".replace("  ", " ")
            for degree, subject, school, year in resume.education
        ),
        resume.headline,
        "",
        f"{resume.headline} - {resume.roles[0].company}" if resume.roles else resume.headline,
        "Skill Details",
        *(
            f"{skill}- Experience - {rng.randint(min(6, months), months)} months"
            for skill in resume.skills[:8]
        ),
        "Company Details",
    ]
    for role in resume.roles:
        lines += [f"company - {role.company}", "description - " + " ".join(role.bullets)]
    return "\n".join(lines)


def _months(role: Role) -> int:
    end = role.end or TODAY
    return (end[0] - role.start[0]) * 12 + end[1] - role.start[1]


LAYOUTS = (_plain, _markdown, _narrative, _portal_export)


def render_resume(resume: Resume, rng: random.Random) -> str:
    """The résumé as text in a randomly chosen layout."""
    return rng.choice(LAYOUTS)(resume, rng)
