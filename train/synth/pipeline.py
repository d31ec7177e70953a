"""Run the synthesis stages over a set of JDs and write datasets-loadable files plus a manifest.

Work is journaled per (JD, stage) in ``RUN_DIR/work/journal.jsonl`` as soon as a stage finishes, so a
rerun with the same settings skips what is done (and LLM backends also answer repeated prompts from
their cache). When the generator becomes unavailable the run stops early, writes what it has with
``"complete": false`` in the manifest, and the next run resumes. A reply that is not a chat completion
is never journaled: its JD stays pending and the next run asks again; when most replies are malformed
the run stops early, since the endpoint evidently speaks another API. ``manifest["failure"]`` says why
a run is not usable: unavailable, malformed replies, or a stage that kept no sample at all.
Duplicate removal, the train/validation split and the output files are computed from the journal at
the end, in input order, so results do not depend on concurrency.

Example:
    >>> from train.synth import load_seed_jds, run_pipeline
    >>> manifest = run_pipeline(load_seed_jds()[:5], backend="rules", out_dir="/tmp/cre-synth-demo")  # doctest: +SKIP
    >>> manifest["stages"]["paraphrase"]["kept"]  # doctest: +SKIP
    5
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from common.chat import GeneratorUnavailable, MalformedResponse
from common.lines import json_lines
from train.synth.dedup import DuplicateFilter
from train.synth.generators import get_generator
from train.synth.prompts import load_prompt
from train.synth.schema import (
    DECEPTIVE_TYPES,
    SIBLING_STACK,
    STAGES,
    JobDescription,
    StageOutcome,
    split_of,
)
from train.synth.stages import dedup_key, stage_inputs, validate_answer
from train.synth.text import opening

logger = logging.getLogger(__name__)

SYNTH_VERSION = "1.2"
# Between the extraction (each JD's first stage, which the others read) and the CV queries (asked of
# the CVs the JD-CV stages wrote): the stages that read one JD and its anchor, in schema order.
PER_JD_STAGES = tuple(stage for stage in STAGES if stage not in ("extraction", "cv_queries"))
MAX_TOKENS = {
    "extraction": 700,
    "paraphrase": 1500,
    "card": 400,
    "role_boundary": 3500,
    "constraint_conflict": 1600,
    "jdcv_balanced": 2500,
    "jdcv_deceptive": 2500,
    "cv_queries": 600,
}
TEMPERATURE = {stage: 0.0 if stage in ("extraction", "cv_queries") else 0.7 for stage in STAGES}
ENHANCE_INSTRUCTION = (
    "Given a job description and its key facts, retrieve matching job descriptions and candidates."
)
OUTPUT_FILES = ("anchors", "pairs", "profiles", "ranking", "role_negatives", "jdcv", "cv_queries")
# Replies seen before "most replies are malformed" may stop a run: a few unlucky first replies
# should not, a server speaking another API should not get thousands of requests.
MALFORMED_STOP_AFTER = 10
# Older versions journaled a malformed reply as a rejected sample; such outcomes are redone.
LEGACY_MALFORMED = "malformed_response"


class Journal:
    """Finished stage outcomes, appended one JSON line each (thread-safe), read back on resume."""

    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.outcomes: dict[tuple[str, str], StageOutcome] = {}
        if path.exists():
            for row in json_lines(path.read_text(encoding="utf-8")):
                try:
                    outcome = StageOutcome(**row.value) if row.problem is None else None
                except TypeError:  # an object without the fields of an outcome
                    outcome = None
                if outcome is None:
                    logger.warning(
                        "%s:%d: unreadable journal line (an interrupted write); that stage is redone",
                        path,
                        row.number,
                    )
                    continue
                if LEGACY_MALFORMED not in outcome.rejected:
                    self.outcomes[(outcome.source_id, outcome.stage)] = outcome

    def get(self, source_id: str, stage: str) -> StageOutcome | None:
        return self.outcomes.get((source_id, stage))

    def add(self, outcome: StageOutcome) -> None:
        with self._lock:
            with self.path.open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(outcome.to_dict(), ensure_ascii=False) + "\n")
            self.outcomes[(outcome.source_id, outcome.stage)] = outcome


class _Runner:
    """Runs the stages of one JD with a generator, journaling each finished stage.

    A malformed reply propagates (its stage is not journaled, so the JD stays pending) and is counted
    in ``replies``; ``failure`` holds the first reason the run stopped early.
    """

    def __init__(self, generator, journal: Journal, stop: threading.Event):
        self.generator, self.journal, self.stop = generator, journal, stop
        self.replies: Counter = Counter()
        self.failure: str | None = None
        self._lock = threading.Lock()

    def fail(self, reason: str) -> None:
        """Stop the run (the first reason is kept and logged)."""
        with self._lock:
            first = self.failure is None
            if first:
                self.failure = reason
        if first:
            logger.error("%s; stopping, rerun to resume", reason)
        self.stop.set()

    def _count(self, kind: str) -> None:
        with self._lock:
            self.replies[kind] += 1
            malformed, total = self.replies["malformed"], self.replies.total()
        if kind == "malformed" and malformed >= MALFORMED_STOP_AFTER and 2 * malformed > total:
            self.fail(malformed_message(self.generator.identity, malformed, total))

    def _ask(
        self, stage: str, jd: JobDescription, anchor: dict | None, **extra
    ) -> tuple[list[dict], list[str]]:
        inputs = stage_inputs(stage, jd, anchor, **extra)
        messages = load_prompt(stage).render(inputs)
        try:
            answer = self.generator.complete(
                messages, max_tokens=MAX_TOKENS[stage], temperature=TEMPERATURE[stage]
            )
        except MalformedResponse:
            self._count("malformed")
            raise
        self._count("ok")
        return validate_answer(stage, answer, jd, inputs, anchor)

    def _stage(self, stage: str, jd: JobDescription, compute) -> StageOutcome:
        done = self.journal.get(jd.id, stage)
        if done is not None:
            return done
        if self.stop.is_set():
            raise GeneratorUnavailable("stopped after an earlier failure")
        kept, rejected = compute()
        outcome = StageOutcome(stage=stage, source_id=jd.id, kept=kept, rejected=rejected)
        self.journal.add(outcome)
        return outcome

    def run(self, jd: JobDescription, deceptive_type: str) -> None:
        extraction = self._stage("extraction", jd, lambda: self._ask("extraction", jd, None))
        if not extraction.kept:
            return
        anchor = extraction.kept[0]
        positives = []
        for stage in PER_JD_STAGES:
            outcome = self._stage(
                stage, jd, lambda stage=stage: self._ask(stage, jd, anchor, negative_type=deceptive_type)
            )
            positives += [sample["positive"] for sample in outcome.kept if stage.startswith("jdcv")]

        def queries() -> tuple[list[dict], list[str]]:
            kept, rejected = [], []
            for cv in positives:
                more_kept, more_rejected = self._ask("cv_queries", jd, anchor, cv=cv)
                # The whole CV goes with each question, so that training can read the passage the way
                # search does: inside a window of the CV (train.question_windows).
                kept += [sample | {"cv": cv} for sample in more_kept]
                rejected += more_rejected
            return kept, rejected

        if positives:
            self._stage("cv_queries", jd, queries)


def _settings(generator, seed: int, enhance_queries: bool) -> dict:
    return {
        "synth_version": SYNTH_VERSION,
        "generator": generator.identity,
        "seed": seed,
        "prompts": {stage: load_prompt(stage).version for stage in STAGES},
        "enhance_queries": enhance_queries,
    }


def _check_settings(work: Path, settings: dict) -> None:
    path = work / "settings.json"
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != settings:
            raise ValueError(
                f"{work.parent} holds a run with other settings ({previous}); use a new output folder"
            )
    else:
        work.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=1), encoding="utf-8")


def unique_jds(jds: list[JobDescription]) -> tuple[list[JobDescription], list[str]]:
    """JDs without exact or near-duplicate texts (the first one is kept), and a note per removed one."""
    seen, kept, notes = DuplicateFilter(), [], []
    for jd in jds:
        reason = seen.check(jd.text)
        if reason:
            notes.append(f"{jd.id}: {reason} of an earlier JD; skipped")
        else:
            kept.append(jd)
    return kept, notes


def run_pipeline(
    jds: list[JobDescription],
    backend: str = "rules",
    out_dir: str | os.PathLike = "runs/synth",
    seed: int = 0,
    *,
    generator=None,
    enhance_queries: bool = False,
    progress: bool = True,
    input_issues: list[str] | None = None,
    source: str | None = None,
    profile_jds: list[JobDescription] = (),
    title_pairs: Sequence[dict] = (),
    **generator_kwargs,
) -> dict:
    """Synthesise supervision for ``jds`` into ``out_dir`` and return the manifest.

    Args:
        jds: Input JDs (see :func:`train.synth.load_seed_jds`).
        backend: ``rules``, ``openai`` or ``local`` (ignored when ``generator`` is given).
        out_dir: The run folder; rerunning into it resumes.
        seed: Seed of every random choice (the ``rules`` generator's and the pipeline's).
        generator: A ready generator object (anything with ``complete`` and ``identity``).
        enhance_queries: Also write ``query_enhanced`` (instruction + card + JD) for training-time use.
        progress: Show a progress bar.
        input_issues: Problems found while loading the input, copied into the manifest.
        source: A description of the input, for the manifest.
        profile_jds: JDs that only give ``profiles.jsonl`` rows (opening → whole JD), no generated
            samples: a source that should anchor the embedding space without steering the rounds.
        title_pairs: (title variant, occupation) records written as ``titles.jsonl`` as they are
            (:func:`train.synth.titles.title_pairs`): taxonomy data, not generated.
        **generator_kwargs: Options of the backend (model, base_url, cache_dir, ...).

    Returns:
        The manifest (also written to ``out_dir/manifest.json``); ``manifest["complete"]`` is ``False`` when
        the generator became unavailable, and rerunning the same call resumes.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    if generator is None:
        generator = get_generator(
            backend, **({"seed": seed} if backend == "rules" else {}), **generator_kwargs
        )
    settings = _settings(generator, seed, enhance_queries)
    _check_settings(out / "work", settings)
    jds, duplicates = unique_jds(jds)
    journal = Journal(out / "work" / "journal.jsonl")
    stop = threading.Event()
    runner = _Runner(generator, journal, stop)
    bar = tqdm(total=len(jds), desc=f"synth ({generator.identity})", unit="JD", disable=not progress)
    with ThreadPoolExecutor(max_workers=getattr(generator, "concurrency", 1)) as pool:
        futures = {
            pool.submit(runner.run, jd, DECEPTIVE_TYPES[index % len(DECEPTIVE_TYPES)]): jd
            for index, jd in enumerate(jds)
        }
        for future in as_completed(futures):
            try:
                future.result()
            except GeneratorUnavailable as error:
                runner.fail(f"generator unavailable ({error})")
            except MalformedResponse:
                pass  # counted by the runner; the JD stays pending for the next run
            bar.update(1)
    bar.close()
    manifest = write_outputs(jds, journal, out, settings, enhance_queries, profile_jds, title_pairs)
    pending = sum(1 for jd in jds if not _finished(journal, jd))
    manifest["complete"] = runner.failure is None and pending == 0
    manifest["failure"] = runner.failure or run_problem(
        manifest["stages"], runner.replies, generator.identity
    )
    manifest["pending_jds"] = pending
    if manifest["failure"]:
        logger.error("%s", manifest["failure"])
    manifest["input"] = {
        "jds": len(jds) + len(duplicates),
        "source": source,
        "duplicates_removed": len(duplicates),
        "issues": (input_issues or []) + duplicates,
    }
    manifest["elapsed_s"] = round(time.perf_counter() - started, 2)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(retention_table(manifest), encoding="utf-8")
    return manifest


