"""Script-level text analysis shared by the validators and the ``rules`` generator.

Everything here reads plain JD or CV text with the project's vocabularies and regular expressions:
which known skills a text names (aliases included), whether it keeps a title, which hard constraints it
states (years, degree, certification, language, location) and how much ownership its responsibilities
imply. Validators use these functions to check that generated samples stay grounded in their source JD,
whichever generator wrote them.

Example:
    >>> from train.synth.matching import extract_constraints, find_skills
    >>> text = "Senior SRE. 5+ years of experience with K8s and Terraform. Fluent English required."
    >>> sorted(find_skills(text))
    ['Kubernetes', 'Terraform']
    >>> extract_constraints(text)["years"], extract_constraints(text)["language"]
    (5, 'English')
"""

from __future__ import annotations

import functools
import re
import statistics

from train.synth.vocab import (
    DEGREE_FORMS,
    FAMILY_LIST,
    LANGUAGE_CUES,
    LANGUAGES,
    LOCATIONS,
    OWNERSHIP_CUES,
    SENIORITY_ABBREVIATIONS,
    SENIORITY_WORDS,
    SKILL_ALIASES,
    TITLE_ALTERNATES,
)

CONSTRAINT_FIELDS = ("years", "degree", "certification", "language", "location")
FLIPPABLE_FIELDS = ("years", "degree", "certification", "language")

