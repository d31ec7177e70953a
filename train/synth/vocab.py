"""The project's own recruitment vocabularies.

Written for CRE: job families with their titles, skills, duties, degrees, certifications and outcome
metrics; the seniority ladder; the ownership ladder (verbs and scope phrases from "observe" to "lead");
skill aliases, title alternates and phrase synonyms; constraint values (degrees, languages, locations).
The seed-JD script (``train/synth/data/make_seed_jds.py``) writes JDs from them, and the ``rules``
generator rewrites, summarises and perturbs JDs and writes CVs with them.

The words are data: ``data/families.jsonl`` (one :class:`Family` a line) and ``data/vocab.json`` (one
table a line). This module reads them once, checks every table against its type below (lists become
tuples; the ownership tables' keys, levels 0..4, become integers) and fails with the file and line of
the first value that does not fit (:class:`VocabularyError`).

Example:
    >>> from train.synth.vocab import FAMILIES, OWNERSHIP_LEVELS
    >>> len(FAMILIES) >= 25, OWNERSHIP_LEVELS[3]
    (True, 'own')
"""

from __future__ import annotations

import json
import sys
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from common.lines import read_json_lines, split_lines

DATA_DIR = Path(__file__).parent / "data"
FAMILIES_FILE = DATA_DIR / "families.jsonl"
TABLES_FILE = DATA_DIR / "vocab.json"


class VocabularyError(ValueError):
    """A vocabulary file that does not parse or whose value does not have its table's type."""


@dataclass(frozen=True)
class Family:
    """A job family: what its people are called, know, do and are measured on."""

    name: str
    titles: tuple[str, ...]
    manager_title: str
    skills: tuple[str, ...]
    duties: tuple[str, ...]
    degree_fields: tuple[str, ...]
    certifications: tuple[str, ...]
    metrics: tuple[str, ...]
    industries: tuple[str, ...]
    adjacent: tuple[str, ...]
    area: str = "product area"
    min_degree: str | None = "bachelor"
    extras: tuple[str, ...] = field(default_factory=tuple)


