"""Reasoning traces for CRE-T1: a short note on what a JD or recruiter question really asks for.

CRE-T1 lets the model *think* about a query before it is embedded: a generator writes a short trace
(the role and its seniority, must-haves versus nice-to-haves, related titles) and the model encodes
:func:`cre.modeling_cre.join_reasoning` ``(query, trace)``. Only the query side is expanded (JDs and
recruiter questions); CVs and passages never are.

A :class:`TraceGenerator` is a callable ``query -> trace | None`` over one of the synthesis backends
(:mod:`train.synth.generators`), all answering the same ``reasoning`` prompt:

* ``rules``: offline and deterministic (:func:`train.synth.traces.reasoning_trace`);
* ``openai``: any chat-completions endpoint (the prompt, which quotes the query, leaves the machine:
  the endpoint must be named, or OpenAI's API allowed explicitly);
* ``local``: a transformers causal LM (default SmolLM2-135M-Instruct from its PyPI package).

The LLM backends cache every answer on disk under ``$CRE_CACHE/reasoning-traces``, keyed by a hash of
the model and the prompt (which holds the query text), so a query is sent at most once. A trace that
fails validation (:func:`trace_problem`: empty, too long, or sharing no content word with the query)
comes back as ``None``; ``CREModel.encode`` then encodes the plain query and counts it in a warning.

Example:
    >>> from train.reasoning import TraceGenerator
    >>> reason = TraceGenerator("rules")
    >>> reason("Senior Data Engineer\\n\\nOwn the Spark pipelines. 5+ years of experience with Airflow.")
    'Role: Data Engineer, senior level, own scope. Must have: Apache Spark, Apache Airflow, 5+ years. Related titles: Analytics Engineer, Big Data Engineer.'
    >>> model.encode(jds, kind="jd", reason=reason)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from common.chat import MalformedResponse
from common.paths import cre_cache_root
from train.synth.generators import get_generator
from train.synth.prompts import load_prompt
from train.synth.text import content_words
from train.synth.traces import RulesTraces

BACKENDS = ("rules", "openai", "local")
# Long enough for the prompt's 60 words with room to spare; a longer answer is rambling, not a trace.
MAX_TRACE_WORDS = 120
# Tokens an LLM may spend on one answer: the JSON wrapper around MAX_TRACE_WORDS words.
MAX_ANSWER_TOKENS = 200
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def default_trace_cache_dir() -> Path:
    """``$CRE_CACHE/reasoning-traces``: the LLM backends' answers (they may quote the queries)."""
    return cre_cache_root() / "reasoning-traces"


def trace_problem(query: str, trace: str, max_words: int = MAX_TRACE_WORDS) -> str | None:
    """Why ``trace`` cannot expand ``query`` (``"empty"``, ``"too long"``, ``"off-topic"``), or ``None``.

    Off-topic means the trace shares no content word with the query (singular and plural alike): a
    trace about another role (or a model's chatter) would move the query's embedding away from what
    it asks for.

    Example:
        >>> trace_problem("Senior nurse, ICU", "Must have: critical care nursing, ICU experience.")
        >>> trace_problem("Senior nurse, ICU", "Sure! Here is a trace.")
        'off-topic'
        >>> trace_problem("Legislators\\nEnact laws.", "Role: Legislator, contribute scope.")
    """
    if not trace.strip():
        return "empty"
    if len(trace.split()) > max_words:
        return "too long"
    if not _stems(trace) & _stems(query):
        return "off-topic"
    return None


def _stems(text: str) -> set[str]:
    # A trace names the role in the singular ("Legislator") where an occupation is plural.
    return {word.rstrip("s") for word in content_words(text)}


def parse_trace(answer: str) -> str:
    """The trace in a backend's answer: ``{"trace": ...}`` as asked, else the answer's plain text.

    Small local models often drop the JSON wrapper (or put prose around it); their plain text is
    still a trace, and :func:`trace_problem` judges it. A JSON object without a string ``trace``
    gives ``""`` (an empty, rejected trace).

    Example:
        >>> parse_trace('Here: {"trace": "Requires SQL."}')
        'Requires SQL.'
        >>> parse_trace("Requires SQL and 3+ years.")
        'Requires SQL and 3+ years.'
    """
    match = _JSON_OBJECT.search(answer)
    if match is None:
        return answer.strip()
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return answer.strip()
    trace = value.get("trace") if isinstance(value, dict) else None
    return trace.strip() if isinstance(trace, str) else ""


class TraceGenerator:
    """A reasoning-trace generator over a synthesis backend: ``generator(query) -> trace | None``.

    Args:
        backend: ``rules``, ``openai`` or ``local``.
        max_words: Traces longer than this are rejected (see :func:`trace_problem`).
        **options: The LLM backend's options (:func:`train.synth.generators.get_generator`):
            ``model``, ``base_url``, ``allow_openai_api``, ``concurrency``, ... for
            ``openai``; ``model``, ``device``, ``max_new_tokens`` for ``local``; ``cache_dir`` for
            both LLM backends (default :func:`default_trace_cache_dir`, ``False`` for none).

    Raises:
        ValueError: ``backend`` is not one of :data:`BACKENDS`.
        train.synth.generators.ThirdPartyNotAllowed: ``openai`` without an endpoint or permission.

    Example:
        >>> TraceGenerator("openai", model="my-llm", base_url="http://127.0.0.1:8000/v1")  # doctest: +SKIP
    """

    def __init__(self, backend: str = "rules", *, max_words: int = MAX_TRACE_WORDS, **options: Any):
        if backend not in BACKENDS:
            raise ValueError(f"unknown reasoning backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "rules":
            self.backend = RulesTraces(**options)
        else:
            options.setdefault("cache_dir", default_trace_cache_dir())
            self.backend = get_generator(backend, **options)
        self.max_words = max_words
        self.prompt = load_prompt("reasoning")

    @property
    def identity(self) -> str:
        """The backend and model, and the prompt's version: what makes traces differ."""
        return f"{self.backend.identity}/{self.prompt.id}"

    def trace(self, query: str) -> str:
        """The backend's trace for ``query``, unvalidated (``""`` when the reply is not a chat completion).

        Raises:
            train.synth.generators.GeneratorUnavailable: The endpoint cannot be reached (after retries).
        """
        messages = self.prompt.render({"text": query})
        try:
            answer = self.backend.complete(messages, max_tokens=MAX_ANSWER_TOKENS, temperature=0.0)
        except MalformedResponse:
            return ""
        return parse_trace(answer)

    def __call__(self, query: str) -> str | None:
        """A valid trace for ``query``, or ``None`` (the caller encodes the plain query)."""
        trace = self.trace(query)
        return None if trace_problem(query, trace, self.max_words) else trace
