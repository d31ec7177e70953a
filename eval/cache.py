"""On-disk embedding cache keyed by model, input kind and text.

Encoding thousands of texts on a CPU takes minutes, and a comparison re-encodes the same corpus for
every benchmark run; the cache makes reruns instant. Each model gets a folder named by its
fingerprint; :meth:`EmbeddingCache.fetch` encodes what is missing in shards of ``shard_size`` texts
and appends each (``shard-*.npy`` vectors plus ``shard-*.keys`` text hashes) as soon as it is done,
so an interrupted run keeps what it finished and the next one resumes.

The default root is ``$CRE_EMBEDDING_CACHE``, else ``~/.cache/cre/embeddings``.

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
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np


def default_embedding_cache_dir() -> Path:
    """``$CRE_EMBEDDING_CACHE`` or ``~/.cache/cre/embeddings``."""
    return Path(os.environ.get("CRE_EMBEDDING_CACHE") or Path.home() / ".cache" / "cre" / "embeddings")


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
