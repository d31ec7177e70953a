"""Does RT (Refine Thought) help? Evaluate a backbone at k = 0..K RT iterations, both placements.

Each variant is the same CRE model with ``config.rt`` changed (RT is parameter-free, so no training is
involved); every variant is compared with k = 0 by a paired bootstrap. Writes
``{out}/rt_{backbone}.json`` / ``.md`` (schema of :mod:`eval.compare`; a folder path's separators
become ``_``) and Recall@K plots. ``--backbone`` may also be a trained CRE checkpoint.

Usage::

    python -m eval.rt_sweep --backbone minilm --benchmarks onet resumes
    python -m eval.rt_sweep --backbone smollm2-135m --benchmarks resumes --iterations 1 3

Example:
    >>> variants("minilm", iterations=[1], placements=["suffix"])
    ['minilm rt=0', 'minilm rt=1 suffix']
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import logging
import re
from pathlib import Path

import torch

from common.backbones import is_cre_checkpoint
from cre.configuration_cre import RT_PLACEMENTS
from eval.benchmarks import load_benchmark
from eval.cache import default_embedding_cache_dir
from eval.compare import build_report, paired_comparisons, run_models, write_report
from eval.models import CREEncoder, fingerprint


def variants(backbone: str, iterations: list[int], placements: list[str]) -> list[str]:
    """Row names: the k = 0 reference, then every (k, placement)."""
    return [f"{backbone} rt=0"] + [f"{backbone} rt={k} {p}" for k in iterations for p in placements]


class VariantLoader:
    """Builds the backbone's CRE model (or loads a CRE checkpoint) once and hands out encoders with the
    asked RT setting."""

    def __init__(self, backbone: str, max_length: int, cache_dir: Path | None):
        from common.models import load_model

        self.backbone, self.max_length, self.cache_dir = backbone, max_length, cache_dir
        # A trained checkpoint keeps its config; a backbone gets a fresh model with this token budget.
        options = {} if is_cre_checkpoint(backbone) else {"max_length": max_length}
        self.model = load_model(backbone, **options)
        self.code_digest = hashlib.sha256(Path(inspect.getfile(type(self.model))).read_bytes()).hexdigest()

    def __call__(self, spec: str) -> CREEncoder:
        _, setting, *placement = spec.split(" ")
        iterations = int(setting.removeprefix("rt="))
        self.model.config.rt = {
            "iterations": iterations,
            "placement": placement[0] if placement else "suffix",
        }
        extra = self.model.config.to_json_string() + self.code_digest
        key = fingerprint(self.backbone, self.backbone, self.max_length, extra)
        return CREEncoder(self.model, spec, key, self.cache_dir, self.max_length)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--benchmarks", nargs="+", default=["onet", "resumes"])
    parser.add_argument("--iterations", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--placements", nargs="+", choices=RT_PLACEMENTS, default=list(RT_PLACEMENTS))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--data-dir", help="development data folder (default ../shared/data or $CRE_DATA_DIR)"
    )
    parser.add_argument("--out", type=Path, default=Path("eval/results"))
    parser.add_argument("--no-cache", action="store_true", help="do not cache embeddings on disk")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    benchmarks = [load_benchmark(name, args.data_dir) for name in args.benchmarks]
    loader = VariantLoader(
        args.backbone, args.max_length, None if args.no_cache else default_embedding_cache_dir()
    )
    specs = variants(args.backbone, args.iterations, args.placements)
    results, load_seconds, failures = run_models(specs, benchmarks, loader, batch_size=args.batch_size)
    settings = {
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "reference": specs[0],
        "torch_threads": torch.get_num_threads(),
    }
    report = build_report(
        results,
        benchmarks,
        settings,
        load_seconds,
        failures,
        paired_comparisons(results, specs[0]),
        per_query=False,
    )
    # A folder path becomes one file name: outputs/cre-minilm/final -> rt_outputs_cre-minilm_final
    stem = "rt_" + re.sub(r"[^\w.-]+", "_", args.backbone.strip("/"))
    for path in write_report(report, args.out, stem=stem):
        print(path)


if __name__ == "__main__":
    main()
