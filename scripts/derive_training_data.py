"""Write the training-only data the project ships, from the development data in ``../shared/data``.

The main job must run on a fresh machine without ``../shared``, so the texts it may train on ship inside
the project under ``train/synth/data/derived/`` (``$CRE_DATA_DIR`` or ``--data-dir`` still point the
loaders at a full copy). Only what the data README allows for training is written:

* O*NET: occupations of the ``train`` split only (titles, descriptions, core and supplemental tasks,
  technology skills, alternate and reported titles), never ``dev``/``test`` occupations and never
  ``related_occupations.tsv`` (an evaluation label);
* ESCO: each occupation's URI, preferred label, alternative labels and description, never its ISCO
  group (an evaluation label).

The files are gzipped with a fixed timestamp, so rerunning the script on the same data rewrites them
byte for byte (``tests/test_derived_data.py`` checks this against ``../shared/data`` when present).

Usage::

    python scripts/derive_training_data.py [--data-dir ../shared/data] [--out train/synth/data/derived]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from train.synth.loaders import DERIVED_DATA_DIR, DataNotFoundError, data_dir, read_esco, read_tsv  # noqa: E402

# file -> the columns training reads (the rest is left behind to keep the project small)
ONET_COLUMNS = {
    "occupation_data.tsv": ("O*NET-SOC Code", "Title", "Description"),
    "task_statements.tsv": ("O*NET-SOC Code", "Task", "Task Type"),
    "technology_skills.tsv": ("O*NET-SOC Code", "Example", "Hot Technology"),
    "alternate_titles.tsv": ("O*NET-SOC Code", "Alternate Title"),
    "reported_titles.tsv": ("O*NET-SOC Code", "Reported Job Title"),
}
ESCO_COLUMNS = ("conceptUri", "preferredLabel", "altLabels", "description")


def _write_gzip(path: Path, rows: Iterable[dict], columns: tuple[str, ...], delimiter: str) -> int:
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, delimiter=delimiter, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle:
        handle.write(text.getvalue().encode("utf-8"))
    return count


def derive(source: Path, out: Path) -> dict[str, int]:
    """Write the derived files from the development data folder ``source`` into ``out``.

    Returns:
        Rows written per file (relative path -> count).
    """
    counts = {}
    splits = read_tsv(source / "onet" / "splits.tsv")
    train = {row["onet_soc_code"] for row in splits if row["split"] == "train"}
    counts["onet/splits.tsv.gz"] = _write_gzip(
        out / "onet" / "splits.tsv.gz",
        (row for row in splits if row["onet_soc_code"] in train),
        ("onet_soc_code", "split"),
        "\t",
    )
    for name, columns in ONET_COLUMNS.items():
        rows = (row for row in read_tsv(source / "onet" / name) if row["O*NET-SOC Code"] in train)
        counts[f"onet/{name}.gz"] = _write_gzip(out / "onet" / f"{name}.gz", rows, columns, "\t")
    counts["esco/occupations_en.csv.gz"] = _write_gzip(
        out / "esco" / "occupations_en.csv.gz", read_esco(source), ESCO_COLUMNS, ","
    )
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", help="development data folder (default ../shared/data or $CRE_DATA_DIR)"
    )
    parser.add_argument("--out", default=str(DERIVED_DATA_DIR), help="where the derived files go")
    args = parser.parse_args(argv)
    try:
        counts = derive(data_dir(args.data_dir), Path(args.out))
    except DataNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, count in counts.items():
        print(f"{name}: {count} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
