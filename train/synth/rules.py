"""The ``rules`` generator: the eight stages done deterministically from the project's vocabularies.

:class:`RulesGenerator` answers the same chat prompts as an LLM (it reads the stage and the inputs from
the rendered messages, see :func:`train.synth.prompts.parse_task`) and returns the same JSON, which the
same parsers and validators then check. It extracts anchors with the matching rules, paraphrases with
title alternates, skill aliases and phrase synonyms, writes summaries and cards, demotes ownership verbs
and scope for role-boundary negatives, flips one constraint, and writes CVs for fitting candidates,
screening negatives and the six deceptive near misses. Every answer is a pure function of the prompt and
the seed, so runs are reproducible whatever the order or concurrency.

Example:
    >>> from train.synth.prompts import load_prompt
    >>> from train.synth.rules import RulesGenerator
    >>> messages = load_prompt("extraction").render({"title": "Nurse", "text": "Nurse. Fluent German required."})
    >>> '"language": "German"' in RulesGenerator().complete(messages)
    True
"""

from __future__ import annotations

import hashlib
import json
import random
import re

from train.synth.matching import (
    certification_lexicon,
    degree_lexicon,
    extract_constraints,
    normalize,
    ownership_level,
    ownership_of,
    sentences,
    skill_lexicon,
    split_seniority,
    title_variants,
)
from train.synth.prompts import parse_task
from train.synth.resume import Resume, Role, render_resume, responsibility_to_bullet, timeline
from train.synth.text import extract_anchor
from train.synth.vocab import (
    COMPANY_KINDS,
    COMPANY_PREFIXES,
    COMPANY_SUFFIXES,
    DEGREE_FORMS,
    DEGREE_SHORT,
    EDU_CITIES,
    FAMILIES,
    FAMILY_LIST,
    FIRST_NAMES,
    LANGUAGES,
    LAST_NAMES,
    LOCATIONS,
    OWNERSHIP_LEVELS,
    OWNERSHIP_PAST,
    OWNERSHIP_SCOPE,
    OWNERSHIP_VERBS,
    PHRASE_SYNONYMS,
    SCHOOL_FORMS,
    SENIORITY_ABBREVIATIONS,
    SENIORITY_PREFIXES,
    SKILL_ALIASES,
    TITLE_ALTERNATES,
    Family,
)

_LADDER_VERBS = sorted(
    ((verb, level) for level, verbs in OWNERSHIP_VERBS.items() for verb in verbs), key=lambda v: -len(v[0])
)
_SCOPE_PHRASES = sorted(
    {(phrase, level) for level, phrases in OWNERSHIP_SCOPE.items() for phrase in phrases},
    key=lambda p: -len(p[0]),
)
_PEOPLE = re.compile(r"^(?:Manage a team of|Hire, coach and grow a team of|Line-manage) (\d+) (\w+)(.*)$")
_DEMOTE_GENERIC = {
    0: (
        "Observe how experienced staff {verb} {rest}",
        "Learn, under close supervision, how to {verb} {rest}",
    ),
    1: ("Help senior colleagues {verb} {rest}", "Assist the team lead as needed to {verb} {rest}"),
    2: ("Contribute to the team's work to {verb} {rest}", "Work on tasks that help {verb} {rest}"),
}
_SCOPE_STATEMENTS = (
    "This role has no budget or line-management responsibility and works under the direction of the team lead.",
    "The position reports to a senior colleague, who sets priorities and signs off all work.",
    "Decisions on scope, budget and hiring are made by the team lead; this role executes assigned tasks.",
)
_OUTCOMES = (
    "improving {metric} by {n}%",
    "with a {n}% improvement in {metric}",
    "measurably improving {metric} ({n}% in a year)",
)
_GENERIC_METRICS = ("turnaround time", "error rates", "costs", "customer complaints", "processing time")
_GENERIC_INDUSTRIES = ("public sector", "healthcare", "manufacturing", "retail", "professional services")
_SENIOR_ADJECTIVES = {
    "intern": "Motivated",
    "junior": "Early-career",
    "mid": "Experienced",
    "senior": "Senior",
    "lead": "Seasoned",
    "manager": "People-focused",
    "unspecified": "Experienced",
}
_LANGUAGE_LEVELS = ("native", "fluent", "C1", "business level")


def _rng(seed: int, messages: list[dict]) -> random.Random:
    digest = hashlib.sha256((str(seed) + json.dumps(messages, sort_keys=True)).encode("utf-8")).hexdigest()
    return random.Random(int(digest[:16], 16))


