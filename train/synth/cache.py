"""Reusable pieces for LLM backends: an on-disk answer cache keyed by the request, and retries with backoff.

The cache makes an interrupted run lose nothing and a rerun pay nothing twice: every answer is written
(atomically, one small JSON file per request) as soon as it arrives, keyed by a hash of the generator's
identity, the messages and the sampling parameters.

Example:
    >>> import tempfile
    >>> from train.synth.cache import AnswerCache, retry
    >>> cache = AnswerCache(tempfile.mkdtemp())
    >>> key = cache.key({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    >>> cache.put(key, "hello"); cache.get(key)
    'hello'
    >>> retry(lambda: 42, retries=2, backoff=0.0, retry_on=(OSError,))
    42
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


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


def retry(
    call: Callable[[], T],
    *,
    retries: int,
    backoff: float,
    retry_on: tuple[type[BaseException], ...],
    max_backoff: float = 30.0,
) -> T:
    """Run ``call``; on one of ``retry_on`` wait ``backoff * 2**attempt`` (with jitter) and try again.

    Args:
        call: What to run.
        retries: How many times to retry after the first failure.
        backoff: First wait in seconds.
        retry_on: Exception types worth retrying; others propagate at once.
        max_backoff: Cap on a single wait.

    Raises:
        The last exception once ``retries`` are used up.
    """
    for attempt in range(retries + 1):
        try:
            return call()
        except retry_on as error:
            if attempt == retries:
                raise
            wait = min(max_backoff, backoff * 2**attempt) * (0.5 + random.random() / 2)
            logger.info("attempt %d failed (%s); retrying in %.2fs", attempt + 1, error, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")
