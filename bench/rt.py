"""Benchmark: the cost of RT (Refine Thought) iterations, as a ratio to plain encoding (k = 0).

For an encoder (MiniLM) and a decoder (SmolLM2-135M) it times one forward pass over a batch of
256-token texts at k = 0..3 for each placement, and for the decoder with ``suffix`` placement with
and without reuse of the text's KV cache. Configurations are interleaved over the repeats and the
median is kept, so every ratio compares timings taken under the same machine load. Results go to
``bench/results/rt.json``.

Usage::

    python -m bench.rt                    # both backbones, batch 8, 5 repeats
    python -m bench.rt --backbones minilm --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from bench import write_report
from common.models import build_cre_model

RESULTS = Path(__file__).resolve().parent / "results" / "rt.json"
TOKENS = 256


def fixed_length_batch(model, batch_size: int) -> dict[str, torch.Tensor]:
    """``batch_size`` different texts of exactly :data:`TOKENS` tokens each (special tokens included)."""
    words = "senior engineer owns the data platform roadmap with python spark airflow and mentors the team".split()
    texts = [" ".join(words[(i + j) % len(words)] for j in range(2 * TOKENS)) for i in range(batch_size)]
    batch = model.tokenize(texts, kind="cv", max_length=TOKENS)
    assert batch["input_ids"].shape[1] == TOKENS
    return batch


def configurations(decoder: bool) -> list[dict]:
    configs = [{"iterations": 0, "placement": "suffix", "use_cache": False}]
    for k in (1, 2, 3):
        configs.append({"iterations": k, "placement": "prefix", "use_cache": False})
        configs.append({"iterations": k, "placement": "suffix", "use_cache": False})
        if decoder:
            configs.append({"iterations": k, "placement": "suffix", "use_cache": True})
    return configs


def name(config: dict) -> str:
    cache = " +kv-cache" if config["use_cache"] else ""
    return f"k={config['iterations']} {config['placement']}{cache}" if config["iterations"] else "k=0"


def time_backbone(backbone: str, batch_size: int, repeats: int) -> dict:
    model = build_cre_model(backbone, max_length=TOKENS)
    batch = fixed_length_batch(model, batch_size)
    configs = configurations(model.config.is_decoder_backbone)
    timings: dict[str, list[float]] = {name(c): [] for c in configs}
    with torch.inference_mode():
        model(**batch)  # warm-up
        for repeat in range(repeats):
            for config in configs if repeat % 2 == 0 else configs[::-1]:
                start = time.perf_counter()
                model(
                    **batch,
                    rt_iterations=config["iterations"],
                    rt_placement=config["placement"],
                    use_cache=config["use_cache"],
                )
                timings[name(config)].append(time.perf_counter() - start)
    base = statistics.median(timings["k=0"])
    return {
        "backbone": backbone,
        "decoder": model.config.is_decoder_backbone,
        "median_seconds": {key: statistics.median(values) for key, values in timings.items()},
        "ratio_to_k0": {key: statistics.median(values) / base for key, values in timings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["minilm", "smollm2-135m"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = {
        "tokens_per_text": TOKENS,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "results": [time_backbone(b, args.batch_size, args.repeats) for b in args.backbones],
    }
    write_report(args.out, report)
    for result in report["results"]:
        print(result["backbone"])
        for key, ratio in result["ratio_to_k0"].items():
            print(f"  {key:<22} {result['median_seconds'][key]:.3f} s  ×{ratio:.2f}")


if __name__ == "__main__":
    main()
