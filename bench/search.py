"""Benchmark: CV search at corpus scale (``python -m bench.search``).

Measures, on this machine's CPU:

* encode throughput of the ``cre encode`` engine (:func:`cvsearch.encoding.encode_corpus`: reading
  lengths, shards on disk, manifest) against ``SentenceTransformer.encode`` on the same texts and
  MiniLM weights (the texts of :func:`bench.encode.benchmark_texts`; best of ``--repeats``, engines
  alternating; model loading excluded);
* index build time (inserts + HNSW build) and on-disk size of Milvus Lite for ``--vectors`` CV vectors;
* search latency p50 / p95 of :meth:`CVIndex.search` (``--candidates`` from HNSW, then
  ``CREModel.rerank`` from the stored vectors; the JD vector is given, so JD encoding is excluded);
* ANN Recall@50 against exact search (numpy over the inserted vectors, checked against
  :meth:`CVIndex.candidates` with ``exact=True`` on one JD, whose scan time is reported).

The corpus vectors are synthetic, because encoding 100k CVs on a 2-core CPU would take hours:
random unit centres in 384 dimensions, one per ``--cluster-size`` vectors, and each vector a centre plus Gaussian noise
(σ = 0.06 per dimension, so a vector keeps cosine ≈ 0.6 to its centre, like embeddings of one
occupation), renormalised. Queries are fresh vectors drawn the same way. Results:
``bench/results/search.json`` and ``.md``.

Usage::

    python -m bench.search                            # 100k vectors
    python -m bench.search --vectors 5000 --queries 10 --texts 200
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

RESULTS = Path(__file__).resolve().parent / "results" / "search"
NOISE = 0.06


def synthetic_vectors(count: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """Unit vectors around ``clusters`` random unit centres (see the module docstring)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = centres[rng.integers(0, clusters, count)] + NOISE * rng.standard_normal((count, dim)).astype(
        np.float32
    )
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def encode_throughput(texts: list[str], repeats: int, batch_size: int) -> dict:
    """Texts per second of the ``cre encode`` engine and of sentence-transformers, same texts."""
    from sentence_transformers import SentenceTransformer

    from common.backbones import resolve_backbone
    from cvsearch.encoding import encode_corpus, load_model
    from cvsearch.parsing import Document

    model = load_model("minilm")
    reference = SentenceTransformer(resolve_backbone("minilm"), device="cpu")
    reference.max_seq_length = model.token_budget()
    documents = [Document(str(i), text, "bench") for i, text in enumerate(texts)]
    best = {"cre": float("inf"), "sentence_transformers": float("inf")}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            encode_corpus(model, documents, folder, "cv", None, batch_size, progress=False)
            best["cre"] = min(best["cre"], time.perf_counter() - started)
        started = time.perf_counter()
        reference.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        best["sentence_transformers"] = min(best["sentence_transformers"], time.perf_counter() - started)
    return {
        "texts": len(texts),
        "batch_size": batch_size,
        "seconds": best,
        "texts_per_second": {engine: len(texts) / seconds for engine, seconds in best.items()},
        "ratio_cre_over_sentence_transformers": best["sentence_transformers"] / best["cre"],
    }


def insert_synthetic(index: Any, vectors: np.ndarray) -> None:
    """Store ``vectors`` in ``index`` (a :class:`~cvsearch.store.CVIndex`) as the one-window CVs
    ``cv-0``, ``cv-1``, ... without encoding anything, and flush them to the data files."""
    from tqdm.auto import tqdm

    from cvsearch.store import IO_BATCH

    for start in tqdm(range(0, len(vectors), IO_BATCH), desc="Inserting", unit="batch"):
        index.client.insert(
            index.collection,
            [
                {"pk": f"cv-{i}#0", "cv_id": f"cv-{i}", "chunk": 0, "windows": 1, "source": "synthetic", "content_sha": "",
                 "vector": vectors[i].tolist()}
                for i in range(start, min(len(vectors), start + IO_BATCH))
            ],
        )  # fmt: skip
    index.client.flush(index.collection)


