"""Benchmark: reranking 200 candidates for one JD from precomputed embeddings.

Times ``CREModel.rerank`` with cosine only and with the BoundaryHead (``cos − λ·s_boundary``), and,
for scale, scoring every (JD, CV) pair with a full forward pass of the same backbone over the
concatenated pair (what a cross-encoder reranker costs). Medians over repeats, all in one run;
results go to ``bench/results/rerank.json``.

Usage::

    python -m bench.rerank
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import torch

from bench import write_report
from common.models import build_cre_model
from tests.texts import CVS, JDS

RESULTS = Path(__file__).resolve().parent / "results" / "rerank.json"


def median_ms(function, repeats: int) -> float:
    function()  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    model = build_cre_model("minilm", boundary={"enabled": True, "trained": True})
    cvs = [CVS[i % len(CVS)] + f" Reference {i}." for i in range(args.candidates)]
    jd_vector = model.encode(JDS[0], kind="jd", convert_to="torch")
    cv_vectors = model.encode(cvs, kind="cv", convert_to="torch")

    with_head = median_ms(lambda: model.rerank(jd_vector, cv_vectors), args.repeats)
    model.config.boundary["trained"] = False  # same model, cosine only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cosine_only = median_ms(lambda: model.rerank(jd_vector, cv_vectors), args.repeats)
    model.config.boundary["trained"] = True

    tokenizer = model.tokenizer
    pairs = tokenizer(
        [JDS[0]] * len(cvs), cvs, truncation=True, max_length=512, padding=True, return_tensors="pt"
    )

    def cross_encode() -> None:
        with torch.inference_mode():
            for start in range(0, len(cvs), 32):
                model.backbone(**{k: v[start : start + 32] for k, v in pairs.items()})

    full_forward = median_ms(cross_encode, max(1, args.repeats // 25))
    report = {
        "candidates": args.candidates,
        "torch_threads": torch.get_num_threads(),
        "cosine_only_ms": cosine_only,
        "with_boundary_head_ms": with_head,
        "boundary_head_overhead_ms": with_head - cosine_only,
        "pairwise_full_forward_ms": full_forward,
        "full_forward_over_boundary_rerank": full_forward / with_head,
    }
    write_report(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
