"""Read the texts to search: JSONL, CSV, one text per line, or a folder of PDF / DOCX / TXT résumés.

Every reader returns :class:`Document` objects (id, text, source, metadata) and records what it could
not read in a :class:`RunReport`, which the commands print at the end and write as JSON beside their
output.

* Structured inputs (JSONL, CSV, lines) are the user's own exports: a bad row stops the run with an
  :class:`InputError` that names the file, the line or row and the field, because guessing would
  silently search the wrong texts.
* A folder of résumés is a pile of third-party files: an unreadable or corrupt file is skipped with a
  warning that names it and counted in the report, so one broken PDF never stops a run of thousands.

Text that is not valid UTF-8 (TXT files, CSV) is decoded as Windows-1252, the encoding most legacy
exports use; its five undefined bytes become U+FFFD. Each such file and the number of replaced
characters are counted in the report.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "cvs.jsonl").write_text('{"id": "a", "text": "Nurse"}\\n{"id": "b", "text": "Chef"}\\n')
    >>> [(doc.id, doc.text) for doc in read_documents(folder / "cvs.jsonl", id_field="id")]
    [('a', 'Nurse'), ('b', 'Chef')]
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.lines import read_json_lines, split_lines

logger = logging.getLogger("cvsearch")

FORMATS = ("auto", "jsonl", "csv", "lines", "folder")
FOLDER_SUFFIXES = (".pdf", ".docx", ".txt")
FALLBACK_ENCODING = "cp1252"


class InputError(ValueError):
    """A structured input the run cannot use; the message names the file, line or row, and field."""


@dataclass
class Document:
    """One text to encode.

    Attributes:
        id: The user's id (JSONL/CSV id field, the line number, or the file's path inside the folder).
        text: The text.
        source: Where it came from (``file`` or ``file:line``).
        metadata: Extra fields the user asked to keep (stored beside each vector).
    """

    id: str
    text: str
    source: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class RunReport:
    """What a run read, skipped, re-decoded and encoded; printed at the end and written as JSON.

    Attributes:
        documents: Documents read.
        skipped: ``{"file": ..., "reason": ...}`` for every file that could not be read.
        decoded_as_cp1252: Files (or inputs) that were not valid UTF-8.
        replaced_characters: U+FFFD characters those decodings produced.
        extra: Counts the later stages add (vectors, shards encoded and reused, ...).
    """

    documents: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    decoded_as_cp1252: list[str] = field(default_factory=list)
    replaced_characters: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def skip(self, path: str | os.PathLike, reason: str) -> None:
        """Count ``path`` as skipped and warn with its name and the reason."""
        logger.warning("skipped %s: %s", path, reason)
        self.skipped.append({"file": str(path), "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        data = asdict(self)
        data.update(data.pop("extra"))
        return data

    def summary(self) -> str:
        """One line per fact, for the end of a command's output."""
        lines = [f"documents read: {self.documents}", f"files skipped: {len(self.skipped)}"]
        lines += [f"  {item['file']}: {item['reason']}" for item in self.skipped]
        if self.decoded_as_cp1252:
            lines.append(
                f"not UTF-8, decoded as {FALLBACK_ENCODING}: {len(self.decoded_as_cp1252)} input(s), "
                f"{self.replaced_characters} undecodable byte(s) replaced"
            )
        lines += [f"{key.replace('_', ' ')}: {value}" for key, value in self.extra.items()]
        return "\n".join(lines)

    def write(self, path: str | os.PathLike) -> None:
        """Write :meth:`as_dict` as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")


def decode_text(data: bytes, source: str, report: RunReport) -> str:
    """UTF-8 (a byte-order mark is dropped), else Windows-1252 with undefined bytes replaced (counted).

    Example:
        >>> report = RunReport()
        >>> decode_text("café".encode("cp1252"), "cv.txt", report), report.decoded_as_cp1252
        ('café', ['cv.txt'])
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode(FALLBACK_ENCODING, errors="replace")
        report.decoded_as_cp1252.append(source)
        report.replaced_characters += text.count("\ufffd")
        return text


