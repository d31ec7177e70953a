"""Read a whole résumé: overlapping token windows, each encoded, and a CV scored from its windows.

The model reads the first :meth:`CREModel.token_budget` tokens of a text (256 by default) while real
résumés run to about 1,000 tokens. :func:`split_windows` cuts a text into windows of ``size`` tokens
that start every ``stride`` tokens; window 0 is exactly what truncation reads, so the ``first``
scheme reproduces plain truncation. :func:`aggregate` turns the per-window scores of one CV into
its score:

* ``first``: window 0 only (truncation; the default, see docs/search.md for the measurement);
* ``mean``: the mean over windows;
* ``max``: the best window;
* ``first+max``: ``(s_first + w·max(s_all)) / (1 + w)``: the opening (title, skills) counts most,
  a strong later window adds to it; a one-window CV scores ``s_first``.

Example:
    >>> import numpy as np
    >>> scores = np.array([0.5, 0.2, 0.8])
    >>> [round(aggregate(scores, scheme), 3) for scheme in SCHEMES]
    [0.5, 0.5, 0.8, 0.6]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvsearch.parsing import Document

SCHEMES = ("first", "mean", "max", "first+max")
DEFAULT_SCHEME = "first"
FIRST_MAX_WEIGHT = 0.5


@dataclass(frozen=True)
class Windows:
    """How to cut long texts: ``size`` tokens per window (``None``: as many as the model reads after
    its instruction), a new window every ``stride`` tokens (``None``: three quarters of ``size``)."""

    size: int | None = None
    stride: int | None = None

    def resolve(self, model: Any, kind: str) -> tuple[int, int]:
        """``(size, stride)`` in tokens for ``model`` and input ``kind``.

        Raises:
            ValueError: ``stride`` is not in ``1..size``, or ``size`` exceeds what the model reads.
        """
        room = text_room(model, kind)
        size = room if self.size is None else self.size
        if not 1 <= size <= room:
            raise ValueError(f"window size must be 1..{room} tokens for this model and kind, got {size}")
        stride = max(1, size * 3 // 4) if self.stride is None else self.stride
        if not 1 <= stride <= size:
            raise ValueError(f"window stride must be 1..{size} (the window size), got {stride}")
        return size, stride


@dataclass
class Row:
    """One vector to store: a document's window ``chunk`` (0 for the opening or the whole text)."""

    id: str
    chunk: int
    text: str
    source: str
    metadata: dict[str, str]


def text_room(model: Any, kind: str) -> int:
    """Tokens of text the model reads for ``kind``: its budget minus the instruction and special tokens."""
    overhead = len(model.tokenize([""], kind=kind)["input_ids"][0])
    return model.token_budget() - overhead


def token_offsets(model: Any, text: str) -> list[tuple[int, int]]:
    """Character span of each token of ``text`` (no special tokens)."""
    encoding = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [tuple(span) for span in encoding["offset_mapping"]]


def split_windows(model: Any, text: str, size: int, stride: int) -> list[str]:
    """Cut ``text`` into overlapping windows of ``size`` tokens starting every ``stride`` tokens.

    Each window is a slice of the original text (so encoding it re-reads the same tokens); the last
    window ends at the text's end. A text of at most ``size`` tokens is one window: itself.
    """
    return _cut(text, token_offsets(model, text), size, stride)


def _cut(text: str, offsets: list[tuple[int, int]], size: int, stride: int) -> list[str]:
    if len(offsets) <= size:
        return [text]
    starts = list(range(0, len(offsets) - size, stride)) + [len(offsets) - size]
    starts = sorted(set(starts))
    # Window 0 starts at character 0 so it is the exact text truncation reads.
    return [text[(0 if s == 0 else offsets[s][0]) : offsets[s + size - 1][1]] for s in starts]


def expand(
    model: Any, documents: Sequence[Document], kind: str, windows: Windows | None
) -> tuple[list[Row], int]:
    """The rows to encode: one per document, or one per window with ``windows``.

    Returns:
        The rows and how many documents are longer than the model reads (truncated without windows).
    """
    room = text_room(model, kind)
    size, stride = windows.resolve(model, kind) if windows is not None else (room, room)
    texts = [doc.text for doc in documents]
    # One batched call (the fast tokenizer's own threads), not one per document.
    encoded = model.tokenizer(
        texts, add_special_tokens=False, return_offsets_mapping=windows is not None, verbose=False
    )
    rows, long_documents = [], 0
    for position, doc in enumerate(documents):
        long_documents += len(encoded["input_ids"][position]) > room
        pieces = [doc.text]
        if windows is not None:
            pieces = _cut(
                doc.text, [tuple(span) for span in encoded["offset_mapping"][position]], size, stride
            )
        rows += [Row(doc.id, chunk, piece, doc.source, doc.metadata) for chunk, piece in enumerate(pieces)]
    return rows, long_documents


def window_weights(
    scores: np.ndarray, scheme: str = DEFAULT_SCHEME, weight: float = FIRST_MAX_WEIGHT
) -> np.ndarray:
    """How much each window of one CV counts: the CV's score is ``weights @ scores``.

    Weights rather than a number, so the parts of a reranked score (cosine, boundary, feedback) can be
    combined with the same weights and still add up to the CV's score.

    Raises:
        ValueError: Unknown ``scheme``, no scores, or a non-finite score (never ranked silently).

    Example:
        >>> window_weights(np.array([0.5, 0.2, 0.8]), "first+max", weight=1.0).tolist()
        [0.5, 0.0, 0.5]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown window scoring {scheme!r}; choose from {SCHEMES}")
    if scores.ndim != 1 or scores.size == 0 or not np.isfinite(scores).all():
        raise ValueError(f"window scores must be finite and non-empty, got {scores.tolist()}")
    weights = np.zeros_like(scores)
    if scheme == "mean":
        weights[:] = 1 / scores.size
        return weights
    if scheme in ("max", "first+max"):
        weights[int(scores.argmax())] += weight if scheme == "first+max" else 1.0
    if scheme in ("first", "first+max"):
        weights[0] += 1.0
    return weights / weights.sum()


def aggregate(scores: np.ndarray, scheme: str = DEFAULT_SCHEME, weight: float = FIRST_MAX_WEIGHT) -> float:
    """One CV's score from its window scores (in window order); see :func:`window_weights`."""
    return float(window_weights(scores, scheme, weight) @ np.asarray(scores, dtype=np.float64))