def _replace_word(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<![\w/]){re.escape(old)}(?![\w/])", new, text, flags=re.IGNORECASE)


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def singular_title(title: str) -> str:
    """A person's title from an occupation name: ``"Marketing Managers"`` -> ``"Marketing Manager"``."""
    title = re.split(r",| and | or ", title)[0].strip()
    head, _, last = title.rpartition(" ")
    if re.search(r"ies$", last):
        last = last[:-3] + "y"
    elif re.search(r"[^su]s$", last):
        last = last[:-1]
    return f"{head} {last}".strip()


def infer_family(title: str, skills: list[str]) -> Family | None:
    """The vocabulary family a role belongs to: by title, else by at least two shared skills."""
    variants = {normalize(v) for v in title_variants(title)}
    for family in FAMILY_LIST:
        names = {normalize(t) for t in family.titles} | {normalize(family.manager_title)}
        names |= {normalize(alt) for t in family.titles for alt in TITLE_ALTERNATES.get(t, ())}
        if variants & names:
            return family
    scored = sorted(((len(set(skills) & set(f.skills)), f.name) for f in FAMILY_LIST), reverse=True)
    return FAMILIES[scored[0][1]] if scored and scored[0][0] >= 2 else None


# ---- stage 1: extraction -----------------------------------------------------------------------------------


# ---- stage 2: paraphrase -----------------------------------------------------------------------------------


def paraphrase(title: str, text: str, rng: random.Random) -> str:
    """Rewrite a JD with a title variant, skill aliases, degree abbreviations, phrase synonyms and bullet order."""
    prefix, base = split_seniority(title)
    alternates = TITLE_ALTERNATES.get(base, ())
    new_base = rng.choice(alternates) if alternates and rng.random() < 0.8 else base
    new_prefix = SENIORITY_ABBREVIATIONS.get(prefix, prefix) if rng.random() < 0.6 else prefix
    new_title = f"{new_prefix} {new_base}".strip()
    if new_title == title and prefix:
        new_title = f"{SENIORITY_ABBREVIATIONS.get(prefix, prefix)} {base}"
    text = _replace_word(text, title, new_title)
    protected = [(start, end) for start, end, _ in certification_lexicon().finditer(text)]
    for start, end, skill in reversed(skill_lexicon().finditer(text)):
        inside_certification = any(s <= start and end <= e for s, e in protected)
        if skill in SKILL_ALIASES and not inside_certification and rng.random() < 0.8:
            text = text[:start] + rng.choice(SKILL_ALIASES[skill]) + text[end:]
    for level, forms in DEGREE_FORMS.items():
        for form in forms[:2]:
            text = _replace_word(text, f"a {form}", DEGREE_SHORT[level])
    for old, new in PHRASE_SYNONYMS:
        if rng.random() < 0.7:
            text = re.sub(rf"\b{re.escape(old)}\b", new, text)
            text = re.sub(rf"\b{re.escape(old.capitalize())}\b", new.capitalize(), text)
    return _shuffle_bullets(text, rng)


def _shuffle_bullets(text: str, rng: random.Random) -> str:
    """Reorder each run of responsibility bullets (requirements keep their order: it decides what is 'first')."""
    blocks = text.split("\n\n")
    for index, block in enumerate(blocks):
        lines = block.split("\n")
        bullets = [line for line in lines if re.match(r"^[-•*] ", line)]
        if len(bullets) >= 3 and not any(extract_constraints(block).values()):
            rng.shuffle(bullets)
            blocks[index] = "\n".join([line for line in lines if not re.match(r"^[-•*] ", line)] + bullets)
    return "\n\n".join(blocks)


# ---- stage 3: summary and card ---------------------------------------------------------------------------


def _must_haves(constraints: dict) -> list[str]:
    items = []
    if constraints.get("years") is not None:
        items.append(f"{constraints['years']}+ years")
    if constraints.get("degree"):
        items.append(DEGREE_SHORT.get(constraints["degree"], constraints["degree"]))
    for name in ("certification", "language"):
        if constraints.get(name):
            items.append(constraints[name])
    return items


def summary_and_card(text: str, anchor: dict, rng: random.Random) -> dict:
    """A short prose summary of the JD and its one-line semantic card."""
    title, constraints = anchor["title"], anchor["constraints"]
    duties = [r.rstrip(".") for r in anchor["responsibilities"][:2]]
    duties = [d[0].lower() + d[1:] for d in duties if d]
    skills = anchor["skills"][:4]
    location = constraints.get("location")
    where = "" if not location else " (remote)" if location == "Remote" else f" in {location}"
    opening = rng.choice(
        (
            "{A} is needed{where} to {duties}.",
            "Hiring {a}{where}: the role will {duties}.",
            "{A}{where} who will {duties}.",
        )
    )
    summary = opening.format(
        A=_article(title).capitalize(),
        a=_article(title),
        where=where,
        duties=" and ".join(duties) or "join the team",
    )
    must = _must_haves(constraints)
    if skills or must:
        summary += " " + rng.choice(
            ("Requires {x}.", "Key requirements: {x}.", "Candidates need {x}.")
        ).format(x=", ".join(skills + must))
    fields = [
        title,
        anchor["seniority"],
        ", ".join(skills) or "-",
        f"{anchor['ownership_scope']['level']} scope",
        "; ".join(must) or "none stated",
        location or "unspecified",
    ]
    names = ("title", "seniority", "skills", "scope", "must-haves", "location")
    card = " | ".join(f"{name}: {value}" for name, value in zip(names, fields, strict=True))
    return {"summary": summary, "card": card}


