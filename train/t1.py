"""CRE-T1 training data: (query, fitting CV) examples, the policy's prompt, reasoning-expanded copies.

CRE-T1 expands the query side (a JD, a recruiter question) by a short reasoning trace before encoding
it, as :func:`cre.modeling_cre.join_reasoning` writes them. Two trainings need traces:

* the GRPO stage (:mod:`train.grpo`) samples them from a causal LM, the policy, which reads the
  ``reasoning`` prompt that every backend of :class:`train.reasoning.TraceGenerator` answers
  (:func:`policy_prompt`), so a trained policy is a ``local`` backend as it is;
* supervised Round 2 reads a copy of a synthesis run whose queries are already expanded
  (:func:`expand_data_dir`), so ``python -m train.r2 --data <copy>`` trains on it unchanged.

Documents are never expanded.

Command line (writes ``runs/synth-reasoned`` from ``runs/synth`` with rules traces, or with the
traces of a GRPO-trained policy)::

    python -m train.t1 --data runs/synth --out runs/synth-reasoned --generator rules
    python -m train.t1 --data runs/synth --out runs/synth-grpo --generator local --model outputs/grpo/final
    python -m train.r2 --data runs/synth-reasoned --base outputs/r1 --out outputs/r2-t1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run by path (`accelerate launch train/t1.py`): see train/_run_by_path.py
    import _run_by_path  # noqa: F401  (puts the repository root on sys.path)

import torch
from tqdm.auto import tqdm

from common.backbones import check_model_source, resolve_backbone
from common.chat import ALLOW_OPENAI_API_FLAG, GeneratorError
from cre.modeling_cre import join_reasoning
from train.data import TrainingDataError, read_records, report_data_errors, require_records
from train.loop import setup_logging
from train.r2 import load_r2_data
from train.reasoning import BACKENDS, TraceGenerator, parse_trace
from train.synth.prompts import load_prompt

logger = logging.getLogger("train.t1")  # not __name__, which is __main__ under -m


@dataclass(frozen=True)
class QuerySource:
    """A synthesis file of (query, fitting document) records and the input kinds of its two sides."""

    file: str
    query_kind: str
    document_kind: str


# The query side of each: a JD of a Round 2 triplet, a recruiter question over a CV passage. Passages
# are résumé text, so they are encoded as ``cv`` (as the cvseeker benchmark does).
QUERY_SOURCES = {
    "jdcv": QuerySource("jdcv.jsonl", "jd", "cv"),
    "cv_queries": QuerySource("cv_queries.jsonl", "query", "cv"),
}


def source_names(value: str) -> tuple[str, ...]:
    """``--sources``: comma-separated names of :data:`QUERY_SOURCES`.

    Example:
        >>> source_names("jdcv, cv_queries")
        ('jdcv', 'cv_queries')
    """
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(set(names) - set(QUERY_SOURCES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown sources {unknown}; known: {', '.join(QUERY_SOURCES)}")
    return names


def load_query_examples(
    data_dir: str | os.PathLike, sources: Sequence[str] = tuple(QUERY_SOURCES)
) -> list[dict]:
    """The ``train`` (query, fitting document) examples of a synthesis run.

    Args:
        data_dir: The synthesis run folder.
        sources: Names of :data:`QUERY_SOURCES` to read.

    Returns:
        Dicts with ``query``, ``positive`` (the fitting CV or passage) and ``source``, in file order.

    Raises:
        TrainingDataError: A file is missing or malformed, or a source has no ``train`` record.

    Example:
        >>> load_query_examples("runs/synth", ["cv_queries"])[0]["source"]  # doctest: +SKIP
        'cv_queries'
    """
    examples = []
    for name in sources:
        path = Path(data_dir) / QUERY_SOURCES[name].file
        if name == "jdcv":  # Round 2's own reader, so both trainings see the same triplets
            records = load_r2_data(data_dir)
        else:
            records = require_records(
                read_records(path, ["query", "positive"], "train"), f"{path}, split train"
            )
        examples += [{"query": r["query"], "positive": r["positive"], "source": name} for r in records]
    return examples


def policy_prompt(query: str) -> list[dict[str, str]]:
    """The chat messages the policy reads to write a trace for ``query``: the ``reasoning`` prompt of
    :class:`train.reasoning.TraceGenerator`'s backends.

    Example:
        >>> [message["role"] for message in policy_prompt("Senior nurse, ICU")]
        ['system', 'user']
    """
    return load_prompt("reasoning").render({"text": query})


def completion_trace(completion: str | list[dict[str, str]]) -> str:
    """The trace in a generated completion (plain text or chat messages), read as the ``local``
    backend reads its answers (:func:`train.reasoning.parse_trace`).

    Example:
        >>> completion_trace([{"role": "assistant", "content": ' {"trace": "Requires SQL."}'}])
        'Requires SQL.'
    """
    text = completion if isinstance(completion, str) else "".join(m["content"] for m in completion)
    return parse_trace(text)


def load_policy(policy: str | os.PathLike) -> tuple[Any, Any]:
    """A causal LM and its tokenizer (left padding, a pad token) from an alias, folder or Hub id.

    Raises:
        ModelNotFoundError: ``policy`` names no model (see :func:`common.backbones.check_model_source`).
        TrainingDataError: Its tokenizer has no chat template (the ``reasoning`` prompt is a chat).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_backbone(check_model_source(policy))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if not tokenizer.chat_template:
        raise TrainingDataError(
            f"{policy}: the tokenizer has no chat template; the policy must be a chat model"
        )
    tokenizer.padding_side = "left"  # generation continues each prompt from its last position
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(folder), tokenizer


