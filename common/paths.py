"""Where CRE keeps what it caches.

Example:
    >>> cre_cache_root()  # with CRE_CACHE=/data/cre  # doctest: +SKIP
    PosixPath('/data/cre')
"""

from __future__ import annotations

import os
from pathlib import Path


def cre_cache_root() -> Path:
    """``$CRE_CACHE`` or ``~/.cache/cre``: where CRE keeps converted backbones, embeddings and LLM answers."""
    return Path(os.environ.get("CRE_CACHE") or Path.home() / ".cache" / "cre")
