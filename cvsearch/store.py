"""CVs in a vector database (Milvus), searched with a JD or a recruiter question and reranked by the CRE model.

:class:`CVIndex` keeps one row per CV vector (one per window with :class:`~cvsearch.windows.Windows`)
in a Milvus collection. The same code runs against Milvus Lite (``db="cvs.db"``, an engine inside
the Python process, data in that folder) and a Milvus server or cluster (``db="http://host:19530"``):
it uses only the ``MilvusClient`` calls both implement (no partitions, no ``group_by``, no filter
templates), and ids are written into filters as JSON string literals.

Collection schema: ``pk`` (``"{cv_id}#{chunk}"``, primary key), ``cv_id``, ``chunk`` (window number, 0 =
the opening), ``windows`` (the CV's window count), ``source``, ``content_sha`` (text, metadata and window settings: re-adding an unchanged
CV costs nothing), ``vector`` and the user's metadata columns as dynamic fields.

Index: HNSW (M=16, efConstruction=200) with the inner product metric: the vectors are unit length, so
inner product is cosine, the model's own similarity. HNSW is built into Milvus Lite (through faiss)
and every Milvus server, needs no training pass (IVF needs one, and a re-train as the corpus grows),
and reaches ANN recall@50 ≥ 0.99 with ``ef`` ≥ the number of candidates (bench/search.py).
``exact=True`` scans every vector instead (the reference for recall, and fine for small corpora).

Hybrid (``hybrid=True`` when the collection is created): each CV's opening row also holds the CV's
whole text (``cv_text``, analysed by Milvus) and its BM25 term vector (``cv_sparse``, filled by
Milvus's BM25 function, ``SPARSE_INVERTED_INDEX``); other windows hold an empty text, so BM25 scores
whole CVs. ``search(..., hybrid=True)`` then takes candidates from the dense index and from BM25 and
orders them by reciprocal-rank fusion (:mod:`common.fusion`) of the model's rerank order and BM25's
order. The text is stored only because the engine needs it for BM25: results never include it, and
deleting a CV removes its text with its vectors (they are the same rows).

Example:
    >>> from cvsearch.encoding import load_model
    >>> from cvsearch.parsing import read_documents
    >>> index = CVIndex(load_model("minilm"), db="cvs.db")  # doctest: +SKIP
    >>> index.add(read_documents("resumes/"))  # doctest: +SKIP
    {'documents': 8, 'unchanged': 0, 'vectors': 8}
    >>> index.search("Senior Python developer, AWS", top_k=3)[0]["id"]  # doctest: +SKIP
    'backend_engineer.pdf'
    >>> index.search("Who ran Kubernetes clusters?", kind="query", top_k=3)[0]["id"]  # doctest: +SKIP
    'devops_engineer.pdf'
    >>> index.delete(["backend_engineer.pdf"])  # doctest: +SKIP
    1
    >>> index.purge()  # the deleted rows leave the disk too  # doctest: +SKIP
    {'cvs': 7, 'vectors': 7}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from common.fusion import ranked, reciprocal_rank_fusion
from common.windows import FIRST_MAX_WEIGHT, window_weights
from cvsearch.encoding import DEFAULT_SHARD_SIZE, ENCODING_FILES, encode_corpus
from cvsearch.parsing import Document, RunReport
from cvsearch.windows import Windows, search_scheme

RESERVED_FIELDS = (
    "pk",
    "cv_id",
    "chunk",
    "windows",
    "source",
    "content_sha",
    "vector",
    "cv_text",
    "cv_sparse",
)
# Milvus's longest VARCHAR: the most text (UTF-8 bytes) a hybrid index can hold for BM25 per CV.
MAX_TEXT_BYTES = 65_535
MAX_ID_LENGTH = 512
HNSW_BUILD = {"M": 16, "efConstruction": 200}
# Windowed searches first fetch this many window hits per wanted CV (several windows of one CV can
# fill the ANN result), doubling while too few distinct CVs come back (Milvus returns ≤ 16,384 hits).
WINDOW_OVERFETCH = 4
MAX_SEARCH_LIMIT = 16_384
IO_BATCH = 1000
# Collections of a purge in progress (see CVIndex.purge): the verified copy, and the original while
# the copy takes its name.
PURGE_COPY, PURGE_RETIRED = "__purge_copy", "__purge_retired"

logger = logging.getLogger(__name__)


class PurgeError(RuntimeError):
    """A purge stopped before changing anything: its copy did not hold what the collection holds."""


class CVIndex:
    """A searchable CV collection.

    Args:
        model: The :class:`CREModel` that encodes CVs, JDs and questions and reranks (same model for add
            and search).
        db: Milvus Lite folder (``cvs.db``) or a Milvus server URI (``http://host:19530``).
        collection: Collection name.
        windows: Store every window of long CVs (see :mod:`cvsearch.windows`); ``None``: the opening.
        task: The model's task for CV and JD vectors.
        token: Milvus credentials (``user:password`` or an API key) for a server.
        hybrid: Create the collection with each CV's text and BM25 term vector, for
            ``search(..., hybrid=True)``. An existing collection keeps how it was built
            (:attr:`hybrid` tells).

    Raises:
        ValueError: The collection exists with vectors of another dimension (another model), or
            ``hybrid`` is asked of a collection built without it.
    """

    def __init__(
        self,
        model: Any,
        db: str | os.PathLike = "cvs.db",
        collection: str = "cvs",
        windows: Windows | None = None,
        task: str | None = "jd-cv",
        token: str = "",
        hybrid: bool = False,
    ):
        from pymilvus import MilvusClient

        self.model, self.collection, self.windows, self.task = model, collection, windows, task
        self.dim = int(model.config.output_dim)
        self.client = MilvusClient(uri=str(db), token=token)
        self.hybrid = hybrid
        self._db, self._where = str(db), f"collection {collection!r} in {db}"
        self._finish_interrupted_purge()
        if self.client.has_collection(collection):
            fields = self.client.describe_collection(collection)["fields"]
            self.hybrid = any(f["name"] == "cv_sparse" for f in fields)
            if hybrid and not self.hybrid:
                raise ValueError(self._not_hybrid())
            dim = next(int(f["params"]["dim"]) for f in fields if f["name"] == "vector")
            if dim != self.dim:
                raise ValueError(
                    f"collection {collection!r} in {db} holds {dim}-dimensional vectors but the model "
                    f"makes {self.dim}: search with the model that built the index, or use another collection"
                )
            self.client.load_collection(collection)  # a server keeps collections released until asked
        else:
            self._create()

    def _not_hybrid(self) -> str:
        return (
            f"{self._where} was indexed without --hybrid and stores no text for BM25: re-index the CVs "
            "with `cre index --hybrid` (CVIndex(..., hybrid=True)) into a new --collection or database"
        )

    def _create(self, name: str | None = None) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH + 24)
        schema.add_field("cv_id", DataType.VARCHAR, max_length=MAX_ID_LENGTH)
        schema.add_field("chunk", DataType.INT64)
        schema.add_field("windows", DataType.INT64)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("content_sha", DataType.VARCHAR, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        index = self.client.prepare_index_params()
        index.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params=HNSW_BUILD)
        if self.hybrid:
            schema.add_field("cv_text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True)
            schema.add_field("cv_sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function(
                    name="cv_bm25",
                    function_type=FunctionType.BM25,
                    input_field_names=["cv_text"],
                    output_field_names=["cv_sparse"],
                )
            )
            index.add_index(field_name="cv_sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(name or self.collection, schema=schema, index_params=index)

    # ------------------------------------------------------------------ writing

    def add(
        self,
        documents: Sequence[Document],
        work_dir: str | os.PathLike | None = None,
        batch_size: int = 32,
        shard_size: int = DEFAULT_SHARD_SIZE,
        report: RunReport | None = None,
        progress: bool = True,
    ) -> dict[str, int]:
        """Encode and store ``documents``; a CV already stored with the same content is skipped, a
        changed one replaces all its old vectors.

        Args:
            documents: CVs (ids unique; see :func:`cvsearch.parsing.read_documents`).
            work_dir: Where :func:`~cvsearch.encoding.encode_corpus` keeps its shards, so a killed
                ``add`` resumes without re-encoding (default: a temporary folder). Removed on success.
            batch_size: Encoding batch size.
            shard_size: Rows per encoding shard.
            report: Run report to add counts to.
            progress: Progress bars.

        Returns:
            ``documents`` (added or replaced), ``unchanged`` (skipped) and ``vectors`` (written).

        Raises:
            ValueError: Duplicate or too long ids, metadata named like a reserved field, or (hybrid
                index) a CV whose text is longer than :data:`MAX_TEXT_BYTES`.
        """
        _check_documents(documents, MAX_TEXT_BYTES if self.hybrid else None)
        texts = {doc.id: doc.text for doc in documents} if self.hybrid else {}
        shas = {doc.id: self._content_sha(doc) for doc in documents}
        stored = self._stored_shas(list(shas))
        changed = [doc for doc in documents if stored.get(doc.id) != shas[doc.id]]
        result = {"documents": len(changed), "unchanged": len(documents) - len(changed), "vectors": 0}
        if changed:
            with tempfile.TemporaryDirectory() as temporary:
                folder = Path(work_dir or temporary)
                corpus = encode_corpus(
                    self.model, changed, folder, "cv", self.task, batch_size, shard_size, self.windows,
                    report, progress,
                )  # fmt: skip
                self._delete_rows([doc.id for doc in changed])
                windows = Counter(corpus.ids)
                entities = [
                    {
                        **row["metadata"],
                        "pk": f"{row['id']}#{row['chunk']}",
                        "cv_id": row["id"],
                        "chunk": row["chunk"],
                        "windows": windows[row["id"]],
                        "source": row["source"],
                        "content_sha": shas[row["id"]],
                        "vector": vector.tolist(),
                        # The whole CV on its opening row, so that BM25 ranks CVs, not windows.
                        **({"cv_text": texts[row["id"]] if row["chunk"] == 0 else ""} if self.hybrid else {}),
                    }
                    for row, vector in zip(corpus.rows, corpus.vectors, strict=True)
                ]
                for start in range(0, len(entities), IO_BATCH):
                    self.client.insert(self.collection, entities[start : start + IO_BATCH])
                result["vectors"] = len(entities)
                if work_dir is not None:
                    _remove_encoding(folder)
        if report is not None:
            report.extra.update({f"index_{key}": value for key, value in result.items()})
        return result

    def delete(self, ids: Iterable[str]) -> int:
        """Remove every vector (all windows) of the CVs ``ids``; returns how many vectors were removed.

        Milvus deletes logically: the rows leave search at once and the disk with :meth:`purge`.

        Example:
            >>> index.delete(["cv-123"])  # doctest: +SKIP
            4
        """
        return self._delete_rows(list(ids))

    def _delete_rows(self, ids: list[str]) -> int:
        removed = 0
        for start in range(0, len(ids), IO_BATCH):
            where = _in_filter(ids[start : start + IO_BATCH])
            removed += self._count(where)
            self.client.delete(self.collection, filter=where)
        return removed

    def count(self, collection: str | None = None) -> dict[str, int]:
        """``cvs`` and ``vectors`` stored (in this index's collection, or in ``collection``)."""
        return {
            "cvs": self._count("chunk == 0", collection),
            "vectors": self._count("chunk >= 0", collection),
        }

    def _count(self, where: str, collection: str | None = None) -> int:
        rows = self.client.query(collection or self.collection, filter=where, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    # ------------------------------------------------------------------ erasing deleted rows

    def purge(self, progress: bool = True) -> dict[str, int]:
        """Rebuild the collection from its live rows, so that deleted CVs leave the disk.

        Milvus deletes logically: :meth:`delete` hides rows from search, but their bytes (vectors,
        metadata, a hybrid index's text) stay in the collection's files. ``purge`` copies every live
        row as stored (vectors, metadata, text; Milvus recomputes the BM25 term vectors from the
        text), with no re-encoding and no original files, into a new collection of the same schema
        and index settings, checks that it holds as many CVs and vectors, and then puts it in the
        old one's place and drops the old one. Milvus Lite removes a dropped collection's folder at
        once; a Milvus server removes its files when it collects dropped collections.

        A kill at any point loses nothing: the old collection is only dropped once the copy is
        complete and holds its name, and the next :class:`CVIndex` on this collection finishes or
        undoes an interrupted purge (with a warning saying which). Nothing else may write to the
        collection while it runs (Milvus Lite's lock ensures that for a local folder).

        Args:
            progress: Show a progress bar (vectors copied).

        Returns:
            ``cvs`` and ``vectors`` now stored (all of them copied).

        Raises:
            ValueError: The collection's schema is not the one this version creates (re-index it).
            PurgeError: The copy does not hold what the collection holds (the collection is left
                as it was and the copy is dropped).

        Example:
            >>> index.delete(["cv-123"])  # doctest: +SKIP
            4
            >>> index.purge()  # doctest: +SKIP
            {'cvs': 7, 'vectors': 31}
        """
        from tqdm.auto import tqdm

        copy, retired = self.collection + PURGE_COPY, self.collection + PURGE_RETIRED
        self._create(copy)
        # One bar for the copy; its label then names the steps Milvus does in one call each (the
        # rename of the copy writes its files and builds its vector index, which can outlast the copy).
        bar = tqdm(
            total=self._count("chunk >= 0"), desc="Purging: copying", unit="vector", disable=not progress
        )
        with bar:
            try:
                self._check_same_schema(copy)
                self._copy_rows(copy, bar)
                bar.set_description("Purging: verifying")
                expected, copied = self.count(), self.count(copy)
                if copied != expected:
                    raise PurgeError(
                        f"purge of {self._where}: the copy holds {copied} but the collection {expected}; "
                        "the collection is unchanged (was something writing to it?)"
                    )
            except BaseException:
                self.client.drop_collection(copy)  # the collection itself is untouched
                raise
            # Two renames, so that each step leaves a complete collection that the next CVIndex
            # finds (see _finish_interrupted_purge); only then is the old collection dropped.
            bar.set_description("Purging: swapping in the copy")
            self.client.rename_collection(self.collection, retired)
            self.client.rename_collection(copy, self.collection)
            bar.set_description("Purging: dropping the old collection")
            self._drop(retired)
            self.client.load_collection(self.collection)
            bar.set_description("Purged")
        return copied

    def _check_same_schema(self, copy: str) -> None:
        """Refuse to copy into ``copy`` what it cannot hold as it is (fields, vector indexes)."""

        def fields(name: str) -> list[tuple]:
            described = self.client.describe_collection(name)["fields"]
            return [(f["name"], f["type"], f.get("params"), f.get("is_primary", False)) for f in described]

        def indexes(name: str) -> list[tuple]:
            described = [self.client.describe_index(name, index) for index in self.client.list_indexes(name)]
            return sorted((d["field_name"], d["index_type"], d["metric_type"]) for d in described)

        if fields(copy) != fields(self.collection) or indexes(copy) != indexes(self.collection):
            raise ValueError(
                f"{self._where} was built with another schema than this version of cvsearch creates, so "
                "purge cannot copy it as it is: re-index the CVs into a new --collection or database"
            )

    def _copy_rows(self, copy: str, bar: Any) -> None:
        """Insert every row of the collection into ``copy``, as stored, in pages of :data:`IO_BATCH`
        (``bar``: a tqdm bar counting the rows)."""
        described = self.client.describe_collection(self.collection)["fields"]
        # Function outputs (the BM25 term vectors) are computed by Milvus on insert and refused as input.
        computed = {f["name"] for f in described if f.get("is_function_output")}
        iterator = self.client.query_iterator(
            self.collection, batch_size=IO_BATCH, filter="chunk >= 0", output_fields=["*"]
        )
        try:
            while batch := iterator.next():
                self.client.insert(
                    copy, [{k: v for k, v in row.items() if k not in computed} for row in batch]
                )
                bar.update(len(batch))
        finally:
            iterator.close()

    def _finish_interrupted_purge(self) -> None:
        """Finish or undo a purge that was killed, from the collections it left.

        ``purge`` goes: copy under ``NAME__purge_copy`` → rename ``NAME`` to ``NAME__purge_retired``
        → rename the copy to ``NAME`` → drop the retired one. So a copy beside ``NAME`` is unverified
        (dropped: ``NAME`` is whole), a retired collection beside ``NAME`` is the old one (dropped:
        ``NAME`` is the verified copy), and a copy and a retired one without ``NAME`` mean the copy
        was verified (it takes the name).
        """
        name = self.collection
        copy, retired = name + PURGE_COPY, name + PURGE_RETIRED
        existing = set(self.client.list_collections())  # one call: this runs on every open
        has = {key: key in existing for key in (name, copy, retired)}
        if has[copy] and has[name]:
            logger.warning(
                "%s: removing the unfinished copy of an interrupted purge; the collection is unchanged "
                "(deleted CVs are still on disk: run `cre purge` again)",
                self._where,
            )
            self.client.drop_collection(copy)
        elif has[copy] and has[retired]:
            logger.warning("%s: finishing an interrupted purge (its copy was complete)", self._where)
            self.client.rename_collection(copy, name)
        elif has[copy] or (has[retired] and not has[name]):
            # Not a state purge leaves: nothing is dropped, the user decides.
            raise ValueError(
                f"{self._where} is missing, and the collection {copy if has[copy] else retired!r} of an "
                "interrupted purge is there without its counterpart: check it (CVIndex(..., collection="
                "that name)) and rename it (MilvusClient.rename_collection) if it is complete"
            )
        if has[retired]:  # ``name`` exists by now: without it and the copy, the branch above raised
            logger.warning("%s: dropping the old collection of an interrupted purge", self._where)
            self._drop(retired)
        # Neither is a collection any more, so what is left of their folders is a killed drop's.
        for leftover in (copy, retired):
            self._drop_leftover_folder(leftover)

    def _drop(self, collection: str) -> None:
        self.client.drop_collection(collection)
        self._drop_leftover_folder(collection)

    def _drop_leftover_folder(self, collection: str) -> None:
        """Remove what a killed create or drop left of ``collection``'s folder in a Milvus Lite database.

        Milvus Lite deletes a folder file by file and no longer lists the collection once its
        ``schema.json`` is gone, so a kill mid-drop can leave data files it never removes (and a
        folder without it blocks creating the collection again).
        """
        folder = Path(self._db, "collections", collection)
        if "://" not in self._db and folder.is_dir():
            logger.warning("%s: removing what a killed purge left of %s", self._where, folder)
            shutil.rmtree(folder)

    def _content_sha(self, doc: Document) -> str:
        windows = None if self.windows is None else asdict(self.windows)
        payload = json.dumps([doc.text, doc.source, doc.metadata, windows, self.task], sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _stored_shas(self, ids: list[str]) -> dict[str, str]:
        stored = {}
        for start in range(0, len(ids), IO_BATCH):
            where = f"chunk == 0 and {_in_filter(ids[start : start + IO_BATCH])}"
            for row in self.client.query(
                self.collection, filter=where, output_fields=["cv_id", "content_sha"]
            ):
                stored[row["cv_id"]] = row["content_sha"]
        return stored

    # ------------------------------------------------------------------ searching

    def encode_queries(self, texts: Sequence[str], kind: str = "jd", batch_size: int = 32) -> np.ndarray:
        """Vectors of JDs (``kind="jd"``) or recruiter questions (``kind="query"``) for :meth:`search`
        and :meth:`candidates` (unit length; the model puts the kind's instruction in front).

        Raises:
            ValueError: ``kind`` is not ``jd`` or ``query``.

        Example:
            >>> index.encode_queries(["Who worked with Kubernetes at a bank?"], kind="query").shape  # doctest: +SKIP
            (1, 384)
        """
        search_scheme(kind)  # an unknown kind fails here, naming the allowed ones
        return self.model.encode(
            list(texts), kind=kind, task=self.task, batch_size=batch_size, normalize=True
        )

    def encode_jds(self, jds: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """JD vectors: :meth:`encode_queries` with ``kind="jd"``."""
        return self.encode_queries(jds, "jd", batch_size)

    def has_windows(self) -> bool:
        """Whether any CV here is stored as more than one window.

        The collection does not record the :class:`~cvsearch.windows.Windows` it was built with, so
        this reads the rows: ``False`` for an index built without windows, and also for one built with
        them whose CVs all fit in one window. Either way every window scoring then equals ``first``.
        """
        return self._count("chunk > 0") > 0

    def candidates(
        self,
        jd_vector: np.ndarray,
        n: int = 200,
        exact: bool = False,
        scheme: str | None = None,
        kind: str = "jd",
    ) -> list[str]:
        """The ``n`` CV ids whose best vector is closest to ``jd_vector`` (ANN, or every vector when ``exact``).

        With the ``first`` scheme only each CV's opening (chunk 0) is searched; otherwise every window.
        ``scheme=None`` is the default for ``kind`` (``first`` for a JD, ``max`` for a question;
        :data:`~cvsearch.windows.DEFAULT_SCHEMES`).

        Raises:
            ValueError: An unknown ``kind`` or ``scheme``.

        Example:
            >>> question = index.encode_queries(["Who led a data team?"], kind="query")[0]  # doctest: +SKIP
            >>> index.candidates(question, n=2, kind="query")  # every window searched  # doctest: +SKIP
            ['cv-17', 'cv-3']
        """
        scheme = search_scheme(kind, scheme)
        where = "chunk == 0" if scheme == "first" else "chunk >= 0"
        if exact:
            return self._exact_candidates(jd_vector, n, where)
        limit = min(MAX_SEARCH_LIMIT, n if scheme == "first" else n * WINDOW_OVERFETCH)
        while True:
            hits = self.client.search(
                self.collection,
                data=[np.asarray(jd_vector, dtype=np.float32).tolist()],
                limit=limit,
                filter=where,
                output_fields=["cv_id"],
                anns_field="vector",  # a hybrid collection has a second (sparse) vector field
                # HNSW returns at most ef hits, so ef grows with the hits asked for.
                search_params={"metric_type": "IP", "params": {"ef": max(limit, 64)}},
            )[0]
            found = list(dict.fromkeys(hit["entity"]["cv_id"] for hit in hits))
            # Too few distinct CVs: their windows filled the hits; ask for more until the corpus
            # or Milvus's limit runs out.
            if len(found) >= n or len(hits) < limit or limit == MAX_SEARCH_LIMIT:
                return found[:n]
            limit = min(MAX_SEARCH_LIMIT, limit * 2)

    def _exact_candidates(self, jd_vector: np.ndarray, n: int, where: str) -> list[str]:
        best: dict[str, float] = {}
        iterator = self.client.query_iterator(
            self.collection, batch_size=IO_BATCH, filter=where, output_fields=["cv_id", "vector"]
        )
        try:
            while batch := iterator.next():
                scores = np.asarray([row["vector"] for row in batch], dtype=np.float32) @ jd_vector
                for row, score in zip(batch, scores, strict=True):
                    best[row["cv_id"]] = max(best.get(row["cv_id"], -np.inf), float(score))
        finally:
            iterator.close()
        return sorted(best, key=lambda cv: -best[cv])[:n]

    def search(
        self,
        jd: str | np.ndarray,
        top_k: int = 50,
        candidates: int = 200,
        exact: bool = False,
        scheme: str | None = None,
        weight: float = FIRST_MAX_WEIGHT,
        feedback_top_k: int | None = None,
        feedback_weight: float | None = None,
        hybrid: bool = False,
        jd_text: str | None = None,
        kind: str = "jd",
    ) -> list[dict[str, Any]]:
        """Top ``candidates`` CVs by vector search, reranked by the model, best ``top_k`` returned.

        ``kind`` says what is asked: a JD (``jd``, the default) or a recruiter question (``query``,
        e.g. "Who worked with Kubernetes at a bank?"). A text is encoded with that kind's instruction,
        and the window scoring defaults by it (:data:`~cvsearch.windows.DEFAULT_SCHEMES`): a JD reads
        each CV's opening (``first``), a question each CV's best window (``max``), since it asks about
        one place in the CV. On an index built without windows (one vector per CV) every scoring reads
        the opening alone (:meth:`has_windows`).

        With ``hybrid``, BM25 over the stored CV texts proposes ``candidates`` CVs too; all of them
        are reranked by the model, and the final order is the reciprocal-rank fusion
        (:func:`~common.fusion.reciprocal_rank_fusion`, k 60) of the model's order and BM25's, so a
        CV that names the JD's rare keywords (an employer, a tool) rises even where the vectors miss
        it, while the BoundaryHead and candidate feedback still shape the model's side.

        The rerank reads the stored vectors (no CV is re-encoded): ``CREModel.rerank`` scores every
        window of every candidate (BoundaryHead and candidate feedback as the checkpoint configures),
        and a CV's score and its parts are its windows' combined by ``scheme``
        (:func:`~common.windows.window_weights`).

        Args:
            jd: JD or question text, or its vector (:meth:`encode_queries` with the same ``kind``).
            top_k: CVs returned.
            candidates: CVs the vector search hands to the reranker.
            exact: Scan every vector instead of the HNSW index.
            scheme: Window scoring (``first``, ``mean``, ``max``, ``first+max``); ``None``: the
                default for ``kind``.
            weight: ``w`` of ``first+max``.
            feedback_top_k: Override the checkpoint's candidate feedback ``k`` (0 = off).
            feedback_weight: Override the checkpoint's candidate feedback weight.
            hybrid: Fuse with BM25 (the collection must have been built with ``hybrid=True``).
            jd_text: The JD's text when ``jd`` is its vector (BM25 needs words).
            kind: ``jd`` or ``query``.

        Returns:
            Dicts, best first: ``id``, ``score``, ``cosine``, ``boundary``, ``feedback`` (``None`` when the
            model has none), ``source``, ``windows`` and the CV's metadata fields; with ``hybrid`` also
            ``rrf`` (the fused score), ``model_rank`` (the CV's place in the model's order of all
            candidates) and ``bm25_rank`` (``None``: BM25 did not propose it). Never the CV text.

        Raises:
            ValueError: ``top_k`` or ``candidates`` below 1, an unknown ``kind`` or ``scheme``, or
                ``hybrid`` on a collection built without it or without the JD text.

        Example:
            >>> index.search("Python developer, formerly at Initech", hybrid=True)[0]["bm25_rank"]  # doctest: +SKIP
            1
            >>> hits = index.search("Who worked with Kubernetes at a bank?", kind="query")  # scored by max  # doctest: +SKIP
            >>> hits = index.search("Who worked with Kubernetes at a bank?", kind="query", scheme="first")  # doctest: +SKIP
        """
        if top_k < 1 or candidates < 1:
            raise ValueError(f"top_k and candidates must be at least 1, got {top_k} and {candidates}")
        scheme = search_scheme(kind, scheme)
        text = jd if isinstance(jd, str) else jd_text
        if hybrid and not self.hybrid:
            raise ValueError(self._not_hybrid())
        if hybrid and not (text and text.strip()):
            raise ValueError("a hybrid search needs the JD text for BM25: pass it as jd, or as jd_text")
        if isinstance(jd, str):
            jd_vector = self.encode_queries([jd], kind)[0]
        else:
            jd_vector = np.asarray(jd, dtype=np.float32)
        lexical = self.bm25_candidates(text, candidates) if hybrid else []
        ids = list(dict.fromkeys([*self.candidates(jd_vector, candidates, exact, scheme), *lexical]))
        if not ids:
            return []
        results = self._rerank(jd_vector, ids, scheme, weight, feedback_top_k, feedback_weight)
        return (_fuse(results, lexical) if hybrid else results)[:top_k]

    def bm25_candidates(self, text: str, n: int = 200) -> list[str]:
        """The ``n`` CV ids BM25 ranks best for ``text``, best first (a hybrid collection only).

        Example:
            >>> index.bm25_candidates("Initech, Kubernetes", n=3)  # doctest: +SKIP
            ['cv-17', 'cv-3']
        """
        if not self.hybrid:
            raise ValueError(self._not_hybrid())
        hits = self.client.search(
            self.collection,
            data=[text],
            anns_field="cv_sparse",
            limit=min(n, MAX_SEARCH_LIMIT),
            filter="chunk == 0",  # the row holding the CV's whole text
            output_fields=["cv_id"],
            search_params={"metric_type": "BM25"},
        )[0]
        return [hit["entity"]["cv_id"] for hit in hits]

    def _rerank(
        self,
        jd_vector: np.ndarray,
        ids: list[str],
        scheme: str,
        weight: float,
        feedback_top_k: int | None,
        feedback_weight: float | None,
    ) -> list[dict[str, Any]]:
        """The model's scores of the CVs ``ids`` (their windows combined by ``scheme``), best first."""
        rows = self._rows(ids, first_only=scheme == "first")
        with warnings.catch_warnings():
            # A zero-shot model has no BoundaryHead; the output's boundary column says so (None).
            warnings.filterwarnings("ignore", message="This checkpoint has no trained BoundaryHead")
            reranked = self.model.rerank(
                jd_vector,
                np.asarray([row["vector"] for row in rows], dtype=np.float32),
                feedback_top_k=feedback_top_k,
                feedback_weight=feedback_weight,
            )
        parts = {key: np.full(len(rows), np.nan) for key in ("score", "cosine", "boundary", "feedback")}
        for item in reranked:
            for key in parts:
                if item[key] is not None:
                    parts[key][item["corpus_id"]] = item[key]
        windows_of: dict[str, list[int]] = defaultdict(list)
        for position, row in enumerate(rows):
            windows_of[row["cv_id"]].append(position)
        results = []
        for cv_id, positions in windows_of.items():
            weights = window_weights(parts["score"][positions], scheme, weight)
            first = rows[positions[0]]
            result = {"id": cv_id}
            for key, values in parts.items():
                value = float(weights @ values[positions])
                result[key] = None if np.isnan(value) else value
            metadata = {k: v for k, v in first.items() if k not in RESERVED_FIELDS}
            results.append({**result, "source": first["source"], "windows": len(positions), **metadata})
        results.sort(key=lambda item: -item["score"])
        return results

    def _rows(self, ids: list[str], first_only: bool) -> list[dict[str, Any]]:
        """Stored rows of ``ids`` (vectors included), grouped by CV and in window order.

        Read by primary key (``"{cv_id}#{chunk}"``, the window count is stored with each row): a
        lookup, where a filter on ``cv_id`` would scan the collection.
        """
        first = self._get([f"{cv_id}#0" for cv_id in ids])
        rest = [] if first_only else [f"{r['cv_id']}#{c}" for r in first for c in range(1, r["windows"])]
        rank = {cv_id: position for position, cv_id in enumerate(ids)}
        return sorted(first + self._get(rest), key=lambda row: (rank[row["cv_id"]], row["chunk"]))

    def _get(self, keys: list[str]) -> list[dict[str, Any]]:
        rows = []
        for start in range(0, len(keys), IO_BATCH):
            rows += self.client.get(self.collection, ids=keys[start : start + IO_BATCH], output_fields=["*"])
        return rows

    def recall_against_exact(
        self, jd_vectors: np.ndarray, k: int = 50, scheme: str | None = None, kind: str = "jd"
    ) -> float:
        """Mean share of the exact top ``k`` CVs that the ANN top ``k`` finds, over ``jd_vectors``
        (candidates as :meth:`candidates` finds them for ``kind`` and ``scheme``).

        Raises:
            ValueError: An unknown ``kind`` or ``scheme``.

        Example:
            >>> index.recall_against_exact(index.encode_jds(["Data engineer", "Nurse"]), k=50)  # doctest: +SKIP
            1.0
            >>> questions = index.encode_queries(["Who led a data team?"], kind="query")  # doctest: +SKIP
            >>> index.recall_against_exact(questions, k=50, kind="query")  # every window  # doctest: +SKIP
            1.0
        """
        scheme = search_scheme(kind, scheme)
        shares = []
        for vector in np.asarray(jd_vectors, dtype=np.float32):
            exact = set(self.candidates(vector, k, True, scheme))
            shares.append(len(set(self.candidates(vector, k, False, scheme)) & exact) / max(1, len(exact)))
        return float(np.mean(shares))


def _in_filter(ids: Sequence[str]) -> str:
    # JSON string literals are Milvus string literals, quotes and backslashes escaped alike.
    return f"cv_id in {json.dumps(list(ids), ensure_ascii=False)}"


def _fuse(results: list[dict[str, Any]], lexical: list[str]) -> list[dict[str, Any]]:
    """``results`` (the model's, best first) in the order of their RRF with BM25's ranking ``lexical``."""
    by_id = {result["id"]: result for result in results}
    fused = reciprocal_rank_fusion(
        [{cv_id: result["score"] for cv_id, result in by_id.items()}, ranked(lexical)]
    )
    return [
        {
            **by_id[cv_id],
            "rrf": float(score),
            "model_rank": int(model_rank),
            "bm25_rank": int(bm25_rank) or None,
        }
        for cv_id, score, (model_rank, bm25_rank) in zip(*fused, strict=True)
    ]


def _check_documents(documents: Sequence[Document], max_text_bytes: int | None = None) -> None:
    seen: set[str] = set()
    for position, doc in enumerate(documents):
        if doc.id in seen:
            raise ValueError(f"documents[{position}]: id {doc.id!r} appears twice")
        seen.add(doc.id)
        if not doc.id or len(doc.id.encode("utf-8")) > MAX_ID_LENGTH:
            raise ValueError(
                f"documents[{position}]: id must be 1..{MAX_ID_LENGTH} bytes, got {doc.id[:40]!r}…"
            )
        size = len(doc.text.encode("utf-8"))
        if max_text_bytes is not None and size > max_text_bytes:
            raise ValueError(
                f"documents[{position}] ({doc.id!r}): the text is {size:,} bytes; a hybrid index keeps at "
                f"most {max_text_bytes:,} bytes of text per CV for BM25 (split or shorten it)"
            )
        clash = sorted(set(doc.metadata) & set(RESERVED_FIELDS))
        if clash:
            raise ValueError(
                f"documents[{position}] ({doc.id!r}): metadata field(s) {clash} are reserved names"
            )


def _remove_encoding(folder: Path) -> None:
    """Remove what :func:`encode_corpus` wrote (and only that) once the vectors are stored."""
    for path in [*sorted((folder / "shards").glob("*.npy")), *(folder / name for name in ENCODING_FILES)]:
        path.unlink(missing_ok=True)
    for empty in (folder / "shards", folder):
        if empty.is_dir() and not any(empty.iterdir()):
            empty.rmdir()
