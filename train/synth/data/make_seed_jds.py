"""Write CRE's embedded seed JDs (``seed_jds.jsonl``) from the project's vocabularies, reproducibly.

Run ``python -m train.synth.data.make_seed_jds`` to rewrite the committed file; the test suite checks that
it reproduces it byte for byte. Each JD mixes one of several layouts (headed sections, prose, a short ad)
with randomly chosen openings, responsibility phrasings at the ownership level its seniority implies,
requirements (years, degree, certification, languages), nice-to-haves, benefits and a location.

The ``meta`` field keeps what the writer put in (skills, constraints, ownership level) so that tests can
measure how well extraction recovers it; the pipeline itself reads only ``id``, ``title`` and ``text``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from train.synth.matching import certification_lexicon
from train.synth.vocab import (
    COMPANY_KINDS,
    COMPANY_PREFIXES,
    COMPANY_SUFFIXES,
    DEGREE_NAMES,
    FAMILY_LIST,
    LANGUAGES,
    LOCATIONS,
    OWNERSHIP_SCOPE,
    OWNERSHIP_VERBS,
    PEOPLE_SCOPE_PHRASES,
    SENIORITY_OWNERSHIP,
    SENIORITY_PREFIXES,
    SENIORITY_YEARS,
    Family,
)

SEED = 20250101
JDS_PER_FAMILY = 10
SENIORITY_MIX = ("intern", "junior", "junior", "mid", "mid", "senior", "senior", "lead", "manager", "mid")
OUTPUT = Path(__file__).with_name("seed_jds.jsonl")

OPENINGS = (
    "{company} is {a_size} {industry} company headquartered in {hq}. We are looking for {a_title} to join us.",
    "At {company}, we build tools that {industry} teams rely on every day. Our {area} is growing and we need {a_title}.",
    "Founded in {year}, {company} serves {industry} clients in more than {countries} countries. We're hiring {a_title}.",
    "{company} ({industry}) is expanding its team and has an opening for {a_title}.",
    "Join {company} as {a_title} and help us raise the bar for {industry}.",
    "We are {company}, {a_size} organisation in {industry}. This {title} role sits at the heart of our {area}.",
)
SIZES = (
    "fast-growing",
    "mid-sized",
    "family-owned",
    "venture-backed",
    "200-person",
    "global",
    "award-winning",
)
ROLE_SUMMARIES = (
    "In this role you will work closely with {partners} and report to the {manager}.",
    "You will join a team of {n} and report to the {manager}.",
    "The {title} works with {partners} to keep our {area} running smoothly.",
    "This is a hands-on position with real impact on our {area}.",
)
PARTNERS = (
    "product and operations",
    "clients and internal stakeholders",
    "engineering and design",
    "finance and sales",
    "clinical and administrative staff",
    "suppliers and site teams",
)
RESP_HEADINGS = ("What you'll do", "Responsibilities", "Key responsibilities", "Your role", "The job")
REQ_HEADINGS = ("What you bring", "Requirements", "Qualifications", "About you", "Must-haves")
NICE_HEADINGS = ("Nice to have", "Bonus points", "Preferred qualifications")
BENEFITS = (
    "Competitive salary and annual bonus",
    "Private health insurance",
    "30 days of paid holiday",
    "A yearly learning budget",
    "Flexible working hours",
    "Pension contributions",
    "Parental leave above the legal minimum",
    "Cycle-to-work scheme",
    "Paid volunteering days",
    "Home-office allowance",
)
BENEFIT_HEADINGS = ("What we offer", "Benefits", "Why join us")
SKILL_SENTENCES = (
    "Hands-on experience with {skills}.",
    "Practical knowledge of {skills}.",
    "You are comfortable working with {skills}.",
    "Solid skills in {skills}.",
    "Proven ability to apply {skills} in a professional setting.",
)
YEARS_SENTENCES = (
    "{n}+ years of experience as a {base} or in a similar role.",
    "At least {n} years of professional experience in {a_base} role.",
    "{n}-{m} years of relevant experience.",
    "Minimum of {word} years of experience in {a_base} role.",
)
NUMBER_WORDS = {
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    10: "ten",
}
DEGREE_SENTENCES = (
    "{Degree} in {field} or a related discipline.",
    "You hold {degree} in {field}.",
    "{Degree} in {field} is required.",
)
CERT_SENTENCES = (
    "{cert} is required.",
    "You hold a current {cert}.",
    "Must hold {cert} (or obtain it within six months).",
)
LANGUAGE_SENTENCES = (
    "Fluent {lang} is required.",
    "Professional proficiency in {lang} and {lang2}, written and spoken.",
    "You speak {lang} at business level.",
)
LOCATION_SENTENCES = (
    "Location: {loc} (hybrid, three days a week in the office).",
    "This role is based in {loc}.",
    "Location: {loc}.",
    "You will work from our {loc} office, with two remote days a week.",
)
REMOTE_SENTENCES = ("This position is fully remote within Europe.", "Location: Remote (UTC-1 to UTC+3).")
INTERN_LINES = (
    "This is a six-month paid internship starting in September.",
    "The internship lasts 12 weeks and can lead to a graduate offer.",
)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def with_article(phrase: str) -> str:
    """``"a senior nurse"``, ``"an ICU nurse"``: the indefinite article a phrase takes."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _company(rng: random.Random) -> str:
    return f"{rng.choice(COMPANY_PREFIXES)}{rng.choice(COMPANY_SUFFIXES)} {rng.choice(COMPANY_KINDS)}"