# ---- stage 4: role-boundary negatives --------------------------------------------------------------------


def _demote_sentence(sentence: str, target: int, area: str, rng: random.Random) -> str:
    level = ownership_of(sentence)
    if level is None or level <= target:
        return sentence
    people = _PEOPLE.match(sentence)
    if people:
        return f"Work alongside {people.group(1)} {people.group(2)}{people.group(3)}"
    for verb, verb_level in _LADDER_VERBS:
        if sentence.startswith(verb + " ") and verb_level > target:
            sentence = rng.choice(OWNERSHIP_VERBS[target]) + sentence[len(verb) :]
            for phrase, scope_level in _SCOPE_PHRASES:
                if scope_level > target and phrase.format(area=area) in sentence:
                    sentence = sentence.replace(
                        phrase.format(area=area), rng.choice(OWNERSHIP_SCOPE[target]).format(area=area)
                    )
            return sentence
    verb, _, rest = sentence.partition(" ")
    return rng.choice(_DEMOTE_GENERIC[min(target, 2)]).format(verb=verb.lower(), rest=rest)


def role_boundary_negatives(text: str, anchor: dict, count: int, rng: random.Random) -> list[str]:
    """``count`` rewrites of the JD with the same title and shallower ownership (levels below the JD's)."""
    source = ownership_level(text)
    source = (
        round(source) if source is not None else OWNERSHIP_LEVELS.index(anchor["ownership_scope"]["level"])
    )
    family = infer_family(anchor["title"], anchor["skills"])
    area = family.area if family else "team"
    targets = [max(0, source - 1 - (i % 2)) for i in range(count)]
    negatives = []
    for index, target in enumerate(targets):
        lines = []
        for line in text.split("\n"):
            mark = re.match(r"^\s*(?:[-•*]\s+)?", line).group(0)
            parts = re.split(r"(?<=[.!?])\s+", line[len(mark) :])
            lines.append(mark + " ".join(_demote_sentence(part, target, area, rng) for part in parts))
        negative = "\n".join(lines)
        if index == count - 1 or rng.random() < 0.3:
            negative += "\n\n" + rng.choice(_SCOPE_STATEMENTS)
        negatives.append(negative)
    return negatives


# ---- stage 5: constraint conflict ----------------------------------------------------------------------


def flip_constraint(text: str, rng: random.Random) -> dict:
    """Change exactly one non-location constraint (or add one the JD lacks) and return the new JD."""
    found = extract_constraints(text)
    present = [name for name in ("years", "degree", "certification", "language") if found[name]]
    name = (
        rng.choice(present)
        if present and rng.random() < 0.85
        else rng.choice(("years", "language", "degree"))
    )
    if name == "years":
        new_text, new_value = _flip_years(text, found["years"], rng)
    elif name == "degree":
        new_text, new_value = _flip_degree(text, found["degree"], rng)
    elif name == "certification":
        new_text, new_value = _flip_certification(text, found["certification"], rng)
    else:
        new_text, new_value = _flip_language(text, found["language"], rng)
    return {"flipped_field": name, "original_value": found[name], "new_value": new_value, "text": new_text}


def _append_requirement(text: str, sentence: str) -> str:
    return text.rstrip() + "\n\n" + sentence


def _flip_years(text: str, years: int | None, rng: random.Random) -> tuple[str, int]:
    if years is None:
        new = rng.randint(3, 8)
        return _append_requirement(
            text, f"At least {new} years of professional experience in a similar role is required."
        ), new
    new = (
        years + rng.randint(3, 6)
        if years < 4 or rng.random() < 0.7
        else max(0, years - rng.randint(3, years))
    )
    for sentence in sentences(text):
        if re.search(
            r"experience|background|track record|similar role|working|professional", sentence, re.IGNORECASE
        ):
            span = re.search(
                r"\b(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen)\s*(?:\+|(?:-|–|to)\s*\d{1,2})?\s*\+?\s*(years?|yrs?)\b",
                sentence,
                re.IGNORECASE,
            )
            if span:
                replaced = sentence[: span.start()] + f"{new}+ {span.group(2)}" + sentence[span.end() :]
                return text.replace(sentence, replaced, 1), new
    return text, years


