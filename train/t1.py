"""CRE-T1 training data: (query, fitting CV) examples, reasoning traces and reasoning-expanded copies.

CRE-T1 expands the query side (a JD, a recruiter question) by a short reasoning trace before encoding
it, as :func:`cre.modeling_cre.join_reasoning` writes them. Two trainings need traces:

* the GRPO stage (:mod:`train.grpo`) samples them from a causal LM, the policy, prompted by
  :func:`policy_prompt`, and rewards the ones that rank the fitting CV high;
* supervised Round 2 reads a copy of a synthesis run whose queries are already expanded
  (:func:`expand_data_dir`), so ``python -m train.r2 --data <copy>`` trains on it unchanged.

A trace generator is any callable ``list[str] -> list[str]`` (one trace per query, in order):
:class:`PolicyTraceGenerator` wraps a causal LM (the GRPO policy before or after training). Documents
are never expanded.

Command line (writes ``runs/synth-reasoned`` from ``runs/synth`` with the GRPO policy's traces)::

    python -m train.t1 --data runs/synth --out runs/synth-reasoned --policy outputs/grpo/final
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

from cre.modeling_cre import join_reasoning
from train.backbones import check_model_source, resolve_backbone
from train.data import TrainingDataError, read_records, report_data_errors, require_records
from train.loop import setup_logging
from train.r2 import load_r2_data

logger = logging.getLogger("train.t1")  # not __name__, which is __main__ under -m

TraceGenerator = Callable[[list[str]], list[str]]


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

# The instruction the policy reads before the query: what a useful trace says about it.
PROMPTS = {
    "jd": (
        "Before this job description is matched against résumés, note briefly what the role really "
        "requires: must-have and nice-to-have skills, seniority, related job titles."
    ),
    "query": (
        "Before this recruiter's question is matched against résumé passages, note briefly what a "
        "passage that answers it must show: skills, experience, related job titles."
    ),
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


def policy_prompt(query: str, kind: str, chat: bool) -> str | list[dict[str, str]]:
    """What the policy reads to write a trace for ``query`` (of input kind ``jd`` or ``query``).

    Args:
        query: The JD or recruiter question.
        kind: Its input kind (a key of :data:`PROMPTS`).
        chat: Return chat messages (for tokenizers with a chat template) instead of plain text.

    Example:
        >>> policy_prompt("Nurse, ICU", "jd", chat=False).endswith("Nurse, ICU\\nNotes:")
        True
    """
    text = f"{PROMPTS[kind]}\n\n{query}"
    return [{"role": "user", "content": text}] if chat else f"{text}\nNotes:"


def completion_text(completion: str | list[dict[str, str]]) -> str:
    """The trace in a generated completion: plain text, or the content of chat messages.

    Example:
        >>> completion_text([{"role": "assistant", "content": " Requires SQL. "}])
        'Requires SQL.'
    """
    if isinstance(completion, str):
        return completion.strip()
    return "".join(message["content"] for message in completion).strip()


def load_policy(policy: str | os.PathLike) -> tuple[Any, Any]:
    """A causal LM and its tokenizer (left padding, a pad token) from an alias, folder or Hub id.

    Raises:
        ModelNotFoundError: ``policy`` names no model (see :func:`train.backbones.check_model_source`).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_backbone(check_model_source(policy))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"  # generation continues each prompt from its last position
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(folder), tokenizer