def _finished(journal: Journal, jd: JobDescription) -> bool:
    """Whether every stage :meth:`_Runner.run` would run for ``jd`` is journaled."""
    extraction = journal.get(jd.id, "extraction")
    if extraction is None:
        return False
    if not extraction.kept:
        return True
    outcomes = {stage: journal.get(jd.id, stage) for stage in PER_JD_STAGES}
    if any(outcome is None for outcome in outcomes.values()):
        return False
    has_cvs = any(outcome.kept for stage, outcome in outcomes.items() if stage.startswith("jdcv"))
    return not has_cvs or journal.get(jd.id, "cv_queries") is not None


def malformed_message(identity: str, malformed: int, total: int) -> str:
    """Why malformed replies fail a run; "most" means the endpoint speaks another API.

    Example:
        >>> malformed_message("openai:m", 12, 12)
        'most replies of openai:m (12 of 12) were not chat completions: check that the endpoint speaks the OpenAI chat-completions API'
    """
    if 2 * malformed > total:
        return (
            f"most replies of {identity} ({malformed} of {total}) were not chat completions: "
            "check that the endpoint speaks the OpenAI chat-completions API"
        )
    return f"{malformed} of {total} replies of {identity} were not chat completions; their JDs are pending"


def run_problem(stages: dict, replies: Counter, identity: str) -> str | None:
    """Why a run that did not stop early is still not usable, or ``None``.

    Args:
        stages: ``manifest["stages"]``.
        replies: Replies counted by kind (``ok``, ``malformed``).
        identity: The generator's identity, for the message.

    Example:
        >>> from collections import Counter
        >>> stages = {"extraction": {"generated": 3, "kept": 0, "reasons": {"unparseable_output": 3}}}
        >>> run_problem(stages, Counter(ok=3), "openai:m")
        'stage extraction kept 0 of 3 samples (unparseable_output 3)'
    """
    if replies["malformed"]:
        return malformed_message(identity, replies["malformed"], replies.total())
    for stage, counts in stages.items():
        if counts["generated"] and not counts["kept"]:
            reasons = ", ".join(f"{reason} {count}" for reason, count in counts["reasons"].items())
            return f"stage {stage} kept 0 of {counts['generated']} samples ({reasons})"
    return None