def _flip_degree(text: str, degree: str | None, rng: random.Random) -> tuple[str, str]:
    choices = {
        "high_school": "associate",
        "associate": "bachelor",
        "bachelor": rng.choice(("master", "phd")),
        "master": rng.choice(("phd", "bachelor")),
        "phd": "master",
    }
    if degree is None:
        new = rng.choice(("bachelor", "master"))
        return _append_requirement(text, f"A {DEGREE_FORMS[new][0]} in a relevant field is required."), new
    new = choices[degree]
    start, end, _ = degree_lexicon().finditer(text)[0]
    surface = DEGREE_FORMS[new][0]
    before = text[:start]
    article = re.search(r"\b([Aa]n?) $", before)
    if article:  # keep "a"/"an" right for the new degree
        fixed = (
            ("An" if article.group(1)[0] == "A" else "an")
            if surface[0].lower() in "aeiou"
            else article.group(1)[0]
        )
        before = before[: article.start()] + fixed + " "
    return before + surface + text[end:], new


def _flip_certification(text: str, cert: str, rng: random.Random) -> tuple[str, str]:
    family = next((f for f in FAMILY_LIST if cert in f.certifications), None)
    pool = [c for c in (family.certifications if family else ()) if c != cert and c not in text]
    if not pool:
        pool = [c for f in FAMILY_LIST for c in f.certifications if c != cert and c not in text]
    new = rng.choice(pool)
    for form in sorted({cert, *SKILL_ALIASES.get(cert, ())}, key=len, reverse=True):
        text = _replace_word(text, form, new)
    return text, new


def _flip_language(text: str, languages: str | None, rng: random.Random) -> tuple[str, str]:
    current = languages.split(", ") if languages else []
    new = rng.choice(
        [lang for lang in LANGUAGES if lang not in current and not re.search(rf"\b{lang}\b", text)]
    )
    if not current:
        return _append_requirement(text, f"Fluent {new} is required."), new
    old = rng.choice(current)
    for sentence in sentences(text):
        if re.search(rf"\b{old}\b", sentence) and re.search(
            r"fluen|proficien|speak|native|language|spoken", sentence, re.I
        ):
            text = text.replace(sentence, re.sub(rf"\b{old}\b", new, sentence), 1)
    return text, ", ".join(sorted([*(lang for lang in current if lang != old), new]))


# ---- stages 6-7: JD-CV triplets ------------------------------------------------------------------------


