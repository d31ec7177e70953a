"""Benchmark: ``CREModel.encode`` against ``SentenceTransformer.encode`` on the same MiniLM weights.

Both engines embed the same 2,000 texts (1,000 JDs and 1,000 CVs written by the synthesis pipeline,
so lengths are realistic), with the same batch size and token budget. Each engine runs in its own
subprocess so that its peak memory (max RSS) is its own; the engines alternate over the repeats and
the best time of each is kept. Results go to ``bench/results/encode.json``.

Usage::

    python -m bench.encode                  # full run (2,000 texts, 3 repeats)
    python -m bench.encode --texts 200 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import write_report
from common.lines import read_json_lines
from common.models import build_cre_model

RESULTS = Path(__file__).resolve().parent / "results" / "encode.json"


def benchmark_texts(count: int, workdir: Path) -> list[str]:
    """``count`` texts, half JDs and half CVs, from a rules-backend synthesis run on the embedded seeds."""
    from train.synth import load_seed_jds, run_pipeline

    run_pipeline(load_seed_jds(), backend="rules", out_dir=workdir / "synth", seed=0)

    def read(name: str) -> list[dict]:
        return [row for _, row in read_json_lines(workdir / "synth" / name)]

    # JD texts: the seed JDs, their paraphrases and summaries, their hard negatives; CVs: the JD-CV corpus.
    jds = [text for r in read("pairs.jsonl") for text in (r["query"], r["positive"])]
    jds += [text for r in read("ranking.jsonl") for text in (r["negative_role"], r["negative_constraint"])]
    cvs = [text for r in read("jdcv.jsonl") for text in (r["positive"], r["negative"])]
    jds, cvs = list(dict.fromkeys(jds)), list(dict.fromkeys(cvs))
    half = count // 2
    if len(jds) < half or len(cvs) < count - half:
        raise SystemExit(f"synthesis gave {len(jds)} JDs and {len(cvs)} CVs, fewer than {count} texts")
    return jds[:half] + cvs[: count - half]


def run_engine(engine: str, workdir: Path, batch_size: int) -> dict:
    """Embed the texts with one engine (in this process) and report time, tokens and peak memory."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    from common.backbones import resolve_backbone

    texts = json.loads((workdir / "texts.json").read_text())
    if engine == "cre":
        # The path users take: a saved checkpoint through AutoModel.
        model = AutoModel.from_pretrained(workdir / "cre-minilm", trust_remote_code=True)
        tokenizer, limit = model.tokenizer, model.config.max_length

        def encode(batch=texts):
            return model.encode(batch, kind="cv", batch_size=batch_size, show_progress=False)
    else:
        model = SentenceTransformer(resolve_backbone("minilm"), device="cpu")
        tokenizer, limit = model.tokenizer, model.max_seq_length

        def encode(batch=texts):
            return model.encode(batch, batch_size=batch_size, show_progress_bar=False)

    encode(texts[:64])  # warm-up: first-call allocations and kernel selection
    start = time.perf_counter()
    vectors = encode()
    seconds = time.perf_counter() - start
    tokens = sum(min(len(ids), limit) for ids in tokenizer(texts)["input_ids"])
    return {
        "engine": engine,
        "seconds": seconds,
        "texts_per_s": len(texts) / seconds,
        "tokens_per_s": tokens / seconds,
        "tokens": tokens,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "checksum": float(abs(vectors).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--engine", choices=["cre", "st"], help=argparse.SUPPRESS)  # child process
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(run_engine(args.engine, args.workdir, args.batch_size)))
        return

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        (workdir / "texts.json").write_text(json.dumps(benchmark_texts(args.texts, workdir)))
        build_cre_model("minilm").save_pretrained(workdir / "cre-minilm")
        runs: dict[str, list[dict]] = {"cre": [], "st": []}
        for repeat in range(args.repeats):
            for engine in ("cre", "st") if repeat % 2 == 0 else ("st", "cre"):
                command = [
                    sys.executable,
                    "-m",
                    "bench.encode",
                    "--engine",
                    engine,
                    "--workdir",
                    str(workdir),
                ]
                command += ["--batch-size", str(args.batch_size)]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                runs[engine].append(json.loads(output.strip().splitlines()[-1]))
                print(
                    f"repeat {repeat + 1}: {engine} {runs[engine][-1]['texts_per_s']:.1f} texts/s", flush=True
                )

    best = {engine: min(results, key=lambda r: r["seconds"]) for engine, results in runs.items()}
    report = {
        "texts": args.texts,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "best": best,
        "throughput_ratio_cre_over_st": best["cre"]["texts_per_s"] / best["st"]["texts_per_s"],
        "peak_memory_ratio_cre_over_st": best["cre"]["peak_rss_mb"] / best["st"]["peak_rss_mb"],
        "same_vectors_checksum": abs(best["cre"]["checksum"] - best["st"]["checksum"]) < 1e-2,
    }
    write_report(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "best"}, indent=2))


if __name__ == "__main__":
    main()
