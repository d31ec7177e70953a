"""Benchmark: Round 1's frozen-teacher targets embedded once before training, against at every step.

On the main job's Round 1 schedule (the ``minilm`` recipe's steps over a rules-backend synthesis of
the embedded seed JDs), in ONE process: the frozen model's forward passes as each card, semantic and
ranking step ran them before (every field of every micro-batch, chunked as training chunks it), against
:func:`train.r1.embed_teacher_targets` (each distinct text once). The two alternate over the repeats
and the best time of each is kept; the largest difference between the two sets of targets is reported
beside them. Results go to ``bench/results/teacher_targets.json``.

Usage::

    python -m bench.teacher_targets              # 3 repeats
    python -m bench.teacher_targets --repeats 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from bench import machine, write_report

RESULTS = Path(__file__).resolve().parent / "results" / "teacher_targets.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from common.models import build_cre_model
    from train.encoding import BatchEncoder, batch_fields
    from train.pipeline import RECIPES
    from train.r1 import build_schedule, embed_teacher_targets, load_r1_data, stage_fields
    from train.synth import load_seed_jds, run_pipeline

    recipe = RECIPES["minilm"].r1
    with tempfile.TemporaryDirectory(prefix="cre-bench-teacher-") as tmp:
        run_pipeline(load_seed_jds(), backend="rules", out_dir=Path(tmp), seed=0, progress=False)
        schedule = build_schedule(load_r1_data(tmp), recipe, accumulation=1, world=1, seed=0)
    steps = [batch for batch in schedule if batch.stage != "profile"]
    fields = [batch_fields(b.examples, dict.fromkeys(stage_fields(b.stage), "jd")) for b in steps]
    teacher = build_cre_model("minilm").eval().requires_grad_(False)
    encoder = BatchEncoder.for_model(teacher, recipe.max_length)

    def every_step() -> list[dict[str, torch.Tensor]]:
        with torch.no_grad():
            return [encoder(teacher, batch) for batch in fields]

    def once() -> dict[str, torch.Tensor]:
        return embed_teacher_targets(teacher, encoder, schedule)

    seconds: dict[str, list[float]] = {"every_step": [], "once": []}
    outputs = {}
    for _ in range(args.repeats):
        for name, run in (("every_step", every_step), ("once", once)):
            started = time.perf_counter()
            outputs[name] = run()
            seconds[name].append(time.perf_counter() - started)
    difference = max(
        float((torch.stack([outputs["once"][text] for text in texts]) - vectors[name]).abs().max())
        for batch, vectors in zip(fields, outputs["every_step"], strict=True)
        for name, (_, texts) in batch.items()
    )
    best = {name: min(times) for name, times in seconds.items()}
    report = {
        "benchmark": "Round 1 teacher targets: embedded at every step vs once before training",
        "settings": {"recipe": "minilm", "repeats": args.repeats, "max_length": recipe.max_length},
        "machine": machine(),
        "steps": len(steps),
        "texts_read": sum(len(texts) for batch in fields for _, texts in batch.values()),
        "distinct_texts": len(outputs["once"]),
        "seconds_every_step": round(best["every_step"], 1),
        "seconds_once": round(best["once"], 1),
        "seconds_saved": round(best["every_step"] - best["once"], 1),
        "max_abs_difference": difference,
        "all_seconds": {name: [round(t, 1) for t in times] for name, times in seconds.items()},
    }
    write_report(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