class CandidateWriter:
    """Builds fitting and non-fitting candidates for one JD anchor."""

    def __init__(self, anchor: dict, rng: random.Random):
        self.anchor, self.rng = anchor, rng
        self.family = infer_family(anchor["title"], anchor["skills"])
        self.prefix, base = split_seniority(anchor["title"])
        self.base = singular_title(base)
        self.constraints = anchor["constraints"]
        self.level = OWNERSHIP_LEVELS.index(anchor["ownership_scope"]["level"])

    # -- building blocks

    def _company(self) -> str:
        rng = self.rng
        return f"{rng.choice(COMPANY_PREFIXES)}{rng.choice(COMPANY_SUFFIXES)} {rng.choice(COMPANY_KINDS)}"

    def _city(self) -> str:
        location = self.constraints.get("location")
        if location and location != "Remote" and self.rng.random() < 0.8:
            return location
        return self.rng.choice(LOCATIONS[:-1])

    def _bullets(self, family: Family | None, level: int, count: int, *, use_jd: bool) -> list[str]:
        rng = self.rng
        metrics = family.metrics if family else _GENERIC_METRICS
        if use_jd and (family is None or rng.random() < 0.5) and self.anchor["responsibilities"]:
            pool = [responsibility_to_bullet(r) for r in self.anchor["responsibilities"]]
            bullets = rng.sample(pool, min(count, len(pool)))
        else:
            duties = (
                rng.sample(family.duties, min(count, len(family.duties)))
                if family
                else ["day-to-day operations"]
            )
            bullets = [f"{rng.choice(OWNERSHIP_PAST[level])} {duty}." for duty in duties]
        result = []
        for bullet in bullets:
            if rng.random() < 0.5:
                outcome = rng.choice(_OUTCOMES).format(metric=rng.choice(metrics), n=rng.randint(8, 45))
                bullet = f"{bullet.rstrip('.')}, {outcome}."
            result.append(bullet)
        skills = self.anchor["skills"] if use_jd else (family.skills if family else [])
        if skills and result and rng.random() < 0.7:
            result.append(f"Worked daily with {', '.join(rng.sample(list(skills), min(3, len(skills))))}.")
        return result

    def _title_at(self, base: str, seniority: str, family: Family | None) -> str:
        if seniority == "manager":
            return family.manager_title if family else f"{base} Manager"
        if seniority not in SENIORITY_PREFIXES:
            return base
        return self.rng.choice(SENIORITY_PREFIXES[seniority]).format(title=base)

    def _education(self, family: Family | None, degree: str | None) -> list[tuple[str, str, str, int]]:
        rng = self.rng
        school = rng.choice(SCHOOL_FORMS).format(city=rng.choice(EDU_CITIES))
        subject = (
            rng.choice(family.degree_fields)
            if family
            else rng.choice(("Business Administration", "Applied Sciences"))
        )
        names = {
            "high_school": ("High school diploma", ""),
            "associate": ("Associate of Applied Science,", subject),
            "bachelor": (rng.choice(("BSc", "BA", "Bachelor of Science in")), subject),
            "master": (rng.choice(("MSc", "MA", "Master of Science in")), subject),
            "phd": ("PhD in", subject),
        }
        degree_name, subject = names[degree or "bachelor"]
        return [(degree_name, subject, school, rng.randint(2004, 2022))]

    def _languages(self, required: str | None) -> list[tuple[str, str]]:
        languages = {"English": self.rng.choice(_LANGUAGE_LEVELS)}
        for lang in (required or "").split(", "):
            if lang:
                languages[lang] = self.rng.choice(_LANGUAGE_LEVELS[:3])
        return list(languages.items())

    def _person(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def _months_for(self, years: float, roles: int) -> list[int]:
        total = max(roles * 3, int(years * 12))
        cuts = sorted(self.rng.sample(range(1, total), roles - 1)) if roles > 1 else []
        return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]

    def _career(
        self, family: Family | None, base: str, seniority: str, years: float, level: int, *, use_jd: bool
    ) -> list[Role]:
        ladder = ("intern", "junior", "mid", "senior", "lead", "manager")
        top = ladder.index(seniority) if seniority in ladder else 2
        count = 1 if years < 1.5 else self.rng.choice((2, 3)) if years < 6 else self.rng.choice((3, 4))
        spans = timeline(self._months_for(years, count), self.rng)
        roles = []
        for index, (start, end) in enumerate(spans):
            role_seniority = ladder[max(0, top - index)]
            role_level = max(0, level - index)
            roles.append(
                Role(
                    self._title_at(base, role_seniority, family),
                    self._company(),
                    self._city(),
                    start,
                    end,
                    self._bullets(family, role_level, self.rng.randint(2, 4), use_jd=use_jd and index < 2),
                )
            )
        return roles

    def _required_years(self) -> float:
        years = self.constraints.get("years")
        if years is not None:
            return float(years)
        return {"intern": 0.5, "junior": 1.0, "mid": 3.0, "senior": 5.0, "lead": 8.0, "manager": 7.0}.get(
            self.anchor["seniority"], 3.0
        )

    def _summary(self, base: str, years: float, industry: str, skills: list[str]) -> str:
        adjective = _SENIOR_ADJECTIVES.get(self.anchor["seniority"], "Experienced")
        span = f"{years:.0f} years" if years >= 1.5 else "one year"
        return self.rng.choice(
            (
                "{adj} {base} with {span} of experience in {industry}. Strong in {skills}.",
                "{base} with {span} in {industry}, known for reliable delivery. Core skills: {skills}.",
                "I am a {lower} with {span} of experience, most recently in {industry}. I work with {skills}.",
            )
        ).format(
            adj=adjective,
            base=base,
            lower=base.lower(),
            span=span,
            industry=industry,
            skills=", ".join(skills[:4]),
        )

    def _other_family(self, *, adjacent: bool) -> Family:
        if adjacent and self.family is not None:
            return FAMILIES[self.rng.choice(self.family.adjacent)]
        excluded = {self.family.name, *self.family.adjacent} if self.family else set()
        return self.rng.choice([f for f in FAMILY_LIST if f.name not in excluded])

    def _industry(self, family: Family | None) -> str:
        return self.rng.choice(family.industries if family else _GENERIC_INDUSTRIES)

    # -- candidates

    def fitting(self) -> Resume:
        """A candidate who meets the JD: field, seniority, years, skills, degree, certification, languages."""
        years = self._required_years() + self.rng.choice((0.5, 1, 2, 3))
        skills = list(self.anchor["skills"])
        if len(skills) > 4:
            skills.remove(self.rng.choice(skills[2:]))
        if self.family:
            skills += self.rng.sample([s for s in self.family.skills if s not in skills] or [""], 1)
        seniority = self.anchor["seniority"] if self.anchor["seniority"] != "unspecified" else "mid"
        roles = self._career(self.family, self.base, seniority, years, self.level, use_jd=True)
        headline = roles[0].title
        certs = [self.constraints["certification"]] if self.constraints.get("certification") else []
        return Resume(
            self._person(),
            headline,
            self._city(),
            self._summary(self.base, years, self._industry(self.family), skills),
            roles,
            [s for s in skills if s],
            self._education(self.family, self.constraints.get("degree")),
            certs,
            self._languages(self.constraints.get("language")),
        )

    def other_professional(self, family: Family) -> Resume:
        """A credible professional of another family at a similar seniority."""
        base = self.rng.choice(family.titles)
        years = self._required_years() + self.rng.choice((0, 1, 2))
        seniority = self.anchor["seniority"] if self.anchor["seniority"] != "unspecified" else "mid"
        roles = self._career(family, base, seniority, years, self.level, use_jd=False)
        skills = self.rng.sample(list(family.skills), min(6, len(family.skills)))
        return Resume(
            self._person(),
            roles[0].title,
            self._city(),
            self._summary(base, years, self._industry(family), skills),
            roles,
            skills,
            self._education(family, family.min_degree),
            [],
            self._languages(None),
        )

    def deceptive(self, kind: str) -> Resume:
        """A near miss of one of the :data:`~train.synth.schema.DECEPTIVE_TYPES`."""
        return getattr(self, f"_{kind}")()

    def _title_inflation(self) -> Resume:
        resume = self.fitting()
        rng, years = self.rng, max(0.5, self._required_years() / 4)
        inflated = self._title_at(self.base, rng.choice(("senior", "lead")), self.family)
        months = self._months_for(years, 2)
        (s1, e1), (s2, e2) = timeline(months, rng)
        resume.roles = [
            Role(
                inflated,
                f"{self._company()} (4-person startup)",
                self._city(),
                s1,
                e1,
                self._bullets(self.family, 1, 3, use_jd=True),
            ),
            Role(
                self._title_at(self.base, "intern", self.family),
                self._company(),
                self._city(),
                s2,
                e2,
                self._bullets(self.family, 0, 2, use_jd=True),
            ),
        ]
        resume.headline = inflated
        resume.summary = f"Seasoned {inflated} and hands-on leader. " + resume.summary.split(". ", 1)[-1]
        return resume

    def _contractor_intern_confusion(self) -> Resume:
        resume, rng = self.fitting(), self.rng
        stints = [rng.randint(3, 6) for _ in range(3)]
        labels = (f"{self.base} Intern", f"Contract {self.base} (part-time)", f"Freelance {self.base}")
        resume.roles = [
            Role(
                label,
                self._company(),
                self._city(),
                start,
                end,
                self._bullets(self.family, 1, 2, use_jd=True),
            )
            for label, (start, end) in zip(labels, timeline(stints, rng), strict=True)
        ]
        resume.headline = f"{self.base} (contract & internship experience)"
        claimed = max(3, int(self._required_years()))
        resume.summary = (
            f"{self.base} with {claimed} years of exposure across internships, contracts and freelance projects. "
            + resume.summary.split(". ", 1)[-1]
        )
        return resume

    def _career_pivot(self) -> Resume:
        rng, other = self.rng, self._other_family(adjacent=False)
        old_base = rng.choice(other.titles)
        spans = timeline([rng.randint(4, 9), *self._months_for(rng.randint(6, 12), rng.choice((2, 3)))], rng)
        roles = [
            Role(
                self._title_at(self.base, "junior", self.family),
                self._company(),
                self._city(),
                *spans[0],
                self._bullets(self.family, 1, 2, use_jd=True),
            )
        ]
        for index, (start, end) in enumerate(spans[1:]):
            seniority = ("senior", "mid", "junior")[min(index, 2)]
            roles.append(
                Role(
                    self._title_at(old_base, seniority, other),
                    self._company(),
                    self._city(),
                    start,
                    end,
                    self._bullets(other, max(1, 3 - index), 3, use_jd=False),
                )
            )
        skills = rng.sample(list(other.skills), 5) + list(self.anchor["skills"][:2])
        summary = (
            f"Career changer: {roles[1].title} with years of experience in {self._industry(other)}, now moving into "
            f"{self.base.lower()} work after a 12-week bootcamp."
        )
        return Resume(
            self._person(),
            f"{old_base} moving into {self.base} work",
            self._city(),
            summary,
            roles,
            skills,
            self._education(other, other.min_degree),
            [],
            self._languages(None),
        )

    def _skill_stuffing(self) -> Resume:
        resume = self.other_professional(self._other_family(adjacent=False))
        resume.skills = list(
            dict.fromkeys(
                list(self.anchor["skills"])
                + resume.skills
                + ["Leadership", "Communication", "Problem solving"]
            )
        )
        resume.summary = (
            f"Versatile professional familiar with {', '.join(self.anchor['skills'][:5])} and more. "
            + resume.summary
        )
        return resume

    def _influencer_noise(self) -> Resume:
        rng = self.rng
        skills = list(self.anchor["skills"])
        topic = rng.choice(skills) if skills else self.base
        followers = rng.randint(12, 90)
        spans = timeline([rng.randint(18, 40), rng.randint(20, 50)], rng)
        roles = [
            Role(
                f"Content Creator, {self.base} Insights newsletter",
                "Self-employed",
                self._city(),
                *spans[0],
                [
                    f"Published {rng.randint(60, 240)} posts about {topic}, growing an audience of {followers}k followers.",
                    f"Hosted {rng.randint(15, 60)} podcast episodes interviewing {self.base.lower()}s about their work.",
                    "Partnered with brands on sponsored content and webinars.",
                ],
            ),
            Role(
                rng.choice(("Marketing Coordinator", "Community Manager", "Events Coordinator")),
                self._company(),
                self._city(),
                *spans[1],
                ["Organised meetups and online events.", "Managed social media calendars and newsletters."],
            ),
        ]
        return Resume(
            self._person(),
            f"{self.base} influencer & speaker",
            self._city(),
            f"Voice of the {self.base.lower()} community with {followers}k followers. I write and speak about {', '.join(skills[:3]) or topic}.",
            roles,
            skills + ["Public speaking", "Social media"],
            self._education(None, "bachelor"),
            extras=[
                f"Keynote speaker at {rng.randint(5, 20)} industry meetups on {topic}.",
                "Top voice badge on a professional network.",
            ],
            languages=self._languages(None),
        )

    def _adjacent_role(self) -> Resume:
        return self.other_professional(self._other_family(adjacent=True))


