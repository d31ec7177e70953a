"""Encode a corpus into vectors with ids, resumably, in one process or several (``accelerate launch``).

Output folder layout (all written atomically: a temporary file, then a rename)::

    OUT/manifest.json     what was encoded (model, kind, task, windows, a hash of the rows)
    OUT/shards/NNNNN.npy  float32 vectors of rows [N·shard_size, (N+1)·shard_size)
    OUT/vectors.npy       all vectors, (rows, dim) float32, unit length, in input order
    OUT/rows.jsonl        one line per vector: {"id", "chunk", "source", "metadata"}
    OUT/report.json       the run report (documents, skipped files, shards encoded and reused, ...)

A killed run is resumed by running the same command again: the manifest must match (same model,
settings and rows), finished shards are kept and only the missing ones are encoded. Under
``accelerate launch`` process ``r`` of ``n`` encodes shards ``r, r+n, ...`` and the main process
merges them in order, so the output does not depend on the number of processes.

Example:
    >>> from cvsearch.parsing import Document
    >>> docs = [Document("a", "Python developer", "cvs.txt:1"), Document("b", "Nurse", "cvs.txt:2")]
    >>> corpus = encode_corpus(load_model("minilm"), docs, "vectors/")  # doctest: +SKIP
    >>> corpus.vectors.shape, corpus.ids  # doctest: +SKIP
    ((2, 384), ['a', 'b'])
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.lines import read_json_lines
from cvsearch.parsing import Document, RunReport
from cvsearch.windows import Row, Windows, expand

DEFAULT_SHARD_SIZE = 256
ENCODING_FILES = ("manifest.json", "vectors.npy", "rows.jsonl", "report.json")  # besides shards/


def process_state() -> Any:
    """This process's :class:`~accelerate.PartialState`: its rank, the number of processes, its device.

    Without a GPU, ``PartialState()`` leaves the processes of ``accelerate launch --num_processes 2``
    unaware of each other (each would encode every shard); asked for CPU, they share the work over gloo.
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def load_model(spec: str, device: str | None = None) -> Any:
    """A CRE model: a checkpoint folder (``config.json`` with ``model_type: cre``) is loaded as
    :class:`CREModel`; a backbone alias (``minilm``, ``mpnet``, ...) or other folder is wrapped zero-shot.

    Args:
        spec: A checkpoint folder, a backbone alias or a Hub id.
        device: Where to run it (``None``: this process's device, a GPU of its own under ``accelerate
            launch``, else the CPU).

    Example:
        >>> model = load_model("minilm")  # doctest: +SKIP
    """
    from common.models import load_model as load_cre_model  # here: importing transformers takes seconds

    return load_cre_model(spec).to(device or process_state().device).eval()


@dataclass
class EncodedCorpus:
    """Vectors and, row for row, what each one is.

    Attributes:
        vectors: ``(rows, dim)`` float32, unit length.
        rows: ``{"id", "chunk", "source", "metadata"}`` per vector.
    """

    vectors: np.ndarray
    rows: list[dict[str, Any]]

    @property
    def ids(self) -> list[str]:
        """The document id of each row."""
        return [row["id"] for row in self.rows]

    @classmethod
    def load(cls, folder: str | os.PathLike) -> EncodedCorpus:
        """Read ``vectors.npy`` and ``rows.jsonl`` of a finished :func:`encode_corpus` folder.

        Raises:
            FileNotFoundError: The folder holds no finished output.
        """
        folder = Path(folder)
        if not (folder / "rows.jsonl").is_file():
            raise FileNotFoundError(f"{folder} holds no finished encoding (rows.jsonl is missing)")
        rows = [row for _, row in read_json_lines(folder / "rows.jsonl")]
        return cls(np.load(folder / "vectors.npy"), rows)