def _title(rng: random.Random, family: Family, seniority: str) -> tuple[str, str]:
    base = rng.choice(family.titles)
    if seniority == "manager":
        return family.manager_title, base
    return rng.choice(SENIORITY_PREFIXES[seniority]).format(title=base), base


def _responsibility(rng: random.Random, family: Family, duty: str, level: int) -> str:
    scope = rng.choice(OWNERSHIP_SCOPE[level]).format(area=family.area)
    verb = rng.choice(OWNERSHIP_VERBS[level])
    return f"{verb} {duty} {scope}." if rng.random() < 0.45 else f"{verb} {duty}."


def _constraints(rng: random.Random, family: Family, seniority: str) -> dict[str, object]:
    years = SENIORITY_YEARS[seniority] + rng.choice((0, 0, 1, 2)) if seniority != "intern" else None
    degree = family.min_degree if family.min_degree and rng.random() < 0.8 else None
    if degree == "bachelor" and seniority in ("lead", "manager") and rng.random() < 0.25:
        degree = "master"
    certs = [c for c in family.certifications]
    cert = rng.choice(certs) if rng.random() < 0.45 else None
    languages = None
    if rng.random() < 0.6:
        picked = sorted(rng.sample(LANGUAGES[:8], rng.choice((1, 1, 2))))
        languages = ", ".join(picked)
    location = "Remote" if rng.random() < 0.12 else rng.choice(LOCATIONS[:-1])
    return {
        "years": years,
        "degree": degree,
        "certification": cert,
        "language": languages,
        "location": location,
    }