def write_outputs(
    jds: list[JobDescription],
    journal: Journal,
    out: Path,
    settings: dict,
    enhance_queries: bool,
    profile_jds: list[JobDescription] = (),
    title_pairs: Sequence[dict] = (),
) -> dict:
    """Deduplicate the journaled samples in input order, write the JSONL files and return the manifest body."""
    filters = {stage: DuplicateFilter() for stage in STAGES}
    report = {stage: Counter() for stage in STAGES}
    rows: dict[str, list[dict]] = {name: [] for name in OUTPUT_FILES}
    splits = Counter()
    for jd in jds:
        kept = {}
        for stage in STAGES:
            outcome = journal.get(jd.id, stage)
            if outcome is None:
                continue
            report[stage].update({"generated": len(outcome.kept) + len(outcome.rejected)})
            report[stage].update(f"reason:{reason}" for reason in outcome.rejected)
            kept[stage] = []
            for sample in outcome.kept:
                key = dedup_key(stage, sample)
                duplicate = filters[stage].check(key) if key is not None else None
                if duplicate:
                    report[stage][f"reason:{duplicate}"] += 1
                else:
                    kept[stage].append(sample)
            report[stage]["kept"] += len(kept[stage])
        if kept.get("extraction"):
            splits[split_of(jd.id)] += 1
            _records(jd, kept, settings, enhance_queries, rows)
    rows["jdcv"] += sibling_triplets(rows["jdcv"])
    synthesised = {jd.id for jd in jds}
    for jd in unique_jds([jd for jd in profile_jds if jd.id not in synthesised])[0]:
        rows["profiles"].extend(_profile_rows(jd, settings, jd.title))
    if title_pairs:  # taxonomy data, not generated: only a run that asked for it has the file
        rows["titles"] = list(title_pairs)
    files = {}
    for name, records in rows.items():
        path = out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as stream:
            for record in records:
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        files[path.name] = len(records)
    stages = {}
    for stage, counts in report.items():
        reasons = {
            key.split(":", 1)[1]: value for key, value in sorted(counts.items()) if key.startswith("reason:")
        }
        generated = counts["generated"]
        stages[stage] = {
            "generated": generated,
            "kept": counts["kept"],
            "rejected": sum(reasons.values()),
            "retained_pct": round(100 * counts["kept"] / generated, 1) if generated else 0.0,
            "reasons": reasons,
        }
    return {
        **settings,
        "stages": stages,
        "files": files,
        "splits": dict(splits),
        "query_enhancement": {
            "enabled": enhance_queries,
            "instruction": ENHANCE_INSTRUCTION if enhance_queries else None,
        },
    }


