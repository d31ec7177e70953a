"""Benchmark: ONNX exports (fp32, int8) against ``CREModel.encode`` on the same MiniLM checkpoint.

The checkpoint (``build_cre_model("minilm")``, saved) is exported with :func:`train.export.export_checkpoint`
(``format="onnx"``, ``quantize="int8"``). Throughput: the three engines embed the same texts (JDs and
CVs written by the synthesis pipeline, see :func:`bench.encode.benchmark_texts`) in ONE process, with
the same thread count, batch size and token budget; the engines alternate over the repeats and the
best time of each is kept. Quality: int8 against fp32 on the development benchmarks (``onet``
JD–JD search and ``resumes`` JD→CV reranking, through :func:`eval.runner.evaluate`). Results go to
``bench/results/export.json`` and ``bench/results/export.md``.

Usage::

    python -m bench.export                       # 400 texts, 3 repeats, 2 threads, onet + resumes
    python -m bench.export --texts 100 --repeats 1 --benchmarks onet
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench import write_report
from bench.encode import benchmark_texts
from common.models import build_cre_model
from eval.benchmarks import load_benchmark
from eval.models import Encoder
from eval.runner import evaluate
from train.export import ONNX_FILE, ONNX_INT8_FILE, OnnxEmbedder, export_checkpoint

RESULTS = Path(__file__).resolve().parent / "results" / "export.json"


class OnnxEncoder(Encoder):
    """An ONNX export as an :mod:`eval` encoder (no embedding cache: every text is encoded)."""

    def __init__(self, embedder: OnnxEmbedder, name: str):
        super().__init__(name, fingerprint=name, cache_dir=None)
        self.embedder = embedder

    def _encode(self, texts: list[str], kind: str, batch_size: int, show_progress: bool) -> np.ndarray:
        return self.embedder.encode(texts, kind, batch_size, show_progress)


def time_engines(
    engines: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str], repeats: int
) -> dict[str, dict]:
    """Best wall time of each engine over ``repeats`` alternating runs on ``texts``."""
    best: dict[str, dict] = {}
    for repeat in range(repeats):
        names = list(engines) if repeat % 2 == 0 else list(reversed(engines))
        for name in names:
            engines[name](texts[:32])  # warm-up: first-call allocations and kernel selection
            start = time.perf_counter()
            vectors = engines[name](texts)
            seconds = time.perf_counter() - start
            if name not in best or seconds < best[name]["seconds"]:
                best[name] = {"seconds": seconds, "texts_per_s": len(texts) / seconds, "vectors": vectors}
            print(f"repeat {repeat + 1}: {name} {len(texts) / seconds:.1f} texts/s", flush=True)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--benchmarks", nargs="*", default=["onet", "resumes"])
    parser.add_argument("--data-dir", help="development data (default: ../shared/data or $CRE_DATA)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        texts = benchmark_texts(args.texts, workdir)
        model = build_cre_model("minilm")
        model.save_pretrained(workdir / "cre-minilm")
        export_checkpoint(workdir / "cre-minilm", workdir / "onnx", format="onnx", quantize="int8")
        embedders = {
            "onnx-fp32": OnnxEmbedder.from_folder(workdir / "onnx", ONNX_FILE, args.threads),
            "onnx-int8": OnnxEmbedder.from_folder(workdir / "onnx", ONNX_INT8_FILE, args.threads),
        }
        sizes = {name: (workdir / "onnx" / file).stat().st_size / 1e6 for name, file in [
            ("onnx-fp32", ONNX_FILE), ("onnx-int8", ONNX_INT8_FILE)]}  # fmt: skip

        def cre(batch: list[str]) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # CRE counts truncated texts; so do the others
                return model.encode(batch, kind="cv", batch_size=args.batch_size, show_progress=False)

        engines = {"cre": cre}
        for name, embedder in embedders.items():
            engines[name] = lambda batch, e=embedder: e.encode(batch, "cv", args.batch_size)
        best = time_engines(engines, texts, args.repeats)

        reference = best["cre"].pop("vectors")
        for name in embedders:
            cosine = (best[name].pop("vectors") * reference).sum(axis=1)
            best[name].update(
                cosine_to_cre_min=float(cosine.min()),
                cosine_to_cre_mean=float(cosine.mean()),
                ratio_to_cre=best[name]["texts_per_s"] / best["cre"]["texts_per_s"],
                file_mb=sizes[name],
            )

        quality: dict[str, dict[str, dict[str, float]]] = {}
        for benchmark_name in args.benchmarks:
            benchmark = load_benchmark(benchmark_name, args.data_dir)
            for name, embedder in embedders.items():
                [row, *_] = evaluate(OnnxEncoder(embedder, name), benchmark, batch_size=args.batch_size)
                quality.setdefault(benchmark_name, {})[name] = row.metrics
                print(f"{benchmark_name} {name}: {row.metrics}", flush=True)

    report = {
        "checkpoint": "build_cre_model('minilm') (untrained CRE on all-MiniLM-L6-v2)",
        "texts": len(texts),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": args.threads,
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads (torch and ONNX Runtime)",
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "throughput": best,
        "quality": quality,
    }
    write_report(args.out, report)
    args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


def markdown(report: dict) -> str:
    """The report as two short Markdown tables."""
    lines = [
        f"# ONNX export benchmark ({report['machine']})",
        "",
        f"{report['checkpoint']}; {report['texts']} texts (JDs and CVs), batch {report['batch_size']}, "
        f"best of {report['repeats']}.",
        "",
        "| engine | texts/s | × CRE | file MB | min cosine to CRE |",
        "|---|---|---|---|---|",
    ]
    for name, row in report["throughput"].items():
        size = f"{row['file_mb']:.0f}" if "file_mb" in row else "—"  # CRE's row is the reference
        cosine = f"{row['cosine_to_cre_min']:.4f}" if "cosine_to_cre_min" in row else "—"
        lines.append(
            f"| {name} | {row['texts_per_s']:.1f} | {row.get('ratio_to_cre', 1.0):.2f} | {size} | {cosine} |"
        )
    for benchmark, rows in report["quality"].items():
        metrics = list(next(iter(rows.values())))
        lines += ["", f"**{benchmark}**", "", "| engine | " + " | ".join(metrics) + " |"]
        lines.append("|---" * (len(metrics) + 1) + "|")
        for name, values in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{values[m]:.4f}" for m in metrics) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