def _requirements(
    rng: random.Random, family: Family, base: str, constraints: dict, skills: list[str]
) -> list[str]:
    lines = []
    if constraints["years"] is not None:
        n = constraints["years"]
        template = rng.choice(YEARS_SENTENCES if n in NUMBER_WORDS and n > 1 else YEARS_SENTENCES[:3])
        lines.append(
            template.format(
                n=n, m=n + 3, word=NUMBER_WORDS.get(n), base=base.lower(), a_base=with_article(base.lower())
            )
        )
    if constraints["degree"]:
        degree = DEGREE_NAMES[constraints["degree"]]
        sentence = rng.choice(DEGREE_SENTENCES).format(
            degree=degree, Degree=degree[0].upper() + degree[1:], field=rng.choice(family.degree_fields)
        )
        lines.append(
            sentence if rng.random() < 0.7 else sentence[:-1] + ", or equivalent practical experience."
        )
    half = max(2, len(skills) // 2)
    lines.append(rng.choice(SKILL_SENTENCES).format(skills=_join(skills[:half])))
    if skills[half:]:
        lines.append(rng.choice(SKILL_SENTENCES).format(skills=_join(skills[half:])))
    if constraints["certification"]:
        lines.append(rng.choice(CERT_SENTENCES).format(cert=constraints["certification"]))
    if constraints["language"]:
        langs = constraints["language"].split(", ")
        template = LANGUAGE_SENTENCES[1] if len(langs) == 2 else rng.choice(LANGUAGE_SENTENCES[::2])
        lines.append(template.format(lang=langs[0], lang2=langs[-1]))
    lines.append(
        rng.choice(
            (
                "Clear written and verbal communication.",
                "A structured, calm way of working under pressure.",
                "Curiosity and a habit of documenting what you learn.",
                "You enjoy explaining complex topics to non-specialists.",
            )
        )
    )
    return lines


def _location_line(rng: random.Random, location: str) -> str:
    return (
        rng.choice(REMOTE_SENTENCES)
        if location == "Remote"
        else rng.choice(LOCATION_SENTENCES).format(loc=location)
    )


def _render(rng: random.Random, parts: dict, layout: str) -> str:
    """Lay the parts out as headed sections, flowing prose, or a short job-board ad."""
    bullet = rng.choice(("- ", "• ", "* "))
    if layout == "sections":
        blocks = [parts["header"], parts["opening"] + " " + parts["summary"]]
        blocks.append(
            rng.choice(RESP_HEADINGS) + ":\n" + "\n".join(bullet + r for r in parts["responsibilities"])
        )
        blocks.append(rng.choice(REQ_HEADINGS) + ":\n" + "\n".join(bullet + r for r in parts["requirements"]))
        if parts["nice"]:
            blocks.append(rng.choice(NICE_HEADINGS) + ":\n" + bullet + parts["nice"])
        blocks.append(rng.choice(BENEFIT_HEADINGS) + ":\n" + "\n".join(bullet + b for b in parts["benefits"]))
        blocks.append(parts["location"])
    elif layout == "prose":
        duties = " ".join(parts["responsibilities"])
        blocks = [
            parts["header"],
            parts["opening"],
            f"{parts['summary']} Day to day: {duties}",
            "To succeed you will need the following. " + " ".join(parts["requirements"]),
        ]
        if parts["nice"]:
            blocks.append(parts["nice"])
        blocks.append(
            f"{parts['location']} Benefits include {_join([b[0].lower() + b[1:] for b in parts['benefits']])}."
        )
    else:
        blocks = [
            parts["header"] + " | " + parts["location"],
            parts["opening"],
            "You will:\n" + "\n".join(bullet + r for r in parts["responsibilities"]),
            "You have:\n" + "\n".join(bullet + r for r in parts["requirements"]),
        ]
    if parts["intern"]:
        blocks.insert(2, parts["intern"])
    return "\n\n".join(blocks)


def make_jd(rng: random.Random, family: Family, seniority: str, number: int) -> dict:
    """One seed JD record for a family at a seniority level."""
    title, base = _title(rng, family, seniority)
    company = _company(rng)
    level = SENIORITY_OWNERSHIP[seniority]
    cert_names = set(certification_lexicon().canonical.values())
    skills = rng.sample([s for s in family.skills if s not in cert_names], rng.randint(4, 6))
    nice_skill = rng.choice([s for s in family.skills if s not in skills and s not in cert_names])
    duties = rng.sample(family.duties, rng.randint(3, 5))
    responsibilities = [
        _responsibility(rng, family, duty, max(0, level - (rng.random() < 0.2))) for duty in duties
    ]
    if seniority in ("lead", "manager"):
        people = rng.choice(("engineers", "specialists", "analysts", "staff", "colleagues"))
        responsibilities.insert(
            1, rng.choice(PEOPLE_SCOPE_PHRASES).format(n=rng.randint(3, 12), people=people) + "."
        )
    constraints = _constraints(rng, family, seniority)
    fmt = {
        "company": company,
        "title": title,
        "industry": rng.choice(family.industries),
        "a_size": with_article(rng.choice(SIZES)),
        "hq": rng.choice(LOCATIONS[:-1]) if constraints["location"] == "Remote" else constraints["location"],
        "area": family.area,
        "year": rng.randint(1990, 2021),
        "countries": rng.randint(3, 40),
        "partners": rng.choice(PARTNERS),
        "a_title": with_article(title),
        "manager": family.manager_title,
        "n": rng.randint(4, 15),
    }
    header = rng.choice(
        ("{title}", "Job title: {title}", "{title} at {company}", "We're hiring: {title}")
    ).format(**fmt)
    parts = {
        "header": header,
        "opening": rng.choice(OPENINGS).format(**fmt),
        "summary": rng.choice(ROLE_SUMMARIES).format(**fmt),
        "responsibilities": responsibilities,
        "requirements": _requirements(rng, family, base, constraints, skills),
        "nice": f"Experience with {nice_skill} is a plus." if rng.random() < 0.7 else "",
        "benefits": rng.sample(BENEFITS, rng.randint(3, 5)),
        "location": _location_line(rng, constraints["location"]),
        "intern": rng.choice(INTERN_LINES) if seniority == "intern" else "",
    }
    layout = rng.choice(("sections", "sections", "prose", "ad"))
    return {
        "id": f"seed-{number:04d}",
        "title": title,
        "text": _render(rng, parts, layout),
        "family": family.name,
        "seniority": seniority,
        "source": "cre-seed-v1",
        "meta": {
            "skills": skills,
            "constraints": constraints,
            "ownership_level": level,
            "company": company,
            "layout": layout,
        },
    }


def make_seed_jds(seed: int = SEED) -> list[dict]:
    """All seed JDs, ``JDS_PER_FAMILY`` per family over the :data:`SENIORITY_MIX` levels."""
    rng = random.Random(seed)
    records = []
    for family in FAMILY_LIST:
        for seniority in SENIORITY_MIX[:JDS_PER_FAMILY]:
            records.append(make_jd(rng, family, seniority, len(records) + 1))
    return records


def write_seed_jds(path: Path = OUTPUT, seed: int = SEED) -> Path:
    """Write the seed JDs as JSONL (one record per line, UTF-8) and return the path."""
    lines = (json.dumps(record, ensure_ascii=False) for record in make_seed_jds(seed))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    print(f"wrote {write_seed_jds(args.out, args.seed)}")
