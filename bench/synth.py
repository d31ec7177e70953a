"""Benchmark: throughput of the ``rules`` synthesis backend on the embedded seed JDs.

Runs the whole pipeline (all eight stages, validation, deduplication, file writing) into a fresh
folder ``--repeats`` times and keeps the best wall time. Reports kept samples per second (every kept
sample of every stage, anchors included), JDs per second and the per-stage counts. Results go to
``bench/results/synth.json``.

Usage::

    python -m bench.synth               # 330 seed JDs, 3 repeats
    python -m bench.synth --repeats 1 --limit 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, help="use only the first N seed JDs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from train.synth import load_seed_jds, run_pipeline

    jds = load_seed_jds()[: args.limit]
    timings, manifest = [], None
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            manifest = run_pipeline(jds, backend="rules", out_dir=folder, seed=0, progress=False)
            timings.append(time.perf_counter() - started)
    best = min(timings)
    kept = sum(stage["kept"] for stage in manifest["stages"].values())
    result = {
        "benchmark": "rules backend, embedded seed JDs, full pipeline",
        "jds": len(jds),
        "kept_samples": kept,
        "best_seconds": round(best, 3),
        "all_seconds": [round(t, 3) for t in timings],
        "samples_per_second": round(kept / best, 1),
        "jds_per_second": round(len(jds) / best, 1),
        "stages": {
            name: {"kept": s["kept"], "generated": s["generated"]} for name, s in manifest["stages"].items()
        },
        "files": manifest["files"],
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {key: result[key] for key in ("jds", "kept_samples", "best_seconds", "samples_per_second")}
        )
    )


if __name__ == "__main__":
    main()
