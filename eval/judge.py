"""LLM-as-judge relevance labels for candidate pools that have no human judgments.

A chat client from :mod:`common.chat` (``openai``, ``local``; answers cached on disk) scores
each (JD, CV) pair on a fixed rubric and answers in JSON. The rubric:

==========  ======  ====================================================================
criterion   weight  what the judge scores (0–100)
==========  ======  ====================================================================
career      0.35    role, seniority and domain of past positions vs the JD
skills      0.40    required and preferred skills, tools and certifications
education   0.15    degrees and training the JD asks for
innovation  0.10    evidence of ownership, impact, initiative
==========  ======  ====================================================================

``total`` is the weighted sum, then capped: at :data:`MUST_CAP` (below the threshold) when any MUST
requirement is unmet, at :data:`PREFERRED_CAP` when all MUSTs are met but some preferred ones are
missing. A pair is *judge-positive* when ``total >= POSITIVE_THRESHOLD`` (75).

An answer that is not the requested JSON (or a backend reply that is not a chat completion) is
counted as malformed with its reason and the pair gets no label; it never stops the run. An
unreachable backend (:class:`~common.chat.GeneratorUnavailable`) does stop it: rerun
later and the cache skips what was already judged.

Example:
    >>> from common.chat import get_generator
    >>> judge = Judge(get_generator("openai", base_url="http://127.0.0.1:8000/v1"))  # doctest: +SKIP
    >>> labels = judge.judge_pools(queries, corpus, pools, top_n=20)  # doctest: +SKIP
    >>> labels.qrels  # {query id: {doc id: 1 or 0}}, ready for eval.metrics  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from tqdm.auto import tqdm

RUBRIC_WEIGHTS = {"career": 0.35, "skills": 0.40, "education": 0.15, "innovation": 0.10}
POSITIVE_THRESHOLD = 75.0
MUST_CAP = 50.0
PREFERRED_CAP = 85.0

SYSTEM_PROMPT = """You are a meticulous technical recruiter. Judge how well a résumé fits a job description.
Score each criterion from 0 to 100:
- career: role, seniority and domain of past positions compared with the job
- skills: required and preferred skills, tools and certifications
- education: degrees and training the job asks for
- innovation: evidence of ownership, impact and initiative
List every MUST (required) requirement of the job that the résumé does not meet in "must_unmet", and
every preferred (nice-to-have) requirement it does not meet in "preferred_missing".
Answer with one JSON object and nothing else:
{"career": int, "skills": int, "education": int, "innovation": int,
 "must_unmet": [str], "preferred_missing": [str], "rationale": str}"""

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class MalformedJudgement(ValueError):
    """The judge's answer is not the JSON the rubric asks for.

    Attributes:
        reason: A short category (``"no JSON object"``, ``"invalid JSON"``, ``"bad score"``, ...)
            under which reports count it.
    """

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Judgement:
    """One parsed verdict.

    Attributes:
        scores: Criterion -> 0..100.
        must_unmet: MUST requirements the CV misses.
        preferred_missing: Preferred requirements the CV misses.
        total: Weighted, capped total.
    """

    scores: dict[str, float]
    must_unmet: list[str]
    preferred_missing: list[str]
    total: float

    @property
    def positive(self) -> bool:
        return self.total >= POSITIVE_THRESHOLD


def rubric_total(scores: Mapping[str, float], must_unmet: list[str], preferred_missing: list[str]) -> float:
    """Weighted sum of the criteria, capped for unmet MUST or missing preferred requirements.

    Example:
        >>> rubric_total({"career": 90, "skills": 90, "education": 90, "innovation": 90}, ["SQL"], [])
        50.0
    """
    total = sum(RUBRIC_WEIGHTS[name] * scores[name] for name in RUBRIC_WEIGHTS)
    if must_unmet:
        return min(total, MUST_CAP)
    if preferred_missing:
        return min(total, PREFERRED_CAP)
    return total


def parse_judgement(answer: str) -> Judgement:
    """Parse the judge's answer (a JSON object, optionally inside prose or a code fence).

    Raises:
        MalformedJudgement: No JSON object, a missing or out-of-range score, or lists of the wrong type.
    """
    match = _JSON_OBJECT.search(answer)
    if match is None:
        raise MalformedJudgement("no JSON object")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as err:
        raise MalformedJudgement("invalid JSON", err.msg) from None
    if not isinstance(data, dict):
        raise MalformedJudgement("JSON is not an object")
    scores = {}
    for name in RUBRIC_WEIGHTS:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            # A number is shown, anything else only by type: a judge may put résumé text there.
            shown = value if isinstance(value, int | float) else type(value).__name__
            raise MalformedJudgement("bad score", f"{name!r} must be a number in 0..100, got {shown}")
        scores[name] = float(value)
    lists = {}
    for name in ("must_unmet", "preferred_missing"):
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise MalformedJudgement("bad list", f"{name!r} must be a list of strings")
        lists[name] = value
    return Judgement(scores, lists["must_unmet"], lists["preferred_missing"], rubric_total(scores, **lists))


def judge_messages(jd: str, cv: str) -> list[dict]:
    """The chat messages for one pair."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"JOB DESCRIPTION:\n{jd}\n\nRÉSUMÉ:\n{cv}"},
    ]


