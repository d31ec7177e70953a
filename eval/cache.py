"""On-disk embedding cache keyed by model, input kind and text.

Encoding thousands of texts on a CPU takes minutes, and a comparison re-encodes the same corpus for
every benchmark run; the cache makes reruns instant. Each model gets a folder named by its
fingerprint; :meth:`EmbeddingCache.fetch` encodes what is missing in shards of ``shard_size`` texts
and appends each (``shard-*.npy`` vectors plus ``shard-*.keys`` text hashes) as soon as it is done,
so an interrupted run keeps what it finished and the next one resumes.

The default root is ``$CRE_EMBEDDING_CACHE`` if set, else ``$CRE_CACHE/embeddings`` (``$CRE_CACHE``
defaults to ``~/.cache/cre``, the root of every CRE cache). The vectors are derived from the texts
(CVs included) and can leak information about them, so :func:`cache_entries` and :func:`clear_cache`
list and delete them, per model or all at once (``python -m eval cache info|clear``); the same goes for
the LLM answer cache of the synthesis and the judge (``common.chat.default_answer_cache_dir``).

Example:
    >>> import numpy as np, tempfile
    >>> cache = EmbeddingCache(tempfile.mkdtemp(), "toy")
    >>> vectors = cache.fetch(["a", "b"], "jd", lambda texts: np.ones((len(texts), 2), np.float32))
    >>> vectors.shape
    (2, 2)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.paths import cre_cache_root


def default_embedding_cache_dir() -> Path:
    """``$CRE_EMBEDDING_CACHE`` if set (an override kept for older setups), else ``$CRE_CACHE/embeddings``.

    Example:
        >>> default_embedding_cache_dir()  # with CRE_CACHE=/data/cre  # doctest: +SKIP
        PosixPath('/data/cre/embeddings')
    """
    return Path(os.environ.get("CRE_EMBEDDING_CACHE") or cre_cache_root() / "embeddings")


def readable_name(spec: str) -> str:
    """The file-name-safe part of a model spec that starts its cache folder's name.

    Example:
        >>> readable_name("outputs/cre ckpt")
        'cre_ckpt'
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(spec).name or spec)[:40]


@dataclass
class CacheEntry:
    """One model's cached embeddings.

    Attributes:
        folder: The folder (named by the model's fingerprint).
        vectors: Cached vectors.
        size_bytes: Bytes on disk.
    """

    folder: Path
    vectors: int
    size_bytes: int


def _belongs_to(folder_name: str, spec: str) -> bool:
    """Whether a cache folder holds vectors of ``spec``: any version of it (weights and length are
    hashed into the name) and its task views, or exactly that folder."""
    pattern = rf"{re.escape(readable_name(spec))}-[0-9a-f]{{16}}(-.+)?"
    return folder_name == spec or re.fullmatch(pattern, folder_name) is not None


def cache_entries(root: str | os.PathLike, models: list[str] | None = None) -> list[CacheEntry]:
    """The model folders under an embedding cache root, all or those of ``models`` (specs or folder names).

    Example:
        >>> import numpy as np, tempfile
        >>> root = tempfile.mkdtemp()
        >>> _ = EmbeddingCache(root, "minilm-0123456789abcdef").fetch(["a"], "jd", lambda t: np.ones((1, 2)))
        >>> [(entry.folder.name, entry.vectors) for entry in cache_entries(root, ["minilm"])]
        [('minilm-0123456789abcdef', 1)]
    """
    entries = []
    for folder in sorted(Path(root).glob("*/")):
        if models and not any(_belongs_to(folder.name, spec) for spec in models):
            continue
        files = [path for path in folder.rglob("*") if path.is_file()]
        vectors = sum(len(path.read_text().split()) for path in files if path.suffix == ".keys")
        entries.append(CacheEntry(folder, vectors, sum(path.stat().st_size for path in files)))
    return entries


def clear_cache(root: str | os.PathLike, models: list[str] | None = None) -> list[CacheEntry]:
    """Delete the cached embeddings of ``models`` (all models when ``None``) and return what was deleted.

    Raises:
        ValueError: ``models`` were named but none of them has cached vectors under ``root``.
    """
    entries = cache_entries(root, models)
    if models and not entries:
        raise ValueError(f"no cached embeddings of {', '.join(models)} under {root}")
    for entry in entries:
        shutil.rmtree(entry.folder)
    return entries


def text_key(text: str, kind: str) -> str:
    """Hash of one input; the kind is part of it because CRE prepends a per-kind instruction."""
    return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()[:32]


class EmbeddingCache:
    """Embeddings of one model, stored in ``root / fingerprint``.

    Args:
        root: Cache root folder.
        fingerprint: Identifies the model and every setting that changes its vectors.
    """

    def __init__(self, root: str | os.PathLike, fingerprint: str):
        self.folder = Path(root) / fingerprint
        self._vectors: dict[str, np.ndarray] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        for keys_file in sorted(self.folder.glob("shard-*.keys")):
            vectors_file = keys_file.with_suffix(".npy")
            if not vectors_file.exists():  # a shard interrupted between its two writes
                continue
            keys = keys_file.read_text().split()
            vectors = np.load(vectors_file)
            if len(keys) != len(vectors):
                continue
            self._vectors.update(zip(keys, vectors, strict=True))
        self._loaded = True

    def fetch(
        self,
        texts: list[str],
        kind: str,
        encode_missing: Callable[[list[str]], np.ndarray],
        shard_size: int = 1024,
    ) -> np.ndarray:
        """Return vectors for ``texts`` in order, encoding (once) and storing those not yet cached.

        Args:
            texts: Inputs; duplicates are encoded once.
            kind: Input kind, part of the key.
            encode_missing: Encodes a list of distinct texts into a float32 matrix.
            shard_size: Texts encoded and written per shard, so an interrupted run loses little.
        """
        self._load()
        keys = [text_key(text, kind) for text in texts]
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in self._vectors}
        pending = list(missing.items())
        for start in range(0, len(pending), shard_size):
            shard_keys, shard_texts = zip(*pending[start : start + shard_size], strict=True)
            vectors = np.asarray(encode_missing(list(shard_texts)), dtype=np.float32)
            self._write_shard(list(shard_keys), vectors)
            self._vectors.update(zip(shard_keys, vectors, strict=True))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._vectors[key] for key in keys])

    def _write_shard(self, keys: list[str], vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"shard-{uuid.uuid4().hex}"
        np.save(stem.with_suffix(".npy"), vectors)
        # Keys last: a shard only counts once both files exist.
        stem.with_suffix(".keys").write_text("\n".join(keys))
