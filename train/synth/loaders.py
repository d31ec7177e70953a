"""Load JDs: the embedded seeds, user files (JSONL or CSV), and the development data in ``../shared/data``.

User files hold one JD per JSONL line or CSV row with the fields ``id``, ``title`` and ``text`` (required,
non-empty strings; ids unique) and optional ``family``, ``seniority`` and ``source``. A malformed row is
reported with its file and line and skipped, never silently dropped.

The development-data loaders follow the data README: O*NET occupations of the ``train`` split only (``dev``
for tuning; ``test`` is refused), and ESCO descriptions and alternative labels (never the ISCO group, an
evaluation label).

Example:
    >>> from train.synth.loaders import load_seed_jds
    >>> jds = load_seed_jds()
    >>> len(jds) >= 300
    True
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import re
from collections import defaultdict
from pathlib import Path

from common.lines import json_lines
from train.synth.schema import JobDescription
from train.synth.vocab import STACKS

logger = logging.getLogger(__name__)

SEED_JDS_PATH = Path(__file__).parent / "data" / "seed_jds.jsonl"
# Training-only O*NET (train split) and ESCO texts shipped with the project (scripts/derive_training_data.py)
DERIVED_DATA_DIR = Path(__file__).parent / "data" / "derived"
REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIRED_FIELDS = ("id", "title", "text")
OPTIONAL_FIELDS = ("family", "seniority", "source")
ONET_MAX_TASKS = 10
ONET_MAX_TECHNOLOGIES = 12
VARIANT_TASKS = 4
# A stack's spellings as whole words: "Java" is not "JavaScript", ".NET" not "ASP.NET"'s suffix alone.
STACK_PATTERNS = {
    name: re.compile(
        r"(?<![\w.#+])(?:"
        + "|".join(re.escape(a) for a in sorted(spellings, key=len, reverse=True))
        + r")(?![\w#+])"
    )
    for name, (spellings, _) in STACKS.items()
}


class DataNotFoundError(FileNotFoundError):
    """The development data folder (or one of its files) is missing."""


def load_seed_jds(
    path: str | os.PathLike | None = None, *, issues: list[str] | None = None
) -> list[JobDescription]:
    """Load JDs from a JSONL or CSV file, or the embedded seed JDs when ``path`` is ``None``.

    Args:
        path: A ``.jsonl``/``.json`` (one object per line) or ``.csv`` file; ``None`` for the embedded seeds.
        issues: If given, one ``"file:line: problem"`` message is appended per skipped row (they are also logged).

    Returns:
        The valid JDs, in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file holds no valid JD at all.
    """
    path = Path(path) if path is not None else SEED_JDS_PATH
    if not path.is_file():
        raise FileNotFoundError(f"JD file not found: {path}")
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    jds, seen = [], set()
    for line, row, problem in rows:
        problem = problem or _row_problem(row, seen)
        if problem:
            _report(issues, f"{path}:{line}: {problem}; row skipped")
            continue
        seen.add(row["id"])
        extra = {key: row[key] for key in OPTIONAL_FIELDS if row.get(key)}
        meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
        jds.append(
            JobDescription(
                id=row["id"],
                title=row["title"].strip(),
                text=row["text"].strip(),
                meta=meta,
                **{"source": path.name, **extra},
            )
        )
    if not jds:
        raise ValueError(f"{path}: no valid JD rows (each needs non-empty {', '.join(REQUIRED_FIELDS)})")
    return jds


def _report(issues: list[str] | None, message: str) -> None:
    logger.warning(message)
    if issues is not None:
        issues.append(message)


def _utf8_text(path: Path) -> str:
    """The file's text; a byte that is not UTF-8 stops with file, line and column instead of a raw
    ``UnicodeDecodeError`` (which gives only a file offset)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise ValueError(
            f"{path}:{line}: not valid UTF-8: byte 0x{raw[error.start]:02x} at column {column} "
            "(save the file as UTF-8)"
        ) from None