class PolicyTraceGenerator:
    """A trace generator from a causal LM (greedy, so one query always gets one trace).

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer (left padding).
        kind: Input kind of the queries (``jd`` or ``query``), which picks the prompt.
        max_new_tokens: Longest trace in tokens.
        batch_size: Queries per ``generate`` call.

    Example:
        >>> generate = PolicyTraceGenerator(*load_policy("outputs/grpo/final"), kind="jd")  # doctest: +SKIP
        >>> generate(["Senior nurse, ICU"])  # doctest: +SKIP
        ['Must-have: critical care ...']
    """

    def __init__(self, model: Any, tokenizer: Any, kind: str, max_new_tokens: int = 64, batch_size: int = 8):
        self.model, self.tokenizer, self.kind = model.eval(), tokenizer, kind
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    @torch.inference_mode()
    def __call__(self, queries: list[str]) -> list[str]:
        chat = bool(self.tokenizer.chat_template)
        traces = []
        for start in tqdm(
            range(0, len(queries), self.batch_size), desc=f"Traces ({self.kind})", unit="batch"
        ):
            prompts = [policy_prompt(q, self.kind, chat) for q in queries[start : start + self.batch_size]]
            if chat:
                prompts = [
                    self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                    for p in prompts
                ]
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.model.device)
            output = self.model.generate(
                **batch,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new = output[:, batch["input_ids"].shape[1] :]
            traces += [text.strip() for text in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return traces


def expand_queries(queries: Sequence[str], generate: TraceGenerator) -> tuple[list[str], int]:
    """Each query as ``join_reasoning(query, trace)``; a repeated query is sent to ``generate`` once.

    A blank trace leaves its query plain (a trace with nothing in it would only add the "Reasoning:"
    marker) and is counted.

    Returns:
        The expanded queries, in order, and the number left plain.

    Raises:
        ValueError: ``generate`` returned a different number of traces than it was sent queries.

    Example:
        >>> expand_queries(["Nurse", "Nurse", "Cook"], lambda qs: [q.upper() if q == "Nurse" else "" for q in qs])
        (['Nurse\\nReasoning: NURSE', 'Nurse\\nReasoning: NURSE', 'Cook'], 1)
    """
    unique = list(dict.fromkeys(queries))
    traces = generate(unique)
    if len(traces) != len(unique):
        raise ValueError(f"the trace generator returned {len(traces)} traces for {len(unique)} queries")
    expanded = {
        query: join_reasoning(query, trace.strip()) if trace.strip() else query
        for query, trace in zip(unique, traces, strict=True)
    }
    plain = sum(1 for query in unique if expanded[query] == query)
    return [expanded[query] for query in queries], plain


def expand_data_dir(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    generators: dict[str, TraceGenerator],
) -> dict[str, dict[str, int]]:
    """Copy a synthesis run, with the query side of each :data:`QUERY_SOURCES` file expanded by traces.

    Every record (both splits) keeps its fields, except ``query``, which becomes
    ``join_reasoning(query, trace)``; every other file is copied unchanged, so each round reads the copy
    as it reads the original.

    Args:
        data_dir: The synthesis run folder.
        out_dir: The new folder (must not exist yet: nothing is overwritten).
        generators: Input kind (``jd``, ``query``) -> the generator of its traces.

    Returns:
        Per rewritten file: ``records``, distinct ``queries`` and those left ``plain`` (blank trace).

    Raises:
        TrainingDataError: ``data_dir`` is not a folder, ``out_dir`` exists, or a file is malformed.

    Example:
        >>> expand_data_dir("runs/synth", "runs/synth-reasoned", {"jd": generate, "query": generate})  # doctest: +SKIP
        {'jdcv.jsonl': {'records': 660, 'queries': 330, 'plain': 0}, ...}
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not data_dir.is_dir():
        raise TrainingDataError(f"{data_dir}: synthesis run folder not found")
    if out_dir.exists():
        raise TrainingDataError(f"{out_dir} already exists: choose a new folder for the expanded copy")
    rewritten = {
        source.file: source for source in QUERY_SOURCES.values() if (data_dir / source.file).is_file()
    }
    if not rewritten:
        raise TrainingDataError(
            f"{data_dir}: holds none of {', '.join(s.file for s in QUERY_SOURCES.values())}"
        )
    # Read (and so validate) everything before writing anything.
    records = {name: read_records(data_dir / name, ["query", "positive"]) for name in rewritten}
    scratch = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(
        data_dir, scratch, ignore=lambda folder, _: list(rewritten) if Path(folder) == data_dir else []
    )
    counts = {}
    for name, source in rewritten.items():
        queries, plain = expand_queries([r["query"] for r in records[name]], generators[source.query_kind])
        with (scratch / name).open("w", encoding="utf-8") as stream:
            for record, query in zip(records[name], queries, strict=True):
                row = {key: value for key, value in record.items() if key != "_line"} | {"query": query}
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts[name] = {"records": len(queries), "queries": len(set(queries)), "plain": plain}
        if plain:
            logger.warning("%s: %d queries got a blank trace and stay plain", name, plain)
    os.replace(scratch, out_dir)
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Copy a synthesis run with reasoning-expanded queries (JDs of jdcv.jsonl, questions of "
        "cv_queries.jsonl) for supervised Round 2"
    )
    parser.add_argument("--data", required=True, help="synthesis run folder")
    parser.add_argument("--out", required=True, help="the new folder (must not exist)")
    parser.add_argument(
        "--policy",
        required=True,
        help="causal LM writing the traces (alias, folder, e.g. a GRPO run's final/)",
    )
    parser.add_argument("--max-trace-tokens", type=int, default=64, help="longest trace in tokens")
    parser.add_argument("--batch-size", type=int, default=8, help="queries per generate call")
    return parser


@report_data_errors
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(argv)
    model, tokenizer = load_policy(args.policy)
    generators = {
        kind: PolicyTraceGenerator(model, tokenizer, kind, args.max_trace_tokens, args.batch_size)
        for kind in PROMPTS
    }
    counts = expand_data_dir(args.data, args.out, generators)
    print(json.dumps(counts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
