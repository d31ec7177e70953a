"""Load and validate the training JSONL files written by :mod:`train.synth` (or by hand).

Every record is checked before any training starts: a line that is not UTF-8 or not JSON, a record
that is not an object, a missing field, a field that is not a string, is blank or holds a lone
surrogate stops the run with an error naming the file, the line and the field (and, for a byte that
is not UTF-8, its offset). Nothing is dropped silently: a record is either used or reported.

Files and the fields each round reads:

============================  ======================================================  ==========
file                          fields                                                  used by
============================  ======================================================  ==========
``pairs.jsonl``               ``query``, ``positive``, ``stage`` (paraphrase | card)   R1, head
``ranking.jsonl``             ``query``, ``positive``, ``negative_role``,              R1
                              ``negative_constraint``
``jdcv.jsonl``                ``query`` (JD), ``positive`` (CV), ``negative`` (CV)     R2
``role_negatives.jsonl``      ``query``, ``negative``                                  head
============================  ======================================================  ==========

Records may carry ``split`` (``train`` or ``validation``, default ``train``) and any other field.

Example:
    >>> rows = read_records("runs/synth/jdcv.jsonl", ["query", "positive", "negative"])  # doctest: +SKIP
    >>> rows[0]["positive"][:20]  # doctest: +SKIP
    'CHEN SHARMA\\nTrainee '
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from common.backbones import BackboneNotInstalledError, ModelNotFoundError
from common.lines import parse_json_object
from cre.modeling_cre import LONE_SURROGATE
from train.synth.loaders import DataNotFoundError

SPLITS = ("train", "validation")
# Problems listed in one error before "... and N more": enough to fix a file in one go, short enough to read.
MAX_REPORTED_PROBLEMS = 10


class TrainingDataError(ValueError):
    """Training data that cannot be used; the message names the file, line and field of each problem."""


def read_records(
    path: str | os.PathLike,
    text_fields: Sequence[str],
    split: str | None = None,
    choices: dict[str, Sequence[str]] | None = None,
) -> list[dict]:
    """Read a JSONL file, check every record, and return those of ``split``.

    Args:
        path: The JSONL file (one JSON object per line; blank lines are allowed).
        text_fields: Fields every record must hold as a non-blank string.
        split: Keep only records of this split (``None`` keeps all); a record without ``split`` is
            ``train``.
        choices: Fields whose value must be one of a few strings, e.g. ``{"stage": ["paraphrase", "card"]}``.

    Returns:
        The records, in file order, each with ``_line`` (its line number) added.

    Raises:
        TrainingDataError: The file is missing or any record breaks the rules; all problems (up to
            :data:`MAX_REPORTED_PROBLEMS`) are listed as ``file:line: field 'name' ...``.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"{path}: training data file not found")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rules = {"split": SPLITS, **(choices or {})}
    records, problems = [], []
    offset = 0  # of the line's first byte in the file
    with path.open("rb") as stream:  # bytes: a non-UTF-8 byte is reported with its line, not raised
        for number, raw in enumerate(stream, start=1):
            line, bad_bytes = _decode(raw, offset)
            offset += len(raw)
            if not line.strip():
                continue
            # Without its line end: a JSON error past it would point at column 1 of a line that is not there.
            record, problem = parse_json_object(line.rstrip("\r\n"))
            if problem is None:
                problem = _check(record, text_fields, rules)
            if bad_bytes is not None:  # the root cause of any other problem on the line
                field = _surrogate_field(record)
                problem = f"{f'field {field!r}' if field else 'line'} is not valid UTF-8: {bad_bytes}"
            if problem is not None:
                problems.append(f"{path}:{number}: {problem}")
                continue
            record["_line"] = number
            records.append(record)
    if problems:
        raise problems_error(f"{len(problems)} malformed record(s); fix them and rerun", problems)
    if not records:
        raise TrainingDataError(f"{path}: holds no records")
    if split is None:
        return records
    return [record for record in records if record.get("split", "train") == split]


def problems_error(headline: str, problems: Sequence[str]) -> TrainingDataError:
    """One error listing ``problems`` (each ``file:line: ...``) under ``headline``, the first
    :data:`MAX_REPORTED_PROBLEMS` of them in full.

    Example:
        >>> print(problems_error("2 bad record(s)", ["a.jsonl:1: x", "a.jsonl:2: y"]))
        2 bad record(s):
          a.jsonl:1: x
          a.jsonl:2: y
    """
    shown = problems[:MAX_REPORTED_PROBLEMS]
    more = len(problems) - len(shown)
    return TrainingDataError(
        f"{headline}:\n  " + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else "")
    )


def _decode(raw: bytes, offset: int) -> tuple[str, str | None]:
    """A line's text, and where it first breaks UTF-8 (``None`` if it does not).

    Bad bytes become lone surrogates (``surrogateescape``), so the line still parses and the field
    that holds them can be named.

    Example:
        >>> _decode(b'{"query": "caf\\xe9"}\\n', offset=100)[1]
        'byte 0xe9 at column 15 (file offset 114)'
    """
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as error:
        where = (
            f"byte 0x{raw[error.start]:02x} at column {error.start + 1} (file offset {offset + error.start})"
        )
        return raw.decode("utf-8", errors="surrogateescape"), where


def _check(record: dict, text_fields: Sequence[str], rules: dict[str, Sequence[str]]) -> str | None:
    """The first problem of one record, or ``None``."""
    for field in text_fields:
        if field not in record:
            return f"missing field {field!r}"
        value = record[field]
        if not isinstance(value, str):
            return f"field {field!r} must be a string, got {type(value).__name__}"
        if not value.strip():
            return f"field {field!r} is empty"
    field = _surrogate_field(record)
    if field is not None:  # written as a JSON escape such as "\\udce9": no tokenizer can read it
        return f"field {field!r} holds a lone surrogate escape (\\ud800-\\udfff), which is not text"
    for field, allowed in rules.items():
        if field in record and record[field] not in allowed:
            return f"field {field!r} is {record[field]!r}, expected one of {list(allowed)}"
    return None


def _surrogate_field(record: dict | None) -> str | None:
    """The first field whose string value holds a lone surrogate (``None`` if none does)."""
    for field, value in (record or {}).items():
        if isinstance(value, str) and LONE_SURROGATE.search(value):
            return field
    return None


def require_records(records: list[dict], what: str, minimum: int = 1) -> list[dict]:
    """Fail before training when a round would have too little data (e.g. an empty split).

    Example:
        >>> require_records([], "R2 triplets (jdcv.jsonl, split train)")
        Traceback (most recent call last):
        ...
        train.data.TrainingDataError: R2 triplets (jdcv.jsonl, split train): 0 records, need at least 1
    """
    if len(records) < minimum:
        raise TrainingDataError(f"{what}: {len(records)} records, need at least {minimum}")
    return records


def report_data_errors(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a command's ``main``: malformed or missing data, or a base model that is not there, ends it
    with the message and exit status 2, not a traceback."""

    @functools.wraps(main)
    def run(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except (TrainingDataError, DataNotFoundError, ModelNotFoundError, BackboneNotInstalledError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    return run
