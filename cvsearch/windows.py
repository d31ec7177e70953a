"""Read a whole résumé: overlapping token windows, each encoded, and a CV scored from its windows.

The model reads the first :meth:`CREModel.token_budget` tokens of a text (256 by default) while real
résumés run to about 1,000 tokens. :func:`split_windows` cuts a text into windows of ``size`` tokens
that start every ``stride`` tokens, and a CV's score comes from its windows' by one of
:data:`~common.windows.SCHEMES` (:mod:`common.windows`, shared with the evaluation). A JD search
reads ``first`` (truncation) by default, a recruiter question ``max`` (see docs/search.md for the
measurements).

Example:
    >>> Windows(size=128).resolve(load_model("minilm"), "cv")  # doctest: +SKIP
    (128, 96)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.windows import check_scheme, cut_windows, default_stride, text_room, token_spans
from cvsearch.parsing import Document

# How a search scores a CV from its windows, by what the query is: a JD asks about the whole CV and
# reads its opening (on unseen real résumés every other scheme lost to it); a recruiter question asks
# about one place in it, which only its best window holds.
DEFAULT_SCHEMES = {"jd": "first", "query": "max"}
# What a search may be asked with: a JD, or a recruiter question (the model's ``query`` kind).
SEARCH_KINDS = tuple(DEFAULT_SCHEMES)


def search_scheme(kind: str, scheme: str | None = None) -> str:
    """The window scoring of a search with ``kind`` (``jd`` or ``query``): ``scheme`` when given,
    else :data:`DEFAULT_SCHEMES` ``[kind]``.

    Raises:
        ValueError: ``kind`` is not one of :data:`SEARCH_KINDS`, or ``scheme`` not one of
            :data:`~common.windows.SCHEMES` (each message names the choices).

    Example:
        >>> search_scheme("jd"), search_scheme("query"), search_scheme("query", "mean")
        ('first', 'max', 'mean')
        >>> search_scheme("cv")
        Traceback (most recent call last):
        ...
        ValueError: unknown search kind 'cv'; choose from ('jd', 'query')
    """
    if kind not in DEFAULT_SCHEMES:
        raise ValueError(f"unknown search kind {kind!r}; choose from {SEARCH_KINDS}")
    scheme = DEFAULT_SCHEMES[kind] if scheme is None else scheme
    check_scheme(scheme)
    return scheme


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
        stride = default_stride(size) if self.stride is None else self.stride
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


def split_windows(model: Any, text: str, size: int, stride: int) -> list[str]:
    """Cut ``text`` into overlapping windows of ``size`` tokens starting every ``stride`` tokens.

    Each window is a slice of the original text (so encoding it re-reads the same tokens); the last
    window ends at the text's end. A text of at most ``size`` tokens is one window: itself.
    """
    return cut_windows(text, token_spans(model.tokenizer, [text])[0], size, stride)


def expand(
    model: Any, documents: Sequence[Document], kind: str, windows: Windows | None
) -> tuple[list[Row], int]:
    """The rows to encode: one per document, or one per window with ``windows``.

    Returns:
        The rows and how many documents are longer than the model reads (truncated without windows).
    """
    room = text_room(model, kind)
    size, stride = windows.resolve(model, kind) if windows is not None else (room, room)
    # One batched call (the fast tokenizer's own threads), not one per document.
    offsets = token_spans(model.tokenizer, [doc.text for doc in documents])
    rows, long_documents = [], 0
    for doc, spans in zip(documents, offsets, strict=True):
        long_documents += len(spans) > room
        pieces = [doc.text] if windows is None else cut_windows(doc.text, spans, size, stride)
        rows += [Row(doc.id, chunk, piece, doc.source, doc.metadata) for chunk, piece in enumerate(pieces)]
    return rows, long_documents
