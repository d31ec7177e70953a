"""The ``cre`` command (also ``python -m cvsearch``): encode, index, search and delete CVs.

From a folder of résumés to a ranked shortlist::

    cre index resumes/ --db cvs.db --model minilm
    cre search "Senior Python developer with AWS" --db cvs.db --model minilm --top-k 10
    cre index resumes/ --db windows.db --model minilm --windows  # every window of long CVs
    cre search "Who worked with Kubernetes at a bank?" --db windows.db --model minilm --kind query
    cre index resumes/ --db hybrid.db --model minilm --hybrid     # also BM25 over the CV texts
    cre search "Python developer, formerly at Initech" --db hybrid.db --model minilm --hybrid
    cre delete backend_engineer.pdf --db cvs.db --model minilm --purge  # erased from disk too

``cre demo-corpus OUT`` writes a small synthetic example folder; docs/search.md walks through it.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from common.windows import FIRST_MAX_WEIGHT, SCHEMES
from cvsearch.encoding import DEFAULT_SHARD_SIZE, encode_corpus, load_model, process_state
from cvsearch.parsing import FORMATS, InputError, RunReport, read_documents
from cvsearch.store import CVIndex, PurgeError
from cvsearch.windows import DEFAULT_SCHEMES, SEARCH_KINDS, Windows

OUTPUT_COLUMNS = ["jd", "rank", "id", "score", "cosine", "boundary", "feedback", "source", "windows"]


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input", help="JSONL, CSV, a text file (one text per line), or a folder of PDF/DOCX/TXT"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="auto", help="input format (default: by the path)"
    )
    parser.add_argument("--text-field", default="text", help="JSONL field / CSV column of the text")
    parser.add_argument("--id-field", help="JSONL field / CSV column of the id (default: line or row number)")
    parser.add_argument("--meta", default="", help="comma-separated fields / columns kept as metadata")


def _model_options(parser: argparse.ArgumentParser, encodes: bool = True) -> None:
    parser.add_argument(
        "--model", required=True, help="CRE checkpoint folder or backbone alias (minilm, ...)"
    )
    parser.add_argument("--task", default="jd-cv", help="the model's task (jd-cv, jd-jd, title)")
    if encodes:
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument(
            "--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="rows per resumable shard"
        )
        parser.add_argument("--windows", action="store_true", help="encode every token window of long texts")
        parser.add_argument(
            "--window-size", type=int, help="tokens per window (default: what the model reads)"
        )
        parser.add_argument(
            "--stride", type=int, help="tokens between window starts (default: 3/4 of the size)"
        )


def _db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default="cvs.db", help="Milvus Lite folder or server URI (http://host:19530)")
    parser.add_argument("--collection", default="cvs")
    parser.add_argument("--token", default="", help="Milvus server credentials (user:password or API key)")


def build_parser() -> argparse.ArgumentParser:
    """The ``cre`` argument parser."""
    parser = argparse.ArgumentParser(prog="cre", description="Search a CV corpus with a job description.")
    commands = parser.add_subparsers(dest="command", required=True)

    encode = commands.add_parser("encode", help="texts -> vectors.npy + rows.jsonl (resumable)")
    _input_options(encode)
    _model_options(encode)
    encode.add_argument("--out", required=True, help="output folder (re-run the command to resume)")
    encode.add_argument("--kind", default="cv", help="cv, jd, query or document")

    index = commands.add_parser("index", help="encode CVs and store them in Milvus (re-adding is free)")
    _input_options(index)
    _model_options(index)
    _db_options(index)
    index.add_argument(
        "--work-dir", help="resumable encoding folder (default: DB.encoding or ./COLLECTION.encoding)"
    )
    index.add_argument(
        "--hybrid",
        action="store_true",
        help="also store each CV's text for BM25, so that `search --hybrid` works (a new collection)",
    )

    search = commands.add_parser(
        "search", help="JD(s) or recruiter question(s) -> ranked CVs as JSON lines or CSV"
    )
    search.add_argument(
        "jd", nargs="?", help="JD text, or a question with --kind query (or use --jd-file / --jds)"
    )
    search.add_argument("--jd-file", help="a file holding one JD")
    search.add_argument("--jds", help="JSONL of JDs or questions (--text-field, --id-field)")
    search.add_argument("--text-field", default="text")
    search.add_argument("--id-field")
    _model_options(search, encodes=False)
    _db_options(search)
    search.add_argument("--top-k", type=int, default=50)
    search.add_argument("--candidates", type=int, default=200, help="CVs from vector search to rerank")
    search.add_argument("--exact", action="store_true", help="scan every vector instead of the ANN index")
    search.add_argument(
        "--hybrid",
        action="store_true",
        help="candidates from BM25 too; order by reciprocal-rank fusion of the model's and BM25's ranks "
        "(an index built with `index --hybrid`)",
    )
    search.add_argument(
        "--kind",
        choices=SEARCH_KINDS,
        default="jd",
        help="what is asked: jd = a job description (default), query = a recruiter question such as "
        '"Who worked with Kubernetes at a bank?" (best with an index built with `index --windows`)',
    )
    by_kind = ", ".join(f"{kind}: {scheme}" for kind, scheme in DEFAULT_SCHEMES.items())
    search.add_argument(
        "--scoring",
        choices=SCHEMES,
        default=None,
        help=f"how a CV's windows make its score (default: by --kind, {by_kind})",
    )
    search.add_argument("--first-max-weight", type=float, default=FIRST_MAX_WEIGHT)
    search.add_argument("--output-format", choices=("jsonl", "csv"), default="jsonl")
    search.add_argument("--out", help="output file (default: standard output)")

    delete = commands.add_parser("delete", help="remove every vector of the given CV ids")
    delete.add_argument("ids", nargs="+")
    _model_options(delete, encodes=False)
    _db_options(delete)
    delete.add_argument(
        "--purge", action="store_true", help="then rebuild the collection so that their bytes leave the disk"
    )
    purge = commands.add_parser(
        "purge", help="rebuild a collection from its live rows: deleted CVs leave the disk"
    )
    _model_options(purge, encodes=False)
    _db_options(purge)

    # Listed for --help only: main() hands `cre export ...` to train.export, which owns its options.
    commands.add_parser(
        "export", help="plain sentence-transformers / ONNX copy of a checkpoint", add_help=False
    )
    demo = commands.add_parser("demo-corpus", help="write a small synthetic résumé folder")
    demo.add_argument("out")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cre``; bad input ends with a one-line error (exit 2), never a traceback.

    Example:
        >>> import tempfile
        >>> main(["demo-corpus", tempfile.mkdtemp()])  # doctest: +ELLIPSIS
        wrote 9 files to ...
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        from train.export import main as export_main

        return export_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    # Milvus Lite's in-process gRPC server logs a traceback for optional RPCs the client probes
    # (e.g. AllocTimestamp) and then works without; users would read them as failures.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    # Milvus Lite has no server timestamps, so every query iterator (exact search, purge) warns that it
    # uses the client's clock instead, which is what a single-process engine needs. A filter, because
    # importing pymilvus resets its loggers' levels.
    logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(
        lambda record: "failed to get mvccTs" not in record.getMessage()
    )
    try:
        return COMMANDS[args.command](args)
    except (InputError, ValueError, FileNotFoundError, PurgeError) as err:
        print(f"cre {args.command}: error: {err}", file=sys.stderr)
        return 2


def _documents(args: argparse.Namespace, report: RunReport):
    meta = [name for name in args.meta.split(",") if name]
    return read_documents(args.input, args.format, args.text_field, args.id_field, meta, report)


def _windows(args: argparse.Namespace) -> Windows | None:
    return Windows(args.window_size, args.stride) if args.windows else None


def _index(args: argparse.Namespace, windows: Windows | None = None) -> CVIndex:
    hybrid = args.command == "index" and args.hybrid  # a search reads how the collection was built
    return CVIndex(load_model(args.model), args.db, args.collection, windows, args.task, args.token, hybrid)


def _finish(report: RunReport, path: Path | None) -> None:
    print(report.summary(), file=sys.stderr)
    if path is not None:
        report.write(path)
        print(f"report: {path}", file=sys.stderr)


def cmd_encode(args: argparse.Namespace) -> int:
    report = RunReport()
    documents = _documents(args, report)
    model = load_model(args.model)
    out = Path(args.out)
    encode_corpus(
        model, documents, out, args.kind, args.task, args.batch_size, args.shard_size, _windows(args), report
    )
    if process_state().is_main_process:
        _finish(report, out / "report.json")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    report = RunReport()
    documents = _documents(args, report)
    index = _index(args, _windows(args))
    local = "://" not in args.db
    work_dir = Path(args.work_dir or (f"{args.db}.encoding" if local else f"{args.collection}.encoding"))
    index.add(documents, work_dir, args.batch_size, args.shard_size, report)
    report.extra.update({f"collection_{key}": value for key, value in index.count().items()})
    _finish(report, Path(f"{args.db}.report.json") if local else None)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    jds = _jds(args)
    index = _index(args)
    if args.kind == "query" and not index.has_windows():
        print(
            f"cre search: warning: no CV in {args.db} (collection {args.collection!r}) is stored as more "
            "than one window, so only each CV's opening is searched: index with `cre index --windows` "
            "to answer questions about the rest of long CVs (built so already, every CV fits one window)",
            file=sys.stderr,
        )
    rows: list[dict[str, Any]] = []
    vectors = index.encode_queries(list(jds.values()), args.kind)
    for (jd_id, text), vector in zip(jds.items(), vectors, strict=True):
        hits = index.search(
            vector,
            args.top_k,
            args.candidates,
            args.exact,
            args.scoring,
            args.first_max_weight,
            hybrid=args.hybrid,
            jd_text=text,
            kind=args.kind,
        )
        rows += [{"jd": jd_id, "rank": rank, **hit} for rank, hit in enumerate(hits, start=1)]
    output = open(args.out, "w", encoding="utf-8", newline="") if args.out else nullcontext(sys.stdout)  # noqa: SIM115
    with output as handle:
        if args.output_format == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            extra = sorted({key for row in rows for key in row} - set(OUTPUT_COLUMNS))
            writer = csv.DictWriter(handle, OUTPUT_COLUMNS + extra)
            writer.writeheader()
            writer.writerows(rows)
    return 0


def _jds(args: argparse.Namespace) -> dict[str, str]:
    given = [args.jd is not None, args.jd_file is not None, args.jds is not None]
    if sum(given) != 1:
        raise InputError("give exactly one JD: the text, --jd-file PATH or --jds JSONL")
    if args.jd is not None:
        return {"jd": args.jd}
    if args.jd_file is not None:
        return {Path(args.jd_file).name: _single_text(Path(args.jd_file))}
    docs = read_documents(args.jds, "jsonl", args.text_field, args.id_field)
    return {doc.id: doc.text for doc in docs}


def _single_text(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    from cvsearch.parsing import decode_text

    text = decode_text(path.read_bytes(), str(path), RunReport())
    if not text.strip():
        raise InputError(f"{path}: the JD file is empty")
    return text


def cmd_delete(args: argparse.Namespace) -> int:
    index = _index(args)
    removed = index.delete(args.ids)
    print(f"removed {removed} vector(s) of {len(args.ids)} CV id(s) from search")
    if args.purge:
        return _purge(index, args.db)
    print("their bytes stay on disk until `cre purge` (or `cre delete --purge`) rebuilds the collection")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    return _purge(_index(args), args.db)


def _purge(index: CVIndex, db: str) -> int:
    counts = index.purge()
    print(f"purged {db}: {counts['cvs']} CV(s), {counts['vectors']} vector(s) copied; deleted rows erased")
    return 0


def cmd_demo_corpus(args: argparse.Namespace) -> int:
    from cvsearch.demo import write_demo_corpus

    written = write_demo_corpus(args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


COMMANDS = {
    "encode": cmd_encode,
    "index": cmd_index,
    "search": cmd_search,
    "delete": cmd_delete,
    "purge": cmd_purge,
    "demo-corpus": cmd_demo_corpus,
}
