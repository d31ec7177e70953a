"""Benchmark: erasing deleted CVs from a Milvus Lite index (``python -m bench.purge``).

Builds a Milvus Lite index of ``--vectors`` synthetic MiniLM-sized CV vectors (one window each, as
:mod:`bench.search` builds them), closes it (its data files written, as after ``cre index``), reopens
it, deletes ``--deleted`` CVs and times :meth:`cvsearch.store.CVIndex.purge`: every live row read
back through Milvus's query iterator and written into a new collection, the HNSW index rebuilt.
Reports the seconds, vectors per second, the folder's size, how many deleted rows its data files
hold before and after (read as tables: :func:`keys_in_data_files`) and the ANN Recall@50 against
exact search before and after (the HNSW graph is rebuilt, so approximate results can move). Results: ``bench/results/purge.json`` and ``.md``.

Usage::

    python -m bench.purge                       # 20,000 vectors, 200 deleted
    python -m bench.purge --vectors 2000 --deleted 20
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.search import insert_synthetic, synthetic_vectors

RESULTS = Path(__file__).resolve().parent / "results" / "purge"


def keys_in_data_files(folder: Path) -> set[str]:
    """Primary keys of every row that Milvus Lite 3's data files under ``folder`` hold, deleted or
    not: its segments (``.../data/*.parquet``) and write-ahead logs (``wal_data_*.arrow``), read as
    tables (the segments are compressed, so their bytes need not contain a key). Deletion records,
    which hold the deleted keys, are in other files.

    Example:
        >>> sorted(keys_in_data_files(Path("cvs.db")))[:2]  # doctest: +SKIP
        ['cv-0#0', 'cv-1#0']
    """
    import pyarrow.ipc
    import pyarrow.parquet

    keys: set[str] = set()
    for path in sorted(folder.rglob("*")):
        if path.parent.name == "data" and path.suffix == ".parquet":
            keys.update(pyarrow.parquet.read_table(path, columns=["pk"]).column("pk").to_pylist())
        elif path.name.startswith("wal_data_") and path.suffix == ".arrow":
            with pyarrow.ipc.open_stream(path) as stream:
                keys.update(stream.read_all().column("pk").to_pylist())
    return keys


def folder_mib(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def recall(index: Any, jds: np.ndarray, exact: list[set[str]]) -> float:
    """Mean share of the exact top 50 that the index's ANN top 50 finds."""
    return float(
        np.mean([len(set(index.candidates(v, 50)) & e) / 50 for v, e in zip(jds, exact, strict=True)])
    )


def purge_benchmark(count: int, deleted: int, cluster_size: int, queries: int, seed: int) -> dict:
    """Time a purge of ``deleted`` CVs out of ``count`` (see the module docstring)."""
    from milvus_lite.server_manager import server_manager_instance

    from cvsearch.encoding import load_model
    from cvsearch.store import CVIndex

    model = load_model("minilm")
    dim = int(model.config.output_dim)
    clusters = max(1, count // cluster_size)
    # The JDs are drawn with the CVs (same cluster centres) and not stored.
    vectors, jds = np.split(synthetic_vectors(count + queries, dim, clusters, seed), [count])
    gone = list(range(0, count, max(1, count // deleted)))[:deleted]
    live = np.setdiff1d(np.arange(count), gone)
    exact = [{f"cv-{i}" for i in live[np.argsort(-(vectors[live] @ jd))[:50]]} for jd in jds]
    deleted_keys = {f"cv-{i}#0" for i in gone}
    folder = Path(tempfile.mkdtemp())
    db = folder / "cvs.db"
    try:
        insert_synthetic(CVIndex(model, db=db), vectors)
        server_manager_instance.release_server(str(db))  # what a finished `cre index` leaves
        index = CVIndex(model, db=db)
        index.delete([f"cv-{i}" for i in gone])
        recall_before = recall(index, jds, exact)
        server_manager_instance.release_server(str(db))  # what a finished `cre delete` leaves
        on_disk_before, size_before = len(deleted_keys & keys_in_data_files(db)), folder_mib(db)

        index = CVIndex(model, db=db)
        started = time.perf_counter()
        counts = index.purge()
        seconds = time.perf_counter() - started
        recall_after = recall(index, jds, exact)
        server_manager_instance.release_server(str(db))
        keys = keys_in_data_files(db)
        on_disk_after, size_after = len(deleted_keys & keys), folder_mib(db)
        if keys != {f"cv-{i}#0" for i in live}:
            raise RuntimeError("the purged folder's data files do not hold exactly the live rows")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "vectors": count,
        "deleted_cvs": len(gone),
        "dim": dim,
        "kept": counts,
        "purge_seconds": seconds,
        "vectors_per_second": counts["vectors"] / seconds,
        "disk_mib_before": size_before,
        "disk_mib_after": size_after,
        "deleted_rows_in_data_files_before": on_disk_before,
        "deleted_rows_in_data_files_after": on_disk_after,
        "queries": queries,
        "ann_recall@50_vs_exact_before": recall_before,
        "ann_recall@50_vs_exact_after": recall_after,
    }


def write_results(results: dict, stem: Path = RESULTS) -> None:
    """``stem.json`` and a short ``stem.md``."""
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    purge = results["purge"]
    lines = [
        "# Purge benchmark",
        "",
        f"`python -m bench.purge` on {results['machine']} (CPU, shared with other work).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| purge of {purge['deleted_cvs']:,} deleted CVs, {purge['kept']['vectors']:,} vectors kept | "
        f"{purge['purge_seconds']:.1f} s ({purge['vectors_per_second']:,.0f} vectors/s) |",
        f"| folder size before / after | {purge['disk_mib_before']:.1f} / {purge['disk_mib_after']:.1f} MiB |",
        f"| deleted rows in the data files, before / after | "
        f"{purge['deleted_rows_in_data_files_before']} / {purge['deleted_rows_in_data_files_after']} |",
        f"| ANN Recall@50 vs exact ({purge['queries']} JDs), before / after | "
        f"{purge['ann_recall@50_vs_exact_before']:.3f} / {purge['ann_recall@50_vs_exact_after']:.3f} |",
        "",
        f"Synthetic unit vectors ({purge['dim']} dimensions) as in bench/search.py, one window per CV, "
        "a dense index (a hybrid one also copies each CV's text).",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Purge benchmark")
    parser.add_argument("--vectors", type=int, default=20_000)
    parser.add_argument("--deleted", type=int, default=200)
    parser.add_argument("--cluster-size", type=int, default=200, help="vectors per synthetic cluster")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "purge": purge_benchmark(args.vectors, args.deleted, args.cluster_size, args.queries, args.seed),
    }
    write_results(results, args.out)
    print(args.out.with_suffix(".md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
