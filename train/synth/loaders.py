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
import json
import logging
import os
from collections import defaultdict
from pathlib import Path

from train.synth.schema import JobDescription

logger = logging.getLogger(__name__)

SEED_JDS_PATH = Path(__file__).parent / "data" / "seed_jds.jsonl"
REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIRED_FIELDS = ("id", "title", "text")
OPTIONAL_FIELDS = ("family", "seniority", "source")
ONET_MAX_TASKS = 10
ONET_MAX_TECHNOLOGIES = 12


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


def _jsonl_rows(path: Path):
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield line_number, None, f"invalid JSON ({error.msg})"
                continue
            yield line_number, row, None if isinstance(row, dict) else "not a JSON object"


def _csv_rows(path: Path):
    with path.open(encoding="utf-8", newline="") as handle:
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


def _read_tsv(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataNotFoundError(f"missing O*NET file: {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def load_onet_jds(folder: str | os.PathLike | None = None, split: str = "train") -> list[JobDescription]:
    """O*NET occupations of one split as JDs: title, description, core tasks and technology skills.

    Args:
        folder: The development data folder (see :func:`data_dir`).
        split: ``"train"`` (training) or ``"dev"`` (tuning). ``"test"`` is reserved and refused.

    Returns:
        One JD per occupation, id ``onet:<O*NET-SOC code>``.
    """
    if split not in ("train", "dev"):
        raise ValueError(f"O*NET split {split!r} may not be used for synthesis (allowed: 'train', 'dev')")
    onet = data_dir(folder) / "onet"
    codes = {row["onet_soc_code"] for row in _read_tsv(onet / "splits.tsv") if row["split"] == split}
    tasks, technologies = defaultdict(list), defaultdict(list)
    for row in _read_tsv(onet / "task_statements.tsv"):
        if row["O*NET-SOC Code"] in codes and row["Task Type"] == "Core":
            tasks[row["O*NET-SOC Code"]].append(row["Task"])
    for row in _read_tsv(onet / "technology_skills.tsv"):
        if row["O*NET-SOC Code"] in codes:
            # Hot technologies first: they are the ones JDs name.
            technologies[row["O*NET-SOC Code"]].append((row["Hot Technology"] != "Y", row["Example"]))
    jds = []
    for row in _read_tsv(onet / "occupation_data.tsv"):
        code = row["O*NET-SOC Code"]
        if code not in codes:
            continue
        parts = [row["Title"], row["Description"]]
        if tasks[code]:
            parts.append("Core tasks:\n" + "\n".join(f"- {task}" for task in tasks[code][:ONET_MAX_TASKS]))
        names = list(dict.fromkeys(name for _, name in sorted(technologies[code])))[:ONET_MAX_TECHNOLOGIES]
        if names:
            parts.append("Technology skills: " + ", ".join(names) + ".")
        jds.append(
            JobDescription(id=f"onet:{code}", title=row["Title"], text="\n\n".join(parts), source="onet")
        )
    return jds


def load_esco_jds(folder: str | os.PathLike | None = None) -> list[JobDescription]:
    """ESCO occupations with a description as JDs: preferred label, description and alternative labels."""
    path = data_dir(folder) / "esco" / "occupations_en.csv"
    if not path.is_file():
        raise DataNotFoundError(f"missing ESCO file: {path}")
    jds = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            description = (row.get("description") or "").strip()
            if not description:
                continue
            alternates = [
                label.strip() for label in (row.get("altLabels") or "").splitlines() if label.strip()
            ]
            parts = [row["preferredLabel"], description]
            if alternates:
                parts.append("Also known as: " + ", ".join(alternates[:5]) + ".")
            uri_tail = row["conceptUri"].rstrip("/").rsplit("/", 1)[-1]
            jds.append(
                JobDescription(
                    id=f"esco:{uri_tail}", title=row["preferredLabel"], text="\n\n".join(parts), source="esco"
                )
            )
    return jds