def _record(jd: JobDescription, settings: dict, origin: str, index: int, **fields) -> dict:
    """One output row with its id, split and provenance."""
    prompts = settings["prompts"]
    return {
        "id": f"{jd.id}/{origin}/{index}",
        "source_id": jd.id,
        "split": split_of(jd.id),
        **fields,
        "provenance": {
            "source_id": jd.id,
            "stage": origin,
            "generator": settings["generator"],
            "prompt_version": "+".join(f"{s}@{prompts[s]}" for s in origin.split("+")),
            "seed": settings["seed"],
        },
    }


def _records(
    jd: JobDescription,
    kept: dict[str, list[dict]],
    settings: dict,
    enhance: bool,
    rows: dict[str, list[dict]],
) -> None:
    """Turn one JD's kept samples into output rows."""
    anchor = kept["extraction"][0]
    title = anchor["title"]
    card = kept["card"][0]["card"] if kept.get("card") else None

    def row(origin: str, index: int, **fields) -> dict:
        record = _record(jd, settings, origin, index, **fields)
        if enhance and fields.get("query") == jd.text and card:
            record["query_enhanced"] = f"{ENHANCE_INSTRUCTION}\nKey facts: {card}\nJob description: {jd.text}"
        return record

    rows["anchors"].append(row("extraction", 0, text=jd.text, source=jd.source, **anchor))
    rows["profiles"].extend(_profile_rows(jd, settings, title))
    for index, sample in enumerate(kept.get("paraphrase", [])):
        rows["pairs"].append(
            row("paraphrase", index, query=jd.text, positive=sample["text"], stage="paraphrase", title=title)
        )
    for index, sample in enumerate(kept.get("card", [])):
        rows["pairs"].append(
            row("card", index, query=sample["summary"], positive=sample["card"], stage="card", title=title)
        )
    for index, sample in enumerate(kept.get("role_boundary", [])):
        rows["role_negatives"].append(
            row("role_boundary", index, query=jd.text, negative=sample["text"], title=title)
        )
    if kept.get("paraphrase") and kept.get("constraint_conflict"):
        conflict = kept["constraint_conflict"][0]
        for index, negative in enumerate(kept.get("role_boundary", [])):
            rows["ranking"].append(
                row(
                    "paraphrase+role_boundary+constraint_conflict",
                    index,
                    query=jd.text,
                    positive=kept["paraphrase"][0]["text"],
                    negative_role=negative["text"],
                    negative_constraint=conflict["text"],
                    title=title,
                    flipped_field=conflict["flipped_field"],
                )
            )
    for stage, generator_name in (("jdcv_balanced", "balanced"), ("jdcv_deceptive", "deceptive")):
        for index, sample in enumerate(kept.get(stage, [])):
            rows["jdcv"].append(
                row(
                    stage,
                    index,
                    query=jd.text,
                    positive=sample["positive"],
                    negative=sample["negative"],
                    negative_type=sample["negative_type"],
                    generator=generator_name,
                    title=title,
                )
            )
    for index, sample in enumerate(kept.get("cv_queries", [])):
        rows["cv_queries"].append(
            row(
                "cv_queries",
                index,
                query=sample["query"],
                positive=sample["chunk"],
                cv=sample["cv"],
                title=title,
            )
        )