_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
}
_YEARS = re.compile(
    r"\b(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")\s*(?:\+|(?:-|–|to)\s*\d{1,2})?\s*\+?\s*(?:years?|yrs?)\b",
    re.IGNORECASE,
)
_EXPERIENCE_CUES = (
    "experience",
    "background",
    "track record",
    "similar role",
    "working",
    "professional",
    "exp.",
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")


def normalize(text: str) -> str:
    """Lowercase, unify dashes/quotes and collapse whitespace, for comparisons."""
    text = text.lower().replace("’", "'").replace("–", "-").replace("—", "-")
    return re.sub(r"\s+", " ", text).strip()


def words(text: str) -> list[str]:
    """Lowercased word tokens (letters, digits, ``+#&/``-joined terms)."""
    return re.findall(r"[a-z0-9][a-z0-9+#&/.'-]*[a-z0-9+#]|[a-z0-9]", normalize(text))


def sentences(text: str) -> list[str]:
    """Split text into sentences and bullet lines, stripped of bullet marks."""
    parts = (re.sub(r"^[\s•*\-–·>]+", "", part).strip() for part in _SENTENCE_SPLIT.split(text))
    return [part for part in parts if part]


_TOKEN = re.compile(r"\w+|[^\w\s]")


def _tokens(text: str) -> list[re.Match]:
    return list(_TOKEN.finditer(text.replace("’", "'")))


class _Lexicon:
    """Maps surface forms (canonical names and aliases) of a closed vocabulary back to canonical names.

    Matching runs over word tokens (longest form first), so forms only match whole words. Short all-caps
    forms (``AD``, ``JS``, ``RN``) match case-sensitively so ordinary words are not misread.
    """

    def __init__(self, canonical_to_forms: dict[str, tuple[str, ...]], *, canonical_is_form: bool = True):
        self.canonical: dict[str, str] = {}
        self._forms: dict[tuple[str, ...], tuple[str, tuple[str, ...] | None]] = {}
        self._lengths: dict[str, list[int]] = {}
        for canonical, forms in canonical_to_forms.items():
            for form in (canonical, *forms) if canonical_is_form else forms:
                self.canonical[form.lower()] = canonical
                tokens = tuple(match.group(0) for match in _tokens(form))
                strict = tokens if len(form) <= 3 and form.isupper() else None
                self._forms[tuple(token.lower() for token in tokens)] = (canonical, strict)
                self._lengths.setdefault(tokens[0].lower(), []).append(len(tokens))
        for lengths in self._lengths.values():
            lengths.sort(reverse=True)

    def finditer(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, canonical)`` for each mention, in text order."""
        tokens = _tokens(text)
        lowered = [token.group(0).lower() for token in tokens]
        hits, index = [], 0
        while index < len(tokens):
            step = 1
            for length in self._lengths.get(lowered[index], ()):
                if index + length > len(tokens):  # a slice cut by the text's end is a shorter form's key
                    continue
                entry = self._forms.get(tuple(lowered[index : index + length]))
                if entry is None:
                    continue
                canonical, strict = entry
                if strict is not None and tuple(t.group(0) for t in tokens[index : index + length]) != strict:
                    continue
                hits.append((tokens[index].start(), tokens[index + length - 1].end(), canonical))
                step = length
                break
            index += step
        return hits

    @functools.lru_cache(maxsize=8192)  # noqa: B019  (lexicons are module-level singletons)
    def names_in(self, text: str) -> frozenset[str]:
        """The canonical names mentioned in ``text``."""
        return frozenset(name for _, _, name in self.finditer(text))


@functools.cache
def skill_lexicon() -> _Lexicon:
    skills = {skill for family in FAMILY_LIST for skill in family.skills} | set(SKILL_ALIASES)
    return _Lexicon({skill: SKILL_ALIASES.get(skill, ()) for skill in sorted(skills)})


@functools.cache
def certification_lexicon() -> _Lexicon:
    certs = {cert for family in FAMILY_LIST for cert in family.certifications}
    return _Lexicon({cert: SKILL_ALIASES.get(cert, ()) for cert in sorted(certs)})


@functools.cache
def degree_lexicon() -> _Lexicon:
    return _Lexicon({level: tuple(forms) for level, forms in DEGREE_FORMS.items()}, canonical_is_form=False)


def find_skills(text: str) -> list[str]:
    """Canonical names of the known skills a text mentions (by name or alias), in order of first mention."""
    seen: dict[str, None] = {}
    for _, _, skill in skill_lexicon().finditer(text):
        seen.setdefault(skill, None)
    return list(seen)


def mentions(term: str, text: str) -> bool:
    """Whether ``text`` names ``term``: any alias of a known skill/certification, else a normalized substring."""
    for lexicon in (skill_lexicon(), certification_lexicon()):
        canonical = lexicon.canonical.get(term.lower())
        if canonical is not None:
            return canonical in lexicon.names_in(text)
    needle = normalize(term)
    return bool(needle) and needle in normalize(text)


def split_seniority(title: str) -> tuple[str, str]:
    """Split a title into a seniority prefix/suffix word and the base title: ``"Senior X"`` -> ``("Senior", "X")``."""
    match = re.match(
        r"^(Senior|Sr\.?|Junior|Jr\.?|Lead|Principal|Staff|Associate|Entry-Level|Trainee)\s+(.+)$",
        title.strip(),
    )
    if match:
        return match.group(1), re.sub(r"\s+(II|III)$", "", match.group(2))
    return "", re.sub(r"\s+(Intern|II|III)$|^Intern,\s*", "", title.strip())


def title_variants(title: str) -> set[str]:
    """Normalized ways to write a title: itself, abbreviated seniority and known alternates of its base."""
    prefix, base = split_seniority(title)
    prefixes = {prefix, SENIORITY_ABBREVIATIONS.get(prefix, prefix)} if prefix else {""}
    bases = {base, *TITLE_ALTERNATES.get(base, ())}
    variants = {normalize(title)}
    variants.update(normalize(f"{p} {b}") for p in prefixes for b in bases)
    return variants


def keeps_title(title: str, text: str, *, exact: bool = False) -> bool:
    """Whether ``text`` keeps the title: verbatim (``exact``) or as one of its :func:`title_variants`."""
    haystack = normalize(text)
    if exact:
        return normalize(title) in haystack
    return any(
        re.search(rf"(?<!\w){re.escape(variant)}(?!\w)", haystack) for variant in title_variants(title)
    )


def extract_years(text: str) -> int | None:
    """Minimum years of experience the text asks for (``"5+ years of experience"`` -> 5)."""
    for sentence in sentences(text):
        lowered = sentence.lower()
        if not any(cue in lowered for cue in _EXPERIENCE_CUES):
            continue
        match = _YEARS.search(sentence)
        if match:
            number = match.group(1).lower()
            return _NUMBER_WORDS.get(number) or int(number)
    return None


def _first(lexicon: _Lexicon, text: str) -> str | None:
    hits = lexicon.finditer(text)
    return hits[0][2] if hits else None


def extract_languages(text: str) -> str | None:
    """Languages required by sentences about language skills, sorted and comma-joined."""
    found = set()
    for sentence in sentences(text):
        lowered = sentence.lower()
        if any(cue in lowered for cue in LANGUAGE_CUES):
            found.update(lang for lang in LANGUAGES if re.search(rf"\b{lang}\b", sentence))
    return ", ".join(sorted(found)) or None


_PLACES = "|".join(re.escape(loc) for loc in LOCATIONS)
# Explicit statements of where the job is beat a city named elsewhere (the company's headquarters, say).
_LOCATION_STATEMENTS = (
    re.compile(rf"\b(?:location|based in|work from our|office in)\W{{0,3}}\s*({_PLACES})\b", re.IGNORECASE),
    re.compile(r"\b(fully remote|Remote)\b"),
    re.compile(rf"\b({_PLACES})\b"),
)


def extract_location(text: str) -> str | None:
    """Where the job is: a stated location, else ``Remote`` if said so, else the first known city named."""
    for pattern in _LOCATION_STATEMENTS:
        match = pattern.search(text)
        if match:
            place = match.group(1)
            return "Remote" if place.lower() in ("remote", "fully remote") else place
    return None


def extract_constraints(text: str) -> dict[str, object]:
    """The hard constraints a text states, one canonical value (or ``None``) per field of :data:`CONSTRAINT_FIELDS`."""
    return dict(_constraints(text))


@functools.lru_cache(maxsize=8192)
def _constraints(text: str) -> tuple[tuple[str, object], ...]:
    # Validators ask about the same source JD once per sample: cache by text.
    return (
        ("years", extract_years(text)),
        ("degree", _first(degree_lexicon(), text)),
        ("certification", _first(certification_lexicon(), text)),
        ("language", extract_languages(text)),
        ("location", extract_location(text)),
    )


def seniority_of(title: str, years: int | None = None) -> str:
    """Seniority level from title words, else from the years asked for, else ``"unspecified"``."""
    lowered = f" {normalize(title)} "
    if normalize(title).startswith("associate "):
        return "junior"
    for level in ("intern", "junior", "senior", "lead", "manager"):
        if any(re.search(rf"(?<!\w){re.escape(word)}\.?(?!\w)", lowered) for word in SENIORITY_WORDS[level]):
            return level
    # "Manager" alone is often a role name (product manager), not a rank: trust it only with many years asked.
    if " manager " in lowered and (years is None or years >= 6):
        return "manager"
    if years is None:
        return "unspecified"
    return "junior" if years < 2 else "mid" if years < 5 else "senior"


@functools.cache
def _cues_by_first_word() -> dict[str, list[tuple[str, int]]]:
    table: dict[str, list[tuple[str, int]]] = {}
    for level, group in OWNERSHIP_CUES.items():
        for cue in group:
            table.setdefault(cue.split()[0], []).append((cue, level))
    for cues in table.values():
        cues.sort(key=lambda item: len(item[0]), reverse=True)  # "take end-to-end" before "take"
    return table


def ownership_of(sentence: str) -> int | None:
    """Ownership level (0-4) implied by a responsibility's leading verb, or ``None`` if it starts with none."""
    lowered = sentence.lstrip().lower()
    match = re.match(r"[a-z]+", lowered)
    if match is None:
        return None
    word = match.group(0)
    # Cues are stems: "manage" also matches "manages"/"managing".
    stems = (word, word.rstrip("s"), word[:-2]) + (
        (word[:-3], word[:-3] + "e") if word.endswith("ing") else ()
    )
    for stem in stems:
        for cue, level in _cues_by_first_word().get(stem, ()):
            if lowered.startswith(cue) or " " not in cue:
                return level
    return None


def ownership_level(text: str) -> float | None:
    """Mean ownership level over the responsibilities of a text (sentences that start with an ownership verb)."""
    levels = [level for sentence in sentences(text) if (level := ownership_of(sentence)) is not None]
    return statistics.fmean(levels) if levels else None
