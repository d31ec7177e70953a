r"""The one reader of line-based files (text lines, JSON lines), with ``file:line`` errors.

Lines end at ``\n``, ``\r\n`` or ``\r``, as a text-mode file iterator reads them, never at the other
separators ``str.splitlines()`` also breaks at (U+2028, U+0085, ...): a JSON string or a CV line
may hold those, and splitting there would cut a record in two.

Example:
    >>> split_lines('ICU\u2028nurse\r\nchef\rbaker')
    ['ICU\u2028nurse', 'chef', 'baker']
    >>> [(row.number, row.value, row.problem) for row in json_lines('{"id": 1}\n\n[2]\n')]
    [(1, {'id': 1}, None), (3, None, 'expected a JSON object, got list')]
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LineFormatError(ValueError):
    """A line that cannot be read; the message starts with ``file:line``."""


@dataclass(frozen=True)
class JsonLine:
    """One non-blank line of a JSON Lines text.

    Attributes:
        number: The line number (from 1).
        value: The JSON object of the line, or ``None`` when it has a problem.
        problem: What is wrong with the line (``invalid JSON (...)``, ``expected a JSON object, got
            list``), or ``None``.
    """

    number: int
    value: dict[str, Any] | None
    problem: str | None = None


def split_lines(text: str) -> list[str]:
    r"""The lines of ``text`` without their ends, split at ``\n``, ``\r\n`` and ``\r`` only."""
    return [line.removesuffix("\n") for line in io.StringIO(text, newline=None)]


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file (see :func:`split_lines`)."""
    return split_lines(Path(path).read_text(encoding="utf-8"))


def parse_json_object(line: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(object, None)`` for a line holding one JSON object, else ``(None, problem)``.

    Example:
        >>> parse_json_object('{"id": "1", "text": ')
        (None, 'invalid JSON (Expecting value at column 21)')
    """
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"invalid JSON ({error.msg} at column {error.colno})"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, None


def json_lines(text: str) -> Iterator[JsonLine]:
    """Each non-blank line of a JSON Lines text, parsed, with its number and any problem.

    Blank lines are skipped (they still count for the numbers). Use this to report every problem or
    to skip bad lines; :func:`read_json_lines` stops at the first.
    """
    for number, line in enumerate(split_lines(text), start=1):
        if line.strip():
            yield JsonLine(number, *parse_json_object(line))


def read_json_lines(
    path: str | os.PathLike, text: str | None = None, error: type[Exception] = LineFormatError
) -> list[tuple[int, dict[str, Any]]]:
    r"""``(line number, object)`` of each non-blank line of a JSON Lines file, one JSON object a line.

    Args:
        path: The file; named in errors.
        text: Its text when the caller has already read (and decoded) it; default: read ``path`` as UTF-8.
        error: The exception class to raise (a caller's own, e.g. a data-format error of its layer).

    Raises:
        error: At the first line that is not a JSON object: ``file:line: invalid JSON (...)`` or
            ``file:line: expected a JSON object, got ...``.

    Example:
        >>> read_json_lines("rows.jsonl", text='{"id": 1}\n\n{"id": 2}\n')
        [(1, {'id': 1}), (3, {'id': 2})]
        >>> read_json_lines("rows.jsonl", text='{"id": 1}\n{"id": \n')
        Traceback (most recent call last):
        ...
        common.lines.LineFormatError: rows.jsonl:2: invalid JSON (Expecting value at column 8)
    """
    rows = []
    for row in json_lines(Path(path).read_text(encoding="utf-8") if text is None else text):
        if row.problem is not None:
            raise error(f"{path}:{row.number}: {row.problem}")
        rows.append((row.number, row.value))
    return rows