def read_documents(
    path: str | os.PathLike,
    format: str = "auto",
    text_field: str = "text",
    id_field: str | None = None,
    meta_fields: Sequence[str] = (),
    report: RunReport | None = None,
) -> list[Document]:
    """Read the documents of a file or folder.

    Args:
        path: A ``.jsonl`` file, a ``.csv`` file, any other file (one text per line), or a folder of
            ``.pdf`` / ``.docx`` / ``.txt`` files (searched recursively, in name order).
        format: ``auto`` (by the path, as above), ``jsonl``, ``csv``, ``lines`` or ``folder``.
        text_field: JSONL field / CSV column holding the text.
        id_field: JSONL field / CSV column holding the id (default: the line or row number).
        meta_fields: JSONL fields / CSV columns to keep as metadata.
        report: Where skipped files and re-decoded inputs are counted (a new one if ``None``).

    Returns:
        The documents, in file order.

    Raises:
        InputError: The path does not exist, or a JSONL/CSV/lines input has a bad row (invalid
            JSON, a missing or empty field, a duplicate id); the message names file, line and field.
    """
    report = report if report is not None else RunReport()
    path = Path(path)
    if format not in FORMATS:
        raise InputError(f"unknown input format {format!r}; choose from {FORMATS}")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if format == "auto":
        format = "folder" if path.is_dir() else {".jsonl": "jsonl", ".csv": "csv"}.get(path.suffix, "lines")
    if format == "folder":
        documents = _read_folder(path, report)
    else:
        if path.is_dir():
            raise InputError(f"{path} is a folder; use --format folder (or auto)")
        text = decode_text(path.read_bytes(), str(path), report)
        records = {"jsonl": _jsonl_records, "csv": _csv_records, "lines": _line_records}[format](
            text, path, text_field, id_field
        )
        documents = _documents(records, path, text_field, id_field, meta_fields)
    report.documents += len(documents)
    return documents


def _jsonl_records(text: str, path: Path, text_field: str, id_field: str | None):
    for line_no, record in read_json_lines(path, text, error=InputError):
        yield f"line {line_no}", str(line_no), line_no, record


def _csv_records(text: str, path: Path, text_field: str, id_field: str | None):
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    for needed in [text_field, id_field]:
        if needed is not None and needed not in columns:
            raise InputError(f"{path}: no column {needed!r}; the header has {columns}")
    for row_no, row in enumerate(reader, start=1):
        where = f"row {row_no} (line {reader.line_num})"
        if None in row:
            raise InputError(f"{path}: {where}: more fields than the {len(columns)} columns of the header")
        yield where, str(row_no), reader.line_num, row


def _line_records(text: str, path: Path, text_field: str, id_field: str | None):
    for line_no, line in enumerate(split_lines(text), start=1):
        if line.strip():  # blank lines separate texts; they are not texts
            yield f"line {line_no}", str(line_no), line_no, {text_field: line}


def _documents(records, path: Path, text_field: str, id_field: str | None, meta_fields: Sequence[str]):
    documents: list[Document] = []
    first_seen: dict[str, str] = {}
    for where, number, line_no, record in records:
        text = _field(record, text_field, path, where)
        doc_id = number if id_field is None else _field(record, id_field, path, where)
        if doc_id in first_seen:
            raise InputError(f"{path}: {where}: id {doc_id!r} repeats the id of {first_seen[doc_id]}")
        first_seen[doc_id] = where
        metadata = {name: _field(record, name, path, where, allow_empty=True) for name in meta_fields}
        documents.append(Document(doc_id, text, f"{path.name}:{line_no}", metadata))
    return documents


def _field(record: dict, name: str, path: Path, where: str, allow_empty: bool = False) -> str:
    if name not in record or record[name] is None:
        raise InputError(f"{path}: {where}: field {name!r} is missing")
    value = record[name]
    if isinstance(value, (dict, list, bool)):
        raise InputError(f"{path}: {where}: field {name!r} is a {type(value).__name__}, not text")
    value = str(value)
    if not allow_empty and not value.strip():
        raise InputError(f"{path}: {where}: field {name!r} is empty")
    return value


def _read_folder(folder: Path, report: RunReport) -> list[Document]:
    documents = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if path.suffix.lower() not in FOLDER_SUFFIXES:
            report.skip(path, f"not a résumé file type ({', '.join(FOLDER_SUFFIXES)})")
            continue
        try:
            text = _extract(path, report)
        except Exception as err:  # noqa: BLE001 - any parser failure skips this one file, never the run
            report.skip(path, f"unreadable {path.suffix.lower()[1:].upper()} ({type(err).__name__}: {err})")
            continue
        if not text.strip():
            report.skip(path, "no text (a scanned image or an empty file?)")
            continue
        documents.append(Document(name, text, name))
    return documents


def _extract(path: Path, report: RunReport) -> str:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from pypdf import PdfReader

        return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    if suffix == ".docx":
        import docx

        document = docx.Document(str(path))
        cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
        return "\n".join([paragraph.text for paragraph in document.paragraphs] + cells)
    return decode_text(path.read_bytes(), str(path), report)