def _profile_rows(jd: JobDescription, settings: dict, title: str) -> list[dict]:
    overview = opening(jd.text)
    if overview == jd.text:
        return []
    return [_record(jd, settings, "extraction", 0, query=overview, positive=jd.text, title=title)]


def sibling_triplets(triplets: list[dict]) -> list[dict]:
    """JD–CV triplets whose negative is a fitting CV of a sibling specialisation.

    JDs ``<base>~<stack>`` are specialisations of one occupation (see
    :func:`train.synth.loaders.load_onet_jds`). For each ordered pair of siblings this adds one triplet:
    the JD of the first, its fitting CV, and the second's fitting CV as the negative: same occupation,
    duties and seniority, another stack. Query-side triplets are used in turn, so all of them serve.

    Example:
        >>> rows = [{"id": f"onet:x~{s}/jdcv/0", "source_id": f"onet:x~{s}", "positive": f"{s} CV"} for s in "ab"]
        >>> [(r["source_id"], r["negative"]) for r in sibling_triplets(rows)]
        [('onet:x~a', 'b CV'), ('onet:x~b', 'a CV')]
    """
    by_base: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in triplets:
        base, _, variant = row["source_id"].partition("~")
        if variant:
            by_base[base][row["source_id"]].append(row)
    extra = []
    for siblings in by_base.values():
        for source_id, own in siblings.items():
            others = [other for other in siblings if other != source_id]
            for number, other in enumerate(others):
                query = own[number % len(own)]
                extra.append(
                    {
                        **query,
                        "id": f"{query['id']}/sibling/{number}",
                        "negative": siblings[other][0]["positive"],
                        "negative_type": SIBLING_STACK,
                        "provenance": {**query.get("provenance", {}), "negative_from": other},
                    }
                )
    return extra


def retention_table(manifest: dict) -> str:
    """The kept/rejected counts per stage as a Markdown table (like a paper's table of retained pairs)."""
    lines = ["| stage | generated | kept | retained % | rejection reasons |", "|---|---:|---:|---:|---|"]
    for stage, counts in manifest["stages"].items():
        reasons = ", ".join(f"{reason} {count}" for reason, count in counts["reasons"].items()) or "-"
        lines.append(
            f"| {stage} | {counts['generated']} | {counts['kept']} | {counts['retained_pct']} | {reasons} |"
        )
    return "\n".join(lines) + "\n"
