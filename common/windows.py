"""Long texts read in windows: where to cut them, and how a document's score comes from its windows.

A model reads the first few hundred tokens of a text; résumés and résumé passages run longer.
:func:`cut_windows` cuts a text into windows of ``size`` tokens that start every ``stride`` tokens
(:func:`default_stride`: three quarters of a window); window 0 is exactly what truncation reads.
A document's score is a weighted sum of its windows' scores (:func:`window_weights`):

* ``first``: window 0 only (truncation);
* ``mean``: the mean over windows;
* ``max``: the best window (MaxP): what a question about one place in the text needs;
* ``first+max``: ``(s_first + w·max(s_all)) / (1 + w)``: the opening (title, skills) counts most,
  a strong later window adds to it; a one-window text scores ``s_first``.

Both the search tool (:mod:`cvsearch.windows`) and the evaluation (:mod:`eval.protocols`) read
windows through this module, so that a measurement and a search cut and score alike.

Example:
    >>> import numpy as np
    >>> scores = np.array([0.5, 0.2, 0.8])
    >>> [round(aggregate(scores, scheme), 3) for scheme in SCHEMES]
    [0.5, 0.5, 0.8, 0.6]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SCHEMES = ("first", "mean", "max", "first+max")
FIRST_MAX_WEIGHT = 0.5


def default_stride(size: int) -> int:
    """Tokens between window starts when none is given: three quarters of a window, so that a phrase
    cut at one window's end is whole in the next.

    Example:
        >>> default_stride(256), default_stride(1)
        (192, 1)
    """
    return max(1, size * 3 // 4)


def token_spans(tokenizer: Any, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Character span of each token of each text, without special tokens: the ``offsets`` that
    :func:`window_spans` and :func:`cut_windows` take (one batched call of a fast tokenizer)."""
    encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [[tuple(span) for span in spans] for spans in encoded["offset_mapping"]]


def window_spans(
    offsets: Sequence[tuple[int, int]], size: int, stride: int, length: int
) -> list[tuple[int, int]]:
    """Character spans of the windows :func:`cut_windows` cuts from a text of ``length`` characters.

    Example:
        >>> window_spans([(i, i + 1) for i in range(0, 9, 2)], size=3, stride=2, length=9)
        [(0, 5), (4, 9)]
    """
    if len(offsets) <= size:
        return [(0, length)]
    starts = sorted(set(range(0, len(offsets) - size, stride)) | {len(offsets) - size})
    # Window 0 starts at character 0 so it is the exact text truncation reads.
    return [(0 if s == 0 else offsets[s][0], offsets[s + size - 1][1]) for s in starts]


def cut_windows(text: str, offsets: Sequence[tuple[int, int]], size: int, stride: int) -> list[str]:
    """Cut ``text`` into overlapping windows of ``size`` tokens starting every ``stride`` tokens.

    Each window is a slice of the original text (so encoding it re-reads the same tokens); the last
    window ends at the text's end. A text of at most ``size`` tokens is one window: itself.

    Args:
        text: The text.
        offsets: Character span of each of its tokens (a fast tokenizer's ``offset_mapping`` without
            special tokens).
        size: Tokens per window.
        stride: Tokens between window starts.

    Example:
        >>> text = "a b c d e"
        >>> cut_windows(text, [(i, i + 1) for i in range(0, 9, 2)], size=3, stride=2)
        ['a b c', 'c d e']
    """
    return [text[start:end] for start, end in window_spans(offsets, size, stride, len(text))]


def text_room(model: Any, kind: str, max_length: int | None = None) -> int:
    """Tokens of a ``kind`` text that a CRE model reads within ``max_length`` (default: its own):
    the budget minus the kind's instruction and the special tokens, i.e. the size of a whole window."""
    overhead = len(model.tokenize([""], kind=kind, max_length=max_length)["input_ids"][0])
    return model.token_budget(max_length) - overhead


def window_weights(scores: np.ndarray, scheme: str = "first", weight: float = FIRST_MAX_WEIGHT) -> np.ndarray:
    """How much each window of one document counts: the document's score is ``weights @ scores``.

    Weights rather than a number, so the parts of a reranked score (cosine, boundary, feedback) can be
    combined with the same weights and still add up to the document's score.

    Raises:
        ValueError: Unknown ``scheme``, no scores, or a non-finite score (never ranked silently).

    Example:
        >>> window_weights(np.array([0.5, 0.2, 0.8]), "first+max", weight=1.0).tolist()
        [0.5, 0.0, 0.5]
    """
    scores = np.asarray(scores, dtype=np.float64)
    check_scheme(scheme)
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


def aggregate(scores: np.ndarray, scheme: str = "first", weight: float = FIRST_MAX_WEIGHT) -> float:
    """One document's score from its window scores (in window order); see :func:`window_weights`."""
    return float(window_weights(scores, scheme, weight) @ np.asarray(scores, dtype=np.float64))


def document_scores(
    scores: np.ndarray, starts: np.ndarray, scheme: str, weight: float = FIRST_MAX_WEIGHT
) -> np.ndarray:
    """:func:`aggregate` for many queries and documents at once.

    Args:
        scores: ``(queries, windows)`` scores, each document's windows in order and contiguous.
        starts: Index of each document's first window (ascending; ``starts[0] == 0``).
        scheme: One of :data:`SCHEMES`.
        weight: ``w`` of ``first+max``.

    Returns:
        ``(queries, documents)`` scores.

    Raises:
        ValueError: Unknown ``scheme``, or a non-finite score (never ranked silently).

    Example:
        >>> s = np.array([[0.5, 0.2, 0.8, 0.1]])
        >>> document_scores(s, np.array([0, 3]), "max").tolist()
        [[0.8, 0.1]]
    """
    check_scheme(scheme)
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("window scores must be finite (a NaN would be ranked silently)")
    first = scores[:, starts]
    if scheme == "first":
        return first
    if scheme == "mean":
        counts = np.diff(np.append(starts, scores.shape[1]))
        return np.add.reduceat(scores, starts, axis=1) / counts
    best = np.maximum.reduceat(scores, starts, axis=1)
    return best if scheme == "max" else (first + weight * best) / (1 + weight)


def check_scheme(scheme: str) -> None:
    """Raises ValueError naming the choices when ``scheme`` is not one of :data:`SCHEMES`."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown window scoring {scheme!r}; choose from {SCHEMES}")