def expand_queries(queries: Sequence[str], reason: Callable[[str], str | None]) -> tuple[list[str], int]:
    """Each query as ``join_reasoning(query, trace)``; a repeated query is sent to ``reason`` once.

    Args:
        queries: JDs or recruiter questions.
        reason: ``query -> trace``, or ``None`` for no valid trace (a :class:`train.reasoning.TraceGenerator`).

    Returns:
        The expanded queries, in order, and the number of distinct queries left plain (no valid trace),
        as ``CREModel.encode(..., reason=...)`` leaves them.

    Example:
        >>> expand_queries(["Nurse", "Nurse", "Cook"], lambda q: "Ward care." if q == "Nurse" else None)
        (['Nurse\\nReasoning: Ward care.', 'Nurse\\nReasoning: Ward care.', 'Cook'], 1)
    """
    unique = list(dict.fromkeys(queries))
    expanded = {}
    for query in tqdm(unique, desc="Reasoning traces", unit="query"):
        trace = reason(query)
        expanded[query] = join_reasoning(query, trace) if trace else query
    plain = sum(1 for query in unique if expanded[query] == query)
    return [expanded[query] for query in queries], plain


def expand_data_dir(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    reason: Callable[[str], str | None],
) -> dict[str, dict[str, int]]:
    """Copy a synthesis run, with the query side of each :data:`QUERY_SOURCES` file expanded by traces.

    Every record (both splits) keeps its fields, except ``query``, which becomes
    ``join_reasoning(query, trace)``; every other file is copied unchanged, so each round reads the copy
    as it reads the original.

    Args:
        data_dir: The synthesis run folder.
        out_dir: The new folder (must not exist yet: nothing is overwritten).
        reason: ``query -> trace | None`` (a :class:`train.reasoning.TraceGenerator`).

    Returns:
        Per rewritten file: ``records``, distinct ``queries`` and those left ``plain`` (blank trace).

    Raises:
        TrainingDataError: ``data_dir`` is not a folder, ``out_dir`` exists, or a file is malformed.

    Example:
        >>> expand_data_dir("runs/synth", "runs/synth-reasoned", TraceGenerator("rules"))  # doctest: +SKIP
        {'jdcv.jsonl': {'records': 660, 'queries': 330, 'plain': 0}, ...}
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not data_dir.is_dir():
        raise TrainingDataError(f"{data_dir}: synthesis run folder not found")
    if out_dir.exists():
        raise TrainingDataError(f"{out_dir} already exists: choose a new folder for the expanded copy")
    rewritten = [source.file for source in QUERY_SOURCES.values() if (data_dir / source.file).is_file()]
    if not rewritten:
        raise TrainingDataError(
            f"{data_dir}: holds none of {', '.join(s.file for s in QUERY_SOURCES.values())}"
        )
    # Read (and so validate) everything before writing anything.
    records = {name: read_records(data_dir / name, ["query", "positive"]) for name in rewritten}
    scratch = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(data_dir, scratch, ignore=lambda folder, _: rewritten if Path(folder) == data_dir else [])
    counts = {}
    for name in rewritten:
        originals = [record["query"] for record in records[name]]
        queries, plain = expand_queries(originals, reason)
        with (scratch / name).open("w", encoding="utf-8") as stream:
            for record, query in zip(records[name], queries, strict=True):
                row = {key: value for key, value in record.items() if key != "_line"} | {"query": query}
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts[name] = {"records": len(queries), "queries": len(set(originals)), "plain": plain}
        if plain:
            logger.warning(
                "%s: %d of %d queries got no valid trace and stay plain", name, plain, len(set(originals))
            )
    os.replace(scratch, out_dir)
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Copy a synthesis run with reasoning-expanded queries (JDs of jdcv.jsonl, questions of "
        "cv_queries.jsonl) for supervised Round 2"
    )
    parser.add_argument("--data", required=True, help="synthesis run folder")
    parser.add_argument("--out", required=True, help="the new folder (must not exist)")
    parser.add_argument("--generator", choices=BACKENDS, default="rules", help="trace backend")
    parser.add_argument(
        "--model", help="local: causal LM alias or folder (e.g. a GRPO run's final/); openai: model name"
    )
    parser.add_argument(
        "--base-url", help="openai: API root; every query is sent there, so use a server you trust"
    )
    parser.add_argument(
        ALLOW_OPENAI_API_FLAG, action="store_true", help="openai: allow OpenAI's own API without --base-url"
    )
    parser.add_argument("--max-new-tokens", type=int, default=None, help="local: longest answer in tokens")
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="local: torch device"
    )
    return parser


@report_data_errors
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(argv)
    options: dict[str, Any] = {}
    if args.generator == "local":
        options = {
            "model": check_model_source(args.model or "smollm2-135m"),
            "max_new_tokens": args.max_new_tokens,
            "device": args.device,
        }
    elif args.generator == "openai":
        options = {
            "model": args.model,
            "base_url": args.base_url,
            "allow_openai_api": args.allow_openai_api,
        }
    try:  # an endpoint that is refused or cannot be reached: one line, not a traceback
        counts = expand_data_dir(args.data, args.out, TraceGenerator(args.generator, **options))
    except GeneratorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(counts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