# ---- stage 8: recruiter questions answered by a CV passage ----------------------------------------------
# Recruiters ask about a CV's employers, projects, tools, education and experience, and quote its names
# ("How did the Java Developer at Northwind Labs ..."); a question answerable by any CV ("What are the
# candidate's skills?", "How many years in fintech?") would make every other CV's passage a false negative, so each one names
# something of its passage.

_PAST_BULLET = re.compile(
    r"^(?:[-•*]\s+)?([A-Z][a-z]+(?:ed|ied|led|drove|built|wrote|ran|set|taught|made|took|kept|met|oversaw|sold|held|brought|was))\b\s+(.*)$"
)
_OUTCOME_CLAUSE = re.compile(r",\s*(?:reducing|cutting|improving|with a|growing|increasing|measurably)\b.*$")
_COMPANY = re.compile(
    rf"\b(?:{'|'.join(COMPANY_PREFIXES)})(?:{'|'.join(COMPANY_SUFFIXES)}) (?:{'|'.join(COMPANY_KINDS)})\b"
)
_SCHOOL = re.compile(
    "|".join(re.escape(form).replace(r"\{city\}", f"(?:{'|'.join(EDU_CITIES)})") for form in SCHOOL_FORMS)
)
_TOOLS = re.compile(r"(?:Worked daily with|Tools:) ([^.\n]+)")
_SKILLS_LINE = re.compile(r"^(?:#+ )?(?:SKILLS|Skills|Core competencies:?)\s*(.*)$", re.MULTILINE)
_ROLE_NEAR_COMPANY = (
    r"^(?:[#*\s]*)([^|\n]+?) \| {company}",  # Title | Company | City
    r"{company} — ([^\n*]+)",  # ### Company — Title
    r"(?:^|: )([A-Z][^,:\n]+?), {company}",  # 2024-06 to present: Title, Company (City)
)
_ROLE_QUESTIONS = (
    "How did the {role} at {company} contribute to {rest}?",
    "What did the candidate achieve as {role} at {company}?",
    "What were the responsibilities of the {role} at {company}, for example {rest}?",
    "Describe the candidate's work on {rest} at {company}.",
    "Which projects did the {role} work on at {company}?",
)
_TOOL_QUESTIONS = (
    "Which tools and technologies did the candidate use at {company}?",
    "How did the {role} at {company} use {tools}?",
    "Who has hands-on experience with {tools} from their job at {company}?",
)
_SCHOOL_QUESTIONS = (
    "What degree did the candidate earn at {school}?",
    "When did the candidate graduate from {school}, and in which field?",
    "What did the candidate study at {school}?",
)
_SKILL_QUESTIONS = (
    "Does the candidate list {skills} among their skills?",
    "Which candidate has skills in {skills}?",
    "Is the {title} proficient in {skills}?",
)