def _jsonl_rows(path: Path):
    for row in json_lines(_utf8_text(path)):
        yield row.number, row.value, row.problem


def _csv_rows(path: Path):
    with io.StringIO(_utf8_text(path), newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED_FIELDS if name not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: CSV header lacks column(s) {', '.join(missing)}")
        for row in reader:
            # reader.line_num is the physical line where this row ended (quoted fields may span lines).
            yield reader.line_num, row, "too many fields" if None in row else None


def _row_problem(row: dict, seen_ids: set[str]) -> str | None:
    for name in REQUIRED_FIELDS:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"field {name!r} is missing or empty"
    if row["id"] in seen_ids:
        return f"duplicate id {row['id']!r}"
    return None


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The development data folder: ``path``, else ``$CRE_DATA_DIR``, else ``../shared/data`` from the repo root."""
    folder = Path(path or os.environ.get("CRE_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")
    if not folder.is_dir():
        raise DataNotFoundError(
            f"development data folder not found: {folder} (pass its path or set CRE_DATA_DIR; see ../shared/data/README.md)"
        )
    return folder


def training_data_dir(path: str | os.PathLike | None = None) -> Path:
    """Where training reads O*NET ``train``-split and ESCO texts: ``path``, else ``$CRE_DATA_DIR``, else
    the derived copy shipped with the project (:data:`DERIVED_DATA_DIR`)."""
    return data_dir(path) if path or os.environ.get("CRE_DATA_DIR") else DERIVED_DATA_DIR


def open_data_file(path: Path, what: str) -> io.TextIOBase:
    """``path``, or its gzipped copy ``path.gz`` (the shipped derived data), opened as UTF-8 text."""
    if path.is_file():
        return path.open(encoding="utf-8", newline="")
    packed = path.with_name(path.name + ".gz")
    if packed.is_file():
        return gzip.open(packed, "rt", encoding="utf-8", newline="")
    raise DataNotFoundError(f"missing {what} file: {path}")


def read_tsv(path: Path) -> list[dict]:
    with open_data_file(path, "O*NET") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def load_onet_jds(
    folder: str | os.PathLike | None = None, split: str = "train", *, stack_variants: bool = True
) -> list[JobDescription]:
    """O*NET occupations of one split as JDs: title, description, core tasks and technology skills.

    With ``stack_variants``, an occupation whose alternate titles name two or more technology stacks
    (:data:`~train.synth.vocab.STACKS`: ".NET Developer", "Python Developer", ...) also yields one JD per
    stack, id ``onet:<code>~<stack>``: that title, the occupation's description, a window of its core
    tasks, and the stack's skills instead of the occupation's technologies (which name every sibling
    stack). Synthesis turns siblings' fitting CVs into each other's hard negatives
    (:func:`train.synth.pipeline.sibling_triplets`).

    Args:
        folder: A development data folder (default: :func:`training_data_dir` for ``train``, :func:`data_dir` for ``dev``).
        split: ``"train"`` (training) or ``"dev"`` (tuning). ``"test"`` is reserved and refused.
        stack_variants: Add the per-stack JDs.

    Returns:
        One JD per occupation, id ``onet:<O*NET-SOC code>``, then the stack variants.
    """
    if split not in ("train", "dev"):
        raise ValueError(f"O*NET split {split!r} may not be used for synthesis (allowed: 'train', 'dev')")
    onet = (training_data_dir(folder) if split == "train" else data_dir(folder)) / "onet"
    codes = {row["onet_soc_code"] for row in read_tsv(onet / "splits.tsv") if row["split"] == split}
    tasks, technologies = defaultdict(list), defaultdict(list)
    for row in read_tsv(onet / "task_statements.tsv"):
        if row["O*NET-SOC Code"] in codes and row["Task Type"] == "Core":
            tasks[row["O*NET-SOC Code"]].append(row["Task"])
    for row in read_tsv(onet / "technology_skills.tsv"):
        if row["O*NET-SOC Code"] in codes:
            # Hot technologies first: they are the ones JDs name.
            technologies[row["O*NET-SOC Code"]].append((row["Hot Technology"] != "Y", row["Example"]))
    stacks = _stacks_in_titles(onet / "alternate_titles.tsv", codes) if stack_variants else {}
    jds, variants = [], []
    for row in read_tsv(onet / "occupation_data.tsv"):
        code = row["O*NET-SOC Code"]
        if code not in codes:
            continue
        names = list(dict.fromkeys(name for _, name in sorted(technologies[code])))
        jds.append(_onet_jd(f"onet:{code}", row["Title"], row["Description"], tasks[code], names))
        named = stacks.get(code, {})
        for number, (stack, title) in enumerate(named.items() if len(named) > 1 else ()):
            # A different window of the core tasks per sibling: postings for one occupation rarely list
            # the same duties, and identical task lists would make siblings near duplicates.
            start = number * VARIANT_TASKS % max(1, len(tasks[code]))
            variants.append(
                _onet_jd(
                    f"onet:{code}~{_slug(stack)}",
                    title,
                    row["Description"],
                    (tasks[code][start:] + tasks[code][:start])[:VARIANT_TASKS],
                    list(STACKS[stack][1]),
                )
            )
    return jds + variants


def _onet_jd(jd_id: str, title: str, description: str, tasks: list[str], skills: list[str]) -> JobDescription:
    parts = [title, description]
    if tasks:
        parts.append("Core tasks:\n" + "\n".join(f"- {task}" for task in tasks[:ONET_MAX_TASKS]))
    if skills:
        parts.append("Technology skills: " + ", ".join(skills[:ONET_MAX_TECHNOLOGIES]) + ".")
    return JobDescription(id=jd_id, title=title, text="\n\n".join(parts), source="onet")


def _stacks_in_titles(path: Path, codes: set[str]) -> dict[str, dict[str, str]]:
    """Per occupation, each stack its alternate titles name -> one such title (no parenthesis): a
    "Developer" title if there is one (an "Architect" reads as another family), else the shortest."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for row in read_tsv(path):
        if row["O*NET-SOC Code"] not in codes:
            continue
        title = re.sub(r"\s*\(.*?\)", "", row["Alternate Title"]).strip()
        stack = next((name for name, pattern in STACK_PATTERNS.items() if pattern.search(title)), None)
        named = found[row["O*NET-SOC Code"]]
        if stack and (stack not in named or _title_rank(title) < _title_rank(named[stack])):
            named[stack] = title
    return found


def _title_rank(title: str) -> tuple[bool, int]:
    return "Developer" not in title, len(title)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9+#]+", "-", text.lower()).strip("-")


def load_esco_jds(folder: str | os.PathLike | None = None) -> list[JobDescription]:
    """ESCO occupations with a description as JDs: preferred label, description and alternative labels."""
    jds = []
    for row in read_esco(folder):
        description = (row.get("description") or "").strip()
        if not description:
            continue
        parts = [row["preferredLabel"], description]
        if row["alternates"]:
            parts.append("Also known as: " + ", ".join(row["alternates"][:5]) + ".")
        jds.append(
            JobDescription(id=row["id"], title=row["preferredLabel"], text="\n\n".join(parts), source="esco")
        )
    return jds


def read_esco(folder: str | os.PathLike | None = None) -> list[dict]:
    """ESCO's occupation rows, each with its JD ``id`` (``esco:<URI tail>``) and ``alternates`` (the
    alternative labels as a list) added."""
    with open_data_file(training_data_dir(folder) / "esco" / "occupations_en.csv", "ESCO") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["id"] = "esco:" + row["conceptUri"].rstrip("/").rsplit("/", 1)[-1]
        row["alternates"] = [
            label.strip() for label in (row.get("altLabels") or "").splitlines() if label.strip()
        ]
    return rows
