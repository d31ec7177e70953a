"""The LLM backends' on-disk answer cache, keyed by the request.

The cache makes an interrupted run lose nothing and a rerun pay nothing twice: every answer is written
(atomically, one small JSON file per request) as soon as it arrives, keyed by a hash of the generator's
identity, the messages and the sampling parameters.

Example:
    >>> import tempfile
    >>> from common.answer_cache import AnswerCache
    >>> cache = AnswerCache(tempfile.mkdtemp())
    >>> key = cache.key({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    >>> cache.put(key, "hello"); cache.get(key)
    'hello'
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


class AnswerCache:
    """Answers on disk under ``folder/<2 hex>/<sha256>.json``; safe for concurrent threads and processes."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(request: dict) -> str:
        """A stable hash of a JSON-serialisable request."""
        return hashlib.sha256(
            json.dumps(request, sort_keys=True, ensure_ascii=False).encode("utf-8")
        ).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached answer, or ``None`` (also for a file left unreadable by a crash)."""
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))["answer"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None

    def put(self, key: str, answer: str) -> None:
        """Store an answer atomically (write a temporary file, then rename)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump({"answer": answer}, stream, ensure_ascii=False)
        os.replace(temporary, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.json"))
