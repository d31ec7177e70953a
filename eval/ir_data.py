"""Retrieval datasets: queries, corpus and graded relevance judgments, validated on load.

Two on-disk formats are read:

* llama-index's ``EmbeddingQAFinetuneDataset`` JSON: ``{"queries": {qid: text}, "corpus": {did: text},
  "relevant_docs": {qid: [did, ...]}}`` (every listed document has gain 1);
* TREC: a qrels file (``qid 0 did gain`` per line, whitespace separated) plus queries and corpus as
  ``id<TAB>text`` TSV or JSON-lines files with ``_id``/``id`` and ``text`` (a ``title`` is prepended).

Validation policy: duplicate query or document ids, and judgments that name an unknown query or
document, are errors that name the file, line and id. Queries without any relevant document are
dropped and counted in :attr:`IRDataset.skipped` (the metrics are undefined for them).

Example:
    >>> ds = IRDataset.from_dicts({"q1": "python dev"}, {"d1": "cv", "d2": "cv2"}, {"q1": {"d1": 1}})
    >>> ds.num_judged_queries
    1
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.lines import read_json_lines, read_lines


class DatasetFormatError(ValueError):
    """A dataset file or mapping that breaks the format; the message names where."""


@dataclass
class IRDataset:
    """An evaluation set. Build it with :meth:`from_dicts` or a loader so that it is validated.

    Attributes:
        queries: Query id -> text.
        corpus: Document id -> text.
        qrels: Query id -> {document id: gain > 0}; only queries with a relevant document.
        skipped: Reason -> query ids dropped for it (e.g. ``"no relevant documents"``).
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, float]]
    skipped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def num_judged_queries(self) -> int:
        return len(self.qrels)

    @classmethod
    def from_dicts(
        cls,
        queries: Mapping[str, str],
        corpus: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, float]],
        source: str = "<dict>",
    ) -> IRDataset:
        """Validate and build a dataset.

        Raises:
            DatasetFormatError: Judgments name an unknown query or document (all are listed).
        """
        unknown_queries = sorted(set(qrels) - set(queries))
        if unknown_queries:
            raise DatasetFormatError(
                f"{source}: relevance judgments name {len(unknown_queries)} unknown query ids: "
                f"{_preview(unknown_queries)}"
            )
        unknown_docs = sorted({d for judged in qrels.values() for d in judged} - set(corpus))
        if unknown_docs:
            raise DatasetFormatError(
                f"{source}: relevance judgments name {len(unknown_docs)} unknown document ids: "
                f"{_preview(unknown_docs)}"
            )
        positive = {q: {d: float(g) for d, g in judged.items() if g > 0} for q, judged in qrels.items()}
        judged = {q: j for q, j in positive.items() if j}
        unjudged = sorted(set(queries) - set(judged))
        return cls(
            queries=dict(queries),
            corpus=dict(corpus),
            qrels=judged,
            skipped={"no relevant documents": unjudged} if unjudged else {},
        )

    def judged_queries(self) -> Iterator[tuple[str, str]]:
        """Yield ``(query id, text)`` for the queries that have relevance judgments, sorted by id."""
        for qid in sorted(self.qrels):
            yield qid, self.queries[qid]


def _preview(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def _unique_pairs(pairs: Iterator[tuple[str, str, int]], source: str, what: str) -> dict[str, str]:
    """Collect ``(id, text, line)`` triples, rejecting duplicate ids with both line numbers."""
    result: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for item_id, text, line in pairs:
        if item_id in result:
            raise DatasetFormatError(
                f"{source}:{line}: duplicate {what} id {item_id!r} (first seen on line {first_line[item_id]})"
            )
        result[item_id] = text
        first_line[item_id] = line
    return result


def load_llama_index_json(path: str | Path) -> IRDataset:
    """Read llama-index's ``{"queries", "corpus", "relevant_docs"}`` JSON.

    JSON objects cannot hold duplicate keys once parsed, so duplicates are detected while parsing.
    """
    path = Path(path)

    def reject_duplicates(items: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise DatasetFormatError(f"{path}: duplicate id {key!r}")
            seen.add(key)
        return dict(items)

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=reject_duplicates)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    missing = [key for key in ("queries", "corpus", "relevant_docs") if key not in data]
    if missing:
        raise DatasetFormatError(f"{path}: missing top-level field(s) {missing}")
    qrels: dict[str, dict[str, float]] = {}
    for qid, doc_ids in data["relevant_docs"].items():
        if not isinstance(doc_ids, list):
            raise DatasetFormatError(f"{path}: relevant_docs[{qid!r}] must be a list of document ids")
        if len(set(doc_ids)) != len(doc_ids):
            raise DatasetFormatError(f"{path}: relevant_docs[{qid!r}] lists a document id twice")
        qrels[qid] = dict.fromkeys(doc_ids, 1.0)
    return IRDataset.from_dicts(data["queries"], data["corpus"], qrels, source=str(path))


def read_trec_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """Read ``qid iter did gain`` lines (``#`` comments and blank lines ignored).

    Raises:
        DatasetFormatError: A malformed line or a (query, document) pair judged twice.
    """
    path = Path(path)
    qrels: dict[str, dict[str, float]] = {}
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4:
            raise DatasetFormatError(
                f"{path}:{line_no}: expected 'qid iter docid gain', got {len(fields)} fields"
            )
        qid, _, did, gain = fields
        try:
            value = float(gain)
        except ValueError:
            raise DatasetFormatError(f"{path}:{line_no}: gain {gain!r} is not a number") from None
        if did in qrels.setdefault(qid, {}):
            raise DatasetFormatError(f"{path}:{line_no}: query {qid!r} judges document {did!r} twice")
        qrels[qid][did] = value
    return qrels


def read_texts(path: str | Path, what: str = "text") -> dict[str, str]:
    """Read ``id<TAB>text`` (``.tsv``) or JSON lines with ``_id``/``id``, ``text`` and optional ``title``."""
    path = Path(path)
    if path.suffix == ".tsv":
        return _unique_pairs(_tsv_rows(path), str(path), what)
    return _unique_pairs(_jsonl_rows(path), str(path), what)


def _tsv_rows(path: Path) -> Iterator[tuple[str, str, int]]:
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        item_id, sep, text = line.partition("\t")
        if not sep:
            raise DatasetFormatError(f"{path}:{line_no}: expected 'id<TAB>text'")
        yield item_id, text, line_no


def _jsonl_rows(path: Path) -> Iterator[tuple[str, str, int]]:
    for line_no, record in read_json_lines(path, error=DatasetFormatError):
        item_id = record.get("_id", record.get("id"))
        if item_id is None or "text" not in record:
            raise DatasetFormatError(f"{path}:{line_no}: a record needs '_id' (or 'id') and 'text'")
        title = record.get("title")
        yield str(item_id), f"{title}\n{record['text']}" if title else record["text"], line_no


def load_trec(queries: str | Path, corpus: str | Path, qrels: str | Path) -> IRDataset:
    """Read a TREC-style dataset: queries and corpus files plus a qrels file."""
    return IRDataset.from_dicts(
        read_texts(queries, "query"),
        read_texts(corpus, "document"),
        read_trec_qrels(qrels),
        source=str(qrels),
    )
