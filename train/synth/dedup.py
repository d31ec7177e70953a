"""Exact and near-duplicate removal with word-shingle MinHash and locality-sensitive hashing.

Example:
    >>> from train.synth.dedup import DuplicateFilter
    >>> seen = DuplicateFilter(threshold=0.8)
    >>> text = "Own the data platform end to end and mentor three engineers in Berlin"
    >>> seen.check(text), seen.check(text), seen.check(text + " today")
    (None, 'exact_duplicate', 'near_duplicate')
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

from train.synth.matching import normalize, words

_PRIME = (1 << 61) - 1


class DuplicateFilter:
    """Remembers texts and flags new ones that repeat (exactly, after normalisation) or nearly repeat one.

    Near duplicates have a Jaccard similarity of word ``shingle``-grams of at least ``threshold``. MinHash
    signatures split into ``bands`` find candidates; the exact Jaccard confirms them, so the result does
    not depend on hashing luck beyond a negligible miss rate.

    Args:
        threshold: Jaccard similarity from which a text is a near duplicate.
        shingle: Words per shingle.
        num_perm: MinHash permutations (a multiple of ``bands``).
        bands: LSH bands.
    """

    def __init__(self, threshold: float = 0.9, shingle: int = 5, num_perm: int = 64, bands: int = 16):
        self.threshold = threshold
        self.shingle = shingle
        self.bands = bands
        rng = np.random.default_rng(0)
        self._a = rng.integers(1, _PRIME, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, _PRIME, size=num_perm, dtype=np.uint64)
        self._exact: set[str] = set()
        self._buckets: dict[tuple, list[int]] = {}
        self._shingles: list[frozenset[int]] = []

    def _shingle_set(self, text: str) -> frozenset[int]:
        tokens = words(text)
        n = min(self.shingle, len(tokens)) or 1
        return frozenset(
            zlib.crc32(" ".join(tokens[i : i + n]).encode()) for i in range(max(1, len(tokens) - n + 1))
        )

    def _signature(self, shingles: frozenset[int]) -> np.ndarray:
        values = np.fromiter(shingles, dtype=np.uint64)
        # (a*x + b) mod p in uint64 wraps; that is still a fine family of hash functions for MinHash.
        hashed = (self._a[:, None] * values[None, :] + self._b[:, None]) % np.uint64(_PRIME)
        return hashed.min(axis=1)

    def check(self, text: str) -> str | None:
        """Return ``"exact_duplicate"`` or ``"near_duplicate"`` for a repeat; otherwise remember it and return ``None``."""
        key = hashlib.sha1(normalize(text).encode("utf-8")).hexdigest()
        if key in self._exact:
            return "exact_duplicate"
        shingles = self._shingle_set(text)
        bands = self._signature(shingles).reshape(self.bands, -1)
        band_keys = [(index, band.tobytes()) for index, band in enumerate(bands)]
        candidates = {item for band_key in band_keys for item in self._buckets.get(band_key, ())}
        for item in sorted(candidates):
            other = self._shingles[item]
            if len(shingles & other) / len(shingles | other) >= self.threshold:
                return "near_duplicate"
        self._exact.add(key)
        self._shingles.append(shingles)
        for band_key in band_keys:
            self._buckets.setdefault(band_key, []).append(len(self._shingles) - 1)
        return None