def conform(value: Any, hint: Any, where: str) -> Any:
    """``value`` read from JSON, checked against the type ``hint`` and converted to it.

    Lists become tuples (``tuple[X, ...]`` or fixed ``tuple[X, Y]``); ``dict[int, ...]`` keys are read
    from their JSON strings.

    Raises:
        VocabularyError: ``where`` and what was expected.

    Example:
        >>> conform({"1": ["a", "b"]}, dict[int, tuple[str, ...]], "demo")
        {1: ('a', 'b')}
        >>> conform([1], tuple[str, ...], "demo:3: NAMES")
        Traceback (most recent call last):
        ...
        train.synth.vocab.VocabularyError: demo:3: NAMES[0]: expected str, got 1
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return conform(value, next(arg for arg in args if arg is not type(None)), where)
    if origin is tuple:
        if not isinstance(value, list):
            raise VocabularyError(f"{where}: expected a list, got {value!r}")
        kinds = [args[0]] * len(value) if args[1:] == (...,) else list(args)
        if len(kinds) != len(value):
            raise VocabularyError(f"{where}: expected {len(kinds)} items, got {len(value)}")
        return tuple(
            conform(item, kind, f"{where}[{i}]")
            for i, (item, kind) in enumerate(zip(value, kinds, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise VocabularyError(f"{where}: expected an object, got {value!r}")
        converted = {}
        for key, item in value.items():
            if args[0] is int and not key.isdigit():
                raise VocabularyError(f"{where}: key {key!r} is not a whole number")
            converted[int(key) if args[0] is int else key] = conform(item, args[1], f"{where}[{key!r}]")
        return converted
    if not isinstance(value, hint) or isinstance(value, bool):
        raise VocabularyError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def load_families(path: Path = FAMILIES_FILE) -> list[Family]:
    """The job families of ``path``, one JSON object a line, in file order.

    Raises:
        VocabularyError: A line that is not JSON, lacks a field, has an unknown one or a value of the
            wrong type; or a family name used twice.
    """
    hints = typing.get_type_hints(Family)
    families: list[Family] = []
    for number, row in read_json_lines(path, error=VocabularyError):
        where = f"{path}:{number}"
        required = {spec.name for spec in fields(Family) if spec.default is spec.default_factory is MISSING}
        if missing := sorted(required - set(row)):
            raise VocabularyError(f"{where}: missing fields {missing}")
        if unknown := sorted(set(row) - set(hints)):
            raise VocabularyError(f"{where}: unknown fields {unknown}")
        family = Family(
            **{name: conform(value, hints[name], f"{where}: {name}") for name, value in row.items()}
        )
        if any(known.name == family.name for known in families):
            raise VocabularyError(f"{where}: family {family.name!r} is defined twice")
        families.append(family)
    return families


def load_tables(path: Path, hints: dict[str, Any]) -> dict[str, Any]:
    """The tables of ``path`` (a JSON object, one table a line), each checked against its type hint.

    Args:
        path: The tables file.
        hints: Table name -> type.

    Raises:
        VocabularyError: Not JSON, a table missing or unknown, or a value of the wrong type; the
            message names the file and the line of the table.
    """
    text = path.read_text(encoding="utf-8")
    try:
        tables = json.loads(text)
    except json.JSONDecodeError as error:
        raise VocabularyError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    if not isinstance(tables, dict):
        raise VocabularyError(f"{path}:1: expected an object of tables")
    if missing := sorted(set(hints) - set(tables)):
        raise VocabularyError(f"{path}: missing tables {missing}")
    lines = split_lines(text)

    def line_of(name: str) -> int:
        key = json.dumps(name) + ":"
        return next((n for n, line in enumerate(lines, start=1) if line.lstrip().startswith(key)), 1)

    if unknown := sorted(set(tables) - set(hints)):
        raise VocabularyError(f"{path}:{line_of(unknown[0])}: unknown tables {unknown}")
    return {name: conform(tables[name], hints[name], f"{path}:{line_of(name)}: {name}") for name in hints}


# The tables of data/vocab.json and their types (bound below, once the file is read and checked).
# Seniority ladder: title forms, typical years, and the ownership level a JD at this level implies.
SENIORITY_LEVELS: tuple[str, ...]
SENIORITY_YEARS: dict[str, int]
SENIORITY_OWNERSHIP: dict[str, int]
SENIORITY_PREFIXES: dict[str, tuple[str, ...]]
SENIORITY_WORDS: dict[str, tuple[str, ...]]
# Ownership ladder: level 0 (observe) .. 4 (lead). Verb phrases take a noun-phrase object.
OWNERSHIP_LEVELS: tuple[str, ...]
OWNERSHIP_VERBS: dict[int, tuple[str, ...]]
OWNERSHIP_PAST: dict[int, tuple[str, ...]]
OWNERSHIP_SCOPE: dict[int, tuple[str, ...]]
# Verbs found at the start of responsibilities in any JD (O*NET tasks included), by ownership level.
OWNERSHIP_CUES: dict[int, tuple[str, ...]]
PEOPLE_SCOPE_PHRASES: tuple[str, ...]
# Rewrites that keep meaning: skill aliases, degree abbreviations, phrase synonyms.
SKILL_ALIASES: dict[str, tuple[str, ...]]
TITLE_ALTERNATES: dict[str, tuple[str, ...]]
SENIORITY_ABBREVIATIONS: dict[str, str]
PHRASE_SYNONYMS: tuple[tuple[str, str], ...]
# Constraint vocabularies: canonical value -> surface forms (matched case-insensitively).
DEGREE_LEVELS: tuple[str, ...]
DEGREE_FORMS: dict[str, tuple[str, ...]]
DEGREE_NAMES: dict[str, str]
DEGREE_SHORT: dict[str, str]
LANGUAGES: tuple[str, ...]
LOCATIONS: tuple[str, ...]
LANGUAGE_CUES: tuple[str, ...]
# Building blocks for companies, people and schools in JDs and CVs (all invented).
COMPANY_PREFIXES: tuple[str, ...]
COMPANY_SUFFIXES: tuple[str, ...]
COMPANY_KINDS: tuple[str, ...]
FIRST_NAMES: tuple[str, ...]
LAST_NAMES: tuple[str, ...]
SCHOOL_FORMS: tuple[str, ...]
EDU_CITIES: tuple[str, ...]
MONTHS: tuple[str, ...]
# Technology stacks a job title can name ("Java Developer", "SAP Consultant"): the name as titles
# spell it, other spellings, and the skills a posting for that stack lists. Specialisations of one
# occupation differ in these, so a fitting CV of one stack is a hard negative for a sibling stack's JD.
STACKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]

FAMILY_LIST = load_families(FAMILIES_FILE)
FAMILIES = {family.name: family for family in FAMILY_LIST}
globals().update(load_tables(TABLES_FILE, typing.get_type_hints(sys.modules[__name__])))