@dataclass
class JudgedPools:
    """Labels produced by :meth:`Judge.judge_pools`.

    Attributes:
        qrels: Query id -> {doc id: 1 if judge-positive else 0}; malformed pairs are absent.
        totals: Query id -> {doc id: capped rubric total}.
        malformed: Reason -> count.
        malformed_pairs: ``(query id, doc id)`` of the malformed answers.
    """

    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    malformed: Counter = field(default_factory=Counter)
    malformed_pairs: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict:
        judged = sum(len(labels) for labels in self.qrels.values())
        positive = sum(sum(labels.values()) for labels in self.qrels.values())
        return {
            "judged": judged,
            "positive": positive,
            "malformed": sum(self.malformed.values()),
            "malformed_reasons": dict(self.malformed),
            "threshold": POSITIVE_THRESHOLD,
        }

    def to_trec(self) -> str:
        """The labels as TREC qrels lines (``qid 0 docid gain``)."""
        return "".join(
            f"{qid} 0 {doc} {gain}\n"
            for qid, labels in sorted(self.qrels.items())
            for doc, gain in labels.items()
        )


class Judge:
    """Score JD–CV pairs with a chat generator.

    Args:
        generator: Anything with ``complete(messages, max_tokens=..., temperature=...) -> str``.
        max_tokens: Answer budget.
    """

    def __init__(self, generator, max_tokens: int = 400):
        self.generator = generator
        self.max_tokens = max_tokens

    def judge(self, jd: str, cv: str) -> Judgement:
        """Judge one pair.

        Raises:
            MalformedJudgement: The answer is not the rubric's JSON, or the backend's reply was not
                a chat completion.
        """
        from common.chat import MalformedResponse

        try:
            answer = self.generator.complete(
                judge_messages(jd, cv), max_tokens=self.max_tokens, temperature=0.0
            )
        except MalformedResponse as err:
            raise MalformedJudgement("backend reply is not a chat completion", str(err)) from None
        return parse_judgement(answer)

    def judge_pools(
        self,
        queries: Mapping[str, str],
        corpus: Mapping[str, str],
        pools: Mapping[str, list[str]],
        top_n: int | None = None,
        show_progress: bool = False,
    ) -> JudgedPools:
        """Judge the first ``top_n`` candidates of every pool (all of them when ``None``)."""
        pairs = [(qid, doc) for qid, docs in pools.items() for doc in docs[:top_n]]
        result = JudgedPools()
        for qid, doc in tqdm(pairs, desc="judge", disable=not show_progress):
            try:
                verdict = self.judge(queries[qid], corpus[doc])
            except MalformedJudgement as err:
                result.malformed[err.reason] += 1
                result.malformed_pairs.append((qid, doc))
                continue
            result.qrels.setdefault(qid, {})[doc] = int(verdict.positive)
            result.totals.setdefault(qid, {})[doc] = verdict.total
        return result