def _blocks(cv: str) -> list[str]:
    """Passages of a CV: its blank-line separated blocks."""
    return [block.strip() for block in cv.split("\n\n") if block.strip()]


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _role_at(block: str, company: str) -> str | None:
    for pattern in _ROLE_NEAR_COMPANY:
        match = re.search(pattern.format(company=re.escape(company)), block, re.MULTILINE)
        if match:
            return match.group(1).strip(" *#—")
    return None


def _questions_about(block: str, title: str, rng: random.Random) -> list[str]:
    """Every question of the templates that ``block`` answers (named by what it contains)."""
    found = []
    base = split_seniority(title)[1]
    for company in dict.fromkeys(_COMPANY.findall(block)):
        role = _role_at(block, company) or base
        for sentence in sentences(block):
            match = _PAST_BULLET.match(sentence)
            if match and len(match.group(2).split()) >= 3 and not _TOOLS.match(sentence):
                rest = re.sub(
                    r"^(?:with|or|and|on|in|to)\s+", "", _OUTCOME_CLAUSE.sub("", match.group(2)).rstrip(".")
                )
                found += [t.format(role=role, company=company, rest=rest) for t in _ROLE_QUESTIONS]
        tools = _TOOLS.search(block)
        if tools:
            names = [name.strip() for name in tools.group(1).split(",") if name.strip()][:3]
            found += [t.format(role=role, company=company, tools=_and(names)) for t in _TOOL_QUESTIONS]
    for school in dict.fromkeys(_SCHOOL.findall(block)):
        found += [t.format(school=school) for t in _SCHOOL_QUESTIONS]
    skills = _SKILLS_LINE.search(block)
    if skills:
        listed = skills.group(1) or block.split("\n", 1)[-1]
        names = [name.strip() for name in re.split(r"[,•·]", listed) if name.strip() and "\n" not in name]
        if len(names) >= 2:
            picked = rng.sample(names, min(3, len(names)))
            found += [t.format(skills=_and(picked), title=base) for t in _SKILL_QUESTIONS]
    return found