def index_and_search(
    count: int, cluster_size: int, queries: int, candidates: int, top_k: int, seed: int
) -> dict:
    """Build a Milvus Lite index of ``count`` synthetic vectors; time searches; ANN recall vs exact."""
    from tqdm.auto import tqdm

    from cvsearch.encoding import load_model
    from cvsearch.store import CVIndex

    model = load_model("minilm")
    dim = int(model.config.output_dim)
    clusters = max(1, count // cluster_size)
    vectors = synthetic_vectors(count, dim, clusters, seed)
    folder = Path(tempfile.mkdtemp())
    try:
        index = CVIndex(model, db=folder / "cvs.db")
        started = time.perf_counter()
        insert_synthetic(index, vectors)
        jd_vectors = synthetic_vectors(queries, dim, clusters, seed)  # same centres, fresh noise
        index.candidates(jd_vectors[0], candidates)  # the first search waits for the index build
        build_seconds = time.perf_counter() - started
        size = sum(path.stat().st_size for path in (folder / "cvs.db").rglob("*") if path.is_file())
        latencies = []
        for vector in tqdm(jd_vectors, desc="Searching", unit="JD"):
            started = time.perf_counter()
            index.search(vector, top_k=top_k, candidates=candidates)
            latencies.append(time.perf_counter() - started)
        # Ground truth by numpy over the vectors inserted (what a FLAT scan returns): the store's own
        # exact scan reads 100k vectors through Milvus Lite's query iterator, about a minute per JD.
        exact = [{f"cv-{i}" for i in np.argsort(-(vectors @ vector))[:50]} for vector in jd_vectors]
        recall = float(
            np.mean(
                [len(set(index.candidates(v, 50)) & e) / 50 for v, e in zip(jd_vectors, exact, strict=True)]
            )
        )
        started = time.perf_counter()
        if set(index.candidates(jd_vectors[0], 50, exact=True)) != exact[0]:
            raise RuntimeError("the store's exact scan disagrees with numpy on the same vectors")
        exact_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "vectors": count,
        "dim": dim,
        "clusters": clusters,
        "index": "HNSW M=16 efConstruction=200, IP; ef = max(candidates, 64)",
        "build_seconds": build_seconds,
        "disk_mib": size / 2**20,
        "search": {
            "queries": queries,
            "candidates": candidates,
            "top_k": top_k,
            "p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "p95_ms": 1000 * float(np.percentile(latencies, 95)),
        },
        "ann_recall@50_vs_exact": recall,
        "exact_scan_seconds": exact_seconds,
    }


def write_results(results: dict, stem: Path = RESULTS) -> None:
    """``stem.json`` and a short ``stem.md``."""
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    encode, index = results["encode"], results["index"]
    search = index["search"]
    lines = [
        "# CV search benchmark",
        "",
        f"`python -m bench.search` on {results['machine']} (CPU, shared with other work).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| encode, `cre encode` engine | {encode['texts_per_second']['cre']:.1f} texts/s |",
        f"| encode, SentenceTransformer.encode | {encode['texts_per_second']['sentence_transformers']:.1f} texts/s |",
        f"| ratio cre / sentence-transformers (target ≥ 1.0) | {encode['ratio_cre_over_sentence_transformers']:.2f} |",
        f"| index build, {index['vectors']:,} vectors (insert + HNSW) | {index['build_seconds']:.1f} s |",
        f"| index on disk (Milvus Lite) | {index['disk_mib']:.1f} MiB |",
        f"| search latency top-{search['candidates']} + rerank, p50 / p95 | {search['p50_ms']:.1f} / {search['p95_ms']:.1f} ms |",
        f"| ANN Recall@50 vs exact ({search['queries']} JDs) | {index['ann_recall@50_vs_exact']:.3f} |",
        f"| exact scan (`--exact`), one JD | {index['exact_scan_seconds']:.1f} s |",
        "",
        f"Encode: {encode['texts']} synthesis texts (half JDs, half CVs), batch {encode['batch_size']}, best of "
        f"{results['repeats']}. Index: synthetic unit vectors, {index['clusters']} clusters (see bench/search.py).",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    """Command line (see the module docstring)."""
    from bench.encode import benchmark_texts

    parser = argparse.ArgumentParser(description="CV search benchmark")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--cluster-size", type=int, default=200, help="vectors per synthetic cluster")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        texts = benchmark_texts(args.texts, Path(workdir))
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "repeats": args.repeats,
        "encode": encode_throughput(texts, args.repeats, args.batch_size),
        "index": index_and_search(
            args.vectors, args.cluster_size, args.queries, args.candidates, args.top_k, args.seed + 1
        ),
    }
    write_results(results, args.out)
    print(args.out.with_suffix(".md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
