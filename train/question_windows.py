"""Recruiter questions trained on the windows that search reads.

Synthesis pairs each recruiter question with the CV block that answers it (a blank-line separated
passage of a few dozen tokens). Search and evaluation compare a question with windows of a whole
passage or CV, cut by :func:`common.windows.cut_windows`. With ``R2Recipe.question_windows`` Round 2
trains on those windows: each question's positive becomes the window of its CV, cut the same way,
that holds most of its block (:func:`question_windows`).

Windows of one CV overlap, and questions about one CV share a batch (its other passages are the hard
negatives). A window of the same CV that holds part of a question's block answers that question, so
it is taken out of the question's negatives (:func:`answered_by`) rather than taught as wrong.

Example:
    >>> keys = torch.tensor([[0, 10, 20, 0, 50], [0, 60, 70, 5, 90]])  # two questions about one CV
    >>> answered_by(keys, keys).tolist()  # question 1's window (5–90) also holds question 0's block
    [[True, True], [False, True]]
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from common.windows import default_stride, token_spans, window_spans
from train.data import problems_error

# The integers each windowed question carries, in this order, so that a batch's rows (and other
# processes' rows, gathered) can be compared without their texts.
KEY_FIELDS = ("cv_key", "answer_start", "answer_end", "window_start", "window_end")


def question_windows(
    records: Sequence[dict], tokenizer: Any, size: int, seed: int, source: str = "cv_queries.jsonl"
) -> list[dict]:
    """Each question with, as its positive, the window of its ``cv`` that holds most of its block.

    Args:
        records: Question rows (``query``, ``positive`` — the block —, ``cv``; ``_line`` from
            :func:`train.data.read_records`).
        tokenizer: A fast tokenizer (character offsets), the model's.
        size: Tokens per window: what the model reads of a CV after its instruction.
        seed: Breaks ties between windows that hold a block equally (a block inside two overlapping
            windows), reproducibly.
        source: The file the records came from, for error messages.

    Returns:
        Copies of the records: ``positive`` is the window's text, plus the integers of
        :data:`KEY_FIELDS` (the CV's number in this list, the block's and the window's character spans).

    Raises:
        TrainingDataError: A block that is not a passage of its ``cv`` (``file:line``).
    """
    texts = list(dict.fromkeys(record["cv"] for record in records))
    spans = {
        text: window_spans(offsets, size, default_stride(size), len(text))
        for text, offsets in zip(texts, token_spans(tokenizer, texts), strict=True)
    }
    keys = {text: number for number, text in enumerate(texts)}
    windowed, problems = [], []
    for record in records:
        cv, block = record["cv"], record["positive"]
        start = cv.find(block)
        if start < 0:
            problems.append(
                f"{source}:{record.get('_line', '?')}: field 'positive' is not a passage of field 'cv'"
            )
            continue
        end = start + len(block)
        overlaps = [min(end, right) - max(start, left) for left, right in spans[cv]]
        most = max(overlaps)
        best = [span for span, overlap in zip(spans[cv], overlaps, strict=True) if overlap == most]
        left, right = random.Random(f"{seed}:{record.get('_line', record['query'])}").choice(best)
        windowed.append(
            record
            | {"positive": cv[left:right]}
            | dict(zip(KEY_FIELDS, (keys[cv], start, end, left, right), strict=True))
        )
    if problems:
        raise problems_error(f"{len(problems)} question(s) without their passage", problems)
    return windowed


def window_keys(examples: Sequence[dict], device: torch.device | None = None) -> torch.Tensor:
    """The :data:`KEY_FIELDS` of windowed questions as an ``(n, 5)`` integer tensor."""
    return torch.tensor([[example[field] for field in KEY_FIELDS] for example in examples], device=device)


def answered_by(questions: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """``(q, w)`` booleans: window ``j`` is of question ``i``'s CV and holds part of its block.

    Args:
        questions: :func:`window_keys` of the questions.
        windows: :func:`window_keys` of the windows' own questions (the candidates).
    """
    same_cv = questions[:, None, 0] == windows[None, :, 0]
    overlap = (windows[None, :, 3] < questions[:, None, 2]) & (questions[:, None, 1] < windows[None, :, 4])
    return same_cv & overlap