def recruiter_queries(cv: str, title: str, count: int, rng: random.Random) -> list[dict]:
    """Questions a recruiter might ask about a CV, each with the CV passage that answers it.

    One question per passage (two questions of one CV never share an answer), naming the passage's
    employer, project, tools, school or skills.

    Example:
        >>> cv = "Jane Roe\\n\\nEXPERIENCE\\nData Analyst | Northwind Labs | Leeds\\n• Designed dashboards for the sales team.\\n\\nEDUCATION\\nBSc Statistics, University of Leeds, 2019"
        >>> for item in recruiter_queries(cv, "Data Analyst", 2, random.Random(0)):
        ...     print(item["query"])
        Describe the candidate's work on dashboards for the sales team at Northwind Labs.
        What degree did the candidate earn at University of Leeds?
    """
    candidates = [(block, _questions_about(block, title, rng)) for block in _blocks(cv)]
    candidates = [(block, questions) for block, questions in candidates if questions]
    rng.shuffle(candidates)
    return [{"query": rng.choice(questions), "chunk": block} for block, questions in candidates[:count]]


class RulesGenerator:
    """Deterministic offline generator: answers every stage prompt from the project's vocabularies.

    Args:
        seed: Changes every random choice (reproducibly).
    """

    name = "rules"
    concurrency = 1

    def __init__(self, seed: int = 0):
        self.seed = seed

    @property
    def identity(self) -> str:
        return f"rules:seed={self.seed}"

    def complete(self, messages: list[dict], *, max_tokens: int = 0, temperature: float = 0.0) -> str:
        """Answer a stage prompt rendered by :mod:`train.synth.prompts` with the stage's JSON."""
        stage, _, inputs = parse_task(messages)
        rng = _rng(self.seed, messages)
        return json.dumps(self._answer(stage, inputs, rng), ensure_ascii=False)

    def _answer(self, stage: str, inputs: dict, rng: random.Random) -> dict:
        if stage == "extraction":
            return extract_anchor(inputs["title"], inputs["text"])
        if stage == "paraphrase":
            return {"paraphrase": paraphrase(inputs["title"], inputs["text"], rng)}
        if stage == "card":
            return summary_and_card(inputs["text"], inputs["anchor"], rng)
        if stage == "role_boundary":
            anchor = {
                "title": inputs["title"],
                "skills": [],
                "ownership_scope": {"level": inputs["level_name"]},
            }
            return {"negatives": role_boundary_negatives(inputs["text"], anchor, int(inputs["count"]), rng)}
        if stage == "constraint_conflict":
            return flip_constraint(inputs["text"], rng)
        if stage in ("jdcv_balanced", "jdcv_deceptive"):
            writer = CandidateWriter(inputs["anchor"], rng)
            kind = inputs.get("negative_type", "screening")
            negative = (
                writer.other_professional(writer._other_family(adjacent=False))
                if kind == "screening"
                else writer.deceptive(kind)
            )
            return {
                "positive_cv": render_resume(writer.fitting(), rng),
                "negative_cv": render_resume(negative, rng),
                "negative_type": kind,
            }
        if stage == "cv_queries":
            return {"queries": recruiter_queries(inputs["cv"], inputs["title"], int(inputs["count"]), rng)}
        raise ValueError(f"the rules generator has no stage {stage!r}")