def atomic_write(path: Path, write) -> None:
    """Call ``write(temporary_path)``, then rename it to ``path``: readers never see half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def encode_corpus(
    model: Any,
    documents: Sequence[Document],
    out_dir: str | os.PathLike,
    kind: str = "cv",
    task: str | None = "jd-cv",
    batch_size: int = 32,
    shard_size: int = DEFAULT_SHARD_SIZE,
    windows: Windows | None = None,
    report: RunReport | None = None,
    progress: bool = True,
) -> EncodedCorpus:
    """Encode ``documents`` into ``out_dir`` (see the module docstring), resuming a killed run.

    Args:
        model: A :class:`CREModel` (see :func:`load_model`).
        documents: What to encode (see :func:`cvsearch.parsing.read_documents`).
        out_dir: Output folder; a folder of an earlier, unfinished run of the same input resumes.
        kind: Input kind (``cv``, ``jd``, ``query``, ``document``).
        task: What the vectors are compared with (``jd-cv``, ``jd-jd`` or ``title``; ``None``: the model's
            default).
        batch_size: Texts per forward pass.
        shard_size: Rows per shard (the unit of resumption).
        windows: Encode every window of long texts (see :mod:`cvsearch.windows`) instead of the opening.
        report: Run report to add counts to (a new one if ``None``); written to ``out_dir/report.json``.
        progress: Show a tqdm progress bar (rows).

    Returns:
        The merged output (on every process).

    Raises:
        ValueError: No documents, a bad ``shard_size``, or ``out_dir`` holds another input's vectors.
    """
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    if not documents:
        raise ValueError("no documents to encode")
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    report = report if report is not None else RunReport()
    state = process_state()
    out, shards = Path(out_dir), Path(out_dir) / "shards"
    rows, long_documents = expand(model, documents, kind, windows)
    manifest = _manifest(model, rows, kind, task, windows, shard_size)
    if state.is_main_process:
        shards.mkdir(parents=True, exist_ok=True)
        _check_manifest(out / "manifest.json", manifest)
        for partial in shards.glob(".*"):  # half-written by a killed run (atomic_write's temporaries)
            partial.unlink()
    state.wait_for_everyone()

    count = -(-len(rows) // shard_size)
    mine = [n for n in range(count) if n % state.num_processes == state.process_index]
    todo = [n for n in mine if not _shard_path(shards, n).is_file()]
    bar = tqdm(
        total=sum(len(rows[n * shard_size : (n + 1) * shard_size]) for n in mine),
        initial=sum(len(rows[n * shard_size : (n + 1) * shard_size]) for n in mine if n not in todo),
        desc=f"Encoding {kind}" + (f" (process {state.process_index})" if state.num_processes > 1 else ""),
        unit="text",
        disable=not progress,
    )
    for n in todo:
        texts = [row.text for row in rows[n * shard_size : (n + 1) * shard_size]]
        with warnings.catch_warnings():
            # Long texts are counted once for the whole run (report), not warned about per shard.
            warnings.filterwarnings("ignore", message=r".* were truncated\.")
            vectors = model.encode(
                texts, kind=kind, task=task, batch_size=batch_size, normalize=True, show_progress=False
            )
        atomic_write(_shard_path(shards, n), lambda path, v=vectors: np.save(path, v))
        bar.update(len(texts))
    bar.close()
    encoded = sum(gather_object([len(todo)])) if state.num_processes > 1 else len(todo)
    state.wait_for_everyone()
    if state.is_main_process:
        vectors = np.concatenate([np.load(_shard_path(shards, n)) for n in range(count)])
        atomic_write(out / "vectors.npy", lambda path: np.save(path, vectors))
        lines = [json.dumps({k: v for k, v in asdict(row).items() if k != "text"}) for row in rows]
        atomic_write(
            out / "rows.jsonl", lambda path: path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        )
        report.extra.update(
            vectors=len(rows),
            longer_than_the_model_reads=long_documents,
            processes=state.num_processes,
            shards_encoded=encoded,
            shards_reused=count - encoded,
        )
        report.write(out / "report.json")
    state.wait_for_everyone()
    return EncodedCorpus.load(out)


def _shard_path(folder: Path, number: int) -> Path:
    return folder / f"{number:05d}.npy"


def _manifest(
    model: Any, rows: list[Row], kind: str, task: str | None, windows: Windows | None, shard_size: int
) -> dict[str, Any]:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.id, row.chunk, row.text]).encode("utf-8"))
    return {
        "model": str(model.config.name_or_path),
        "model_config": hashlib.sha256(model.config.to_json_string().encode()).hexdigest()[:16],
        "kind": kind,
        "task": task,
        "windows": None if windows is None else asdict(windows),
        "shard_size": shard_size,
        "rows": len(rows),
        "rows_sha256": digest.hexdigest(),
    }


def _check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != manifest:
            changed = sorted(key for key in manifest if previous.get(key) != manifest[key])
            raise ValueError(
                f"{path.parent} holds vectors of another run (different {', '.join(changed)}); "
                "use a new output folder or delete this one"
            )
        return
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(manifest, indent=2) + "\n"))
