"""Round 2: JD–CV alignment from the Round 1 checkpoint, with the multiple-negatives ranking loss.

Each JD must pick its own CV among every positive and hard-negative CV of the batch
(:func:`train.losses.multiple_negatives_ranking_loss`, temperature ``τ``). Two ways to make that
pool larger than one forward pass allows:

* ``--cache-chunk N`` (GradCache): embed the batch in chunks of ``N`` texts without gradients,
  compute the loss on the cached embeddings, then re-run each chunk with gradients and backpropagate
  the cached embedding gradients. Dropout masks are replayed, so the result equals one big pass
  while memory holds one chunk's activations.
* ``--gather`` (on by default with several processes): every process scores its JDs against the
  CVs of all processes (gathered embeddings; the process's own stay differentiable).

A fresh LoRA adapter trains on the merged Round 1 backbone and is merged into the Round 2 checkpoint,
or, with ``--task-adapter jd-cv``, kept as the ``jd-cv`` task's own weights: JD→CV matching then
encodes with the update and JD–JD search with Round 1's weights (:func:`train.lora.to_task_adapter`).
With ``--base`` the original backbone and ``--graft-onto`` the Round 1 checkpoint, the adapter learns
JD→CV matching from the original weights and is then moved onto Round 1
(:func:`train.lora.graft_task_adapter`): one checkpoint, JD–JD search with Round 1's weights, JD→CV
matching with weights that never went through Round 1.

Command line::

    python -m train.r2 --data runs/synth --base outputs/r1 --out outputs/r2 --cache-chunk 16
    accelerate launch --multi_gpu --num_processes 2 -m train.r2 --data runs/synth --base outputs/r1 --out outputs/r2
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import math
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run by path (`accelerate launch train/r2.py`): see train/_run_by_path.py
    import _run_by_path  # noqa: F401  (puts the repository root on sys.path)

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from common.backbones import check_model_source
from common.models import load_model
from common.windows import text_room
from cre.configuration_cre import TASKS
from train.checkpoint import add_hub_arguments, finish_round, round_summary
from train.data import read_records, report_data_errors, require_records
from train.encoding import BatchEncoder, Fields, batch_fields
from train.loop import (
    LoopSettings,
    MicroBatch,
    add_loop_arguments,
    cycle_batches,
    cycle_grouped_batches,
    make_accelerator,
    run_training,
    setup_logging,
)
from train.lora import (
    LoraSettings,
    add_lora,
    add_lora_arguments,
    graft_task_adapter,
    scale_update,
    to_task_adapter,
)
from train.losses import jd_cv_loss
from train.question_windows import answered_by, question_windows, window_keys
from train.recipes import add_recipe_arguments, option, parse_recipe
from train.synth.schema import TRIPLET_NEGATIVE_TYPES
from train.synth.text import opening

TRIPLET_FIELDS = {"query": "jd", "positive": "cv", "negative": "cv"}  # field -> input kind


@dataclass(frozen=True)
class PairTask:
    """A task of (query, positive) pairs trained beside the triplets with in-batch negatives.

    Attributes:
        file: The data folder's JSONL file (``train`` split).
        kinds: Input kind of the ``query`` and the ``positive`` field.
        per_group: Pairs of one ``source_id`` a pass puts in one batch (``None``: all of them). Questions
            about one CV's passages share a batch, so its other passages are the hard negatives; the
            variants of one title would be false negatives of each other, so one per batch.
        steps_option: The :class:`R2Recipe` field that holds the task's optimizer steps.
    """

    file: str
    kinds: dict[str, str]
    per_group: int | None
    steps_option: str


PAIR_TASKS = {
    "questions": PairTask(
        "cv_queries.jsonl",
        {"query": "query", "positive": "cv"},
        per_group=None,
        steps_option="question_steps",
    ),
    "titles": PairTask(
        "titles.jsonl", {"query": "jd", "positive": "jd"}, per_group=1, steps_option="title_steps"
    ),
}
logger = logging.getLogger("train.r2")  # not __name__, which is __main__ under -m


def negative_types(value: str) -> tuple[str, ...]:
    """``--skip-negative-types``: comma-separated names of :data:`TRIPLET_NEGATIVE_TYPES`."""
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(set(names) - set(TRIPLET_NEGATIVE_TYPES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown negative types {unknown}; known: {', '.join(TRIPLET_NEGATIVE_TYPES)}"
        )
    return names


@dataclass
class R2Recipe:
    """Round 2's options (each one a flag of ``python -m train.r2``; checked by :func:`check_options`).

    Attributes:
        steps: Optimizer steps on the JD–CV triplets (``None``: one pass over them; 0: none, for a
            round of pair tasks alone, such as a title adapter).
        batch_size: Triplets per process per micro-batch.
        max_length: Token budget per JD and per CV.
        temperature: ``τ`` of the softmax over cosine similarities.
        cache_chunk: Texts per forward pass in the cached loss (0: no caching, one pass per batch).
        gather: Score against the candidates of all processes.
        update_weight: Share of the round's weight update the checkpoint keeps (1: all of it; 0.5: the
            midpoint with the base model, see :func:`train.lora.scale_update`).
        anchor_weight: Weight of the JD anchor, :func:`train.losses.profile_loss` between the batch's
            JD embeddings and the frozen base model's (0: off). JDs keep Round 1's geometry, their
            place and their in-batch ranking of each other, so the CVs do the moving and JD–JD
            search keeps what Round 1 learned.
        anchor_openings: Anchor the JDs' openings too (title and first paragraph, :func:`opening`):
            the short texts that JD–JD search over listings and occupation summaries compares, which
            whole-JD anchors leave free to drift.
        task_adapter: Keep the update (times ``update_weight``) as this task's adapter instead of
            merging it, so the other task keeps the base model's weights (``None``: merge).
        symmetric: Add the CV→JD direction: each positive CV must also pick its own JD among the
            batch's JDs, so CVs of one occupation gather around its JDs rather than only being
            reachable from them.
        skip_negative_types: Leave out the triplets whose ``negative_type`` is one of these. A
            recall-first encoder should rank every candidate of the right occupation high; near misses
            of the same occupation (inflated titles, internships sold as years) are false negatives
            for it and belong to the BoundaryHead and the recruiter's filters.
        graft_onto: A checkpoint trained from the same base (Round 1) that receives the task adapter
            (:func:`train.lora.graft_task_adapter`) and becomes the saved model (``None``: the base).
        question_steps: Steps of the recruiter-question task (:data:`PAIR_TASKS`), spread evenly
            between the JD–CV steps: the questions users type about CVs, which JD→CV triplets never show.
        title_steps: Steps of the title-normalisation task: a job title must pick its occupation.
        pair_batch_size: The pair tasks' micro-batch: their texts are short, so a batch holds more of
            them for the same cost, and more in-batch negatives.
        pair_temperature: ``τ`` of the pair tasks (``None``: ``temperature``). One softmax for both
            tasks trades them: a softer one lifts the JD–CV triplets' top of the list and costs the
            questions (eval/results/devsuite_tasks.md).
        question_windows: Train each question on the window of its CV that search reads
            (:mod:`train.question_windows`) instead of the bare passage that answers it; windows of
            the same CV that hold part of a question's passage are left out of its negatives.
        title_neighbours: Fill each title batch with occupations whose names the starting model
            finds alike (:func:`train.loop.neighbour_order`), instead of random ones, so that a title
            must beat its occupation's nearest siblings rather than unrelated occupations.
    """

    steps: int | None = option(
        None, "optimizer steps on the JD–CV triplets (default: one pass over them; 0: pair tasks only)"
    )
    batch_size: int = option(16, "triplets per process per micro-batch")
    max_length: int = option(256, "token budget per JD and per CV")
    temperature: float = option(0.05, "softmax temperature τ")
    cache_chunk: int = option(0, "GradCache chunk size in texts (0 = off)")
    gather: bool = option(True, "only in-process candidates as negatives", flag="--no-gather")
    update_weight: float = option(
        1.0, "share of the weight update to keep (0.5: midpoint with --base, which keeps more JD–JD skill)"
    )
    anchor_weight: float = option(
        0.0, "weight of the JD anchor towards the base model's JD embeddings (0 = off)"
    )
    anchor_openings: bool = option(
        False, "anchor the JDs' openings (title and first paragraph) too, for JD–JD search over short texts"
    )
    task_adapter: str | None = option(
        None,
        "keep the update as this task's adapter (jd-cv: JD→CV matching) instead of merging it",
        choices=TASKS,
    )
    symmetric: bool = option(False, "add the CV→JD direction to the ranking loss")
    skip_negative_types: tuple[str, ...] = option(
        (),
        f"leave out triplets with these negative types (of: {', '.join(TRIPLET_NEGATIVE_TYPES)})",
        parse=negative_types,
        metavar="TYPE,...",
    )
    graft_onto: str | None = option(
        None,
        "save the task adapter on this checkpoint trained from the same --base (Round 1) instead",
        metavar="CHECKPOINT",
    )
    question_steps: int = option(
        0, "optimizer steps on recruiter questions → CV passages (cv_queries.jsonl), between the JD–CV steps"
    )
    title_steps: int = option(
        0, "optimizer steps on job titles → occupations (titles.jsonl), between the JD–CV steps"
    )
    pair_batch_size: int = option(32, "pairs per process per micro-batch of the question and title steps")
    pair_temperature: float | None = option(
        None, "softmax temperature τ of the question and title steps (default: --temperature)"
    )
    question_windows: bool = option(
        False, "train each question on the window of its CV that search reads, not the bare passage"
    )
    title_neighbours: bool = option(
        False, "fill each title batch with occupations the starting model finds alike, not random ones"
    )

    def __post_init__(self):
        for name in ("temperature", "pair_temperature"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 (logits are cos / τ), got {value}")
        for name in ["steps", *(task.steps_option for task in PAIR_TASKS.values())]:
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.steps == 0 and not any(self.pair_steps(task) for task in PAIR_TASKS):
            raise ValueError(
                "steps 0 leaves no JD–CV steps: give a pair task steps (question_steps, title_steps)"
            )
        if self.pair_batch_size < 2:
            raise ValueError(f"pair_batch_size must be ≥ 2 (in-batch negatives), got {self.pair_batch_size}")

    def pair_steps(self, task: str) -> int:
        """The optimizer steps of a pair task (one of :data:`PAIR_TASKS`)."""
        return getattr(self, PAIR_TASKS[task].steps_option)


def check_options(recipe: R2Recipe, lora: LoraSettings) -> None:
    """The checks of option combinations, for :func:`train_r2` and the command line alike.

    Raises:
        ValueError: Options that contradict each other.
    """
    if recipe.task_adapter and lora.rank == 0:
        raise ValueError("--task-adapter keeps a low-rank update: it needs --lora-rank > 0")
    if recipe.graft_onto and not recipe.task_adapter:
        raise ValueError("--graft-onto moves a task adapter: it needs --task-adapter")
    if recipe.question_windows and not recipe.question_steps:
        raise ValueError("--question-windows changes the question steps: it needs --question-steps > 0")
    if recipe.title_neighbours and not recipe.title_steps:
        raise ValueError("--title-neighbours changes the title steps: it needs --title-steps > 0")
    if recipe.question_windows and recipe.symmetric:
        # The passage→question direction would need the overlaps the other way round; not built.
        raise ValueError("--question-windows does not support --symmetric")


def load_r2_data(data_dir: str | Path, skip_negative_types: Sequence[str] = ()) -> list[dict]:
    """The ``train`` triplets of ``jdcv.jsonl``, validated, without those whose ``negative_type`` is in
    ``skip_negative_types``."""
    path = Path(data_dir) / "jdcv.jsonl"
    records = read_records(path, list(TRIPLET_FIELDS), "train")
    kept = [record for record in records if record.get("negative_type") not in skip_negative_types]
    if len(kept) < len(records):
        logger.info(
            "R2: left out %d of %d triplets (negative types %s)",
            len(records) - len(kept),
            len(records),
            ", ".join(skip_negative_types),
        )
    return require_records(kept, f"R2 triplets ({path}, split train)")


def load_pair_data(data_dir: str | Path, task: str, extra_fields: Sequence[str] = ()) -> list[dict]:
    """The ``train`` pairs of a :data:`PAIR_TASKS` task, validated (``extra_fields``: other text fields
    every record must hold)."""
    path = Path(data_dir) / PAIR_TASKS[task].file
    records = read_records(path, [*PAIR_TASKS[task].kinds, *extra_fields], "train")
    return require_records(records, f"R2 {task} pairs ({path}, split train)")


def group_vectors(model: torch.nn.Module, examples: Sequence[dict], task: str) -> dict[str, np.ndarray]:
    """Each ``source_id``'s unit vector under ``model``: the embedding of its first example's positive
    (a title's occupation name), for :func:`train.loop.neighbour_order`."""
    positives = {example["source_id"]: example["positive"] for example in reversed(examples)}
    vectors = model.encode(list(positives.values()), kind=PAIR_TASKS[task].kinds["positive"], normalize=True)
    return dict(zip(positives, vectors, strict=True))


def interleave(*tasks: list[list[MicroBatch]]) -> list[MicroBatch]:
    """The tasks' optimizer steps (each a list of micro-batches) spread evenly over one schedule.

    Example:
        >>> steps = lambda name, n: [[MicroBatch(name, [])] for _ in range(n)]
        >>> [micro.stage for micro in interleave(steps("a", 4), steps("b", 2))]
        ['a', 'b', 'a', 'a', 'b', 'a']
    """
    keyed = [
        ((index + 0.5) / len(steps), order, step)
        for order, steps in enumerate(tasks)
        for index, step in enumerate(steps)
    ]
    return [micro for *_, step in sorted(keyed, key=lambda item: item[:2]) for micro in step]


class _RandomState:
    """The RNG state before a forward pass, to replay the same dropout masks in a second pass."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def gather_keep_grad(tensor: torch.Tensor, accelerator: Accelerator) -> tuple[torch.Tensor, int]:
    """All processes' rows of ``tensor`` (this process's rows stay differentiable) and this process's offset.

    The other processes' rows are constants here; each process backpropagates its own rows, and DDP
    averages the gradients (the scheme of OpenCLIP's default ``gather_with_grad=False``).
    """
    if accelerator.num_processes == 1:
        return tensor, 0
    everyone = accelerator.gather(tensor.detach().contiguous())
    start = accelerator.process_index * tensor.shape[0]
    return torch.cat([everyone[:start], tensor, everyone[start + tensor.shape[0] :]]), start


def field_chunks(fields: Fields, size: int) -> list[tuple[str, Fields]]:
    """Each field's texts in pieces of at most ``size`` (0: one piece per field), as ``(field, fields)``.

    Example:
        >>> [(name, chunk[name][1]) for name, chunk in field_chunks({"q": ("jd", ["a", "b", "c"])}, 2)]
        [('q', ['a', 'b']), ('q', ['c'])]
    """
    return [
        (name, {name: (kind, texts[start : start + (size or len(texts))])})
        for name, (kind, texts) in fields.items()
        for start in range(0, len(texts), size or len(texts))
    ]


class R2Objective:
    """Multiple-negatives ranking loss over (JD, CV+, CV−) triplets, optionally cached and gathered, plus
    the JD anchor towards ``base`` (the frozen starting model) when ``recipe.anchor_weight`` is set."""

    def __init__(self, encoder: BatchEncoder, recipe: R2Recipe, base: torch.nn.Module | None = None):
        if recipe.anchor_weight and base is None:
            raise ValueError("the JD anchor needs the frozen base model")
        self.encoder, self.recipe, self.base = encoder, recipe, base

    def __call__(
        self, model: torch.nn.Module, batch: MicroBatch, accelerator: Accelerator
    ) -> dict[str, float]:
        if batch.stage in PAIR_TASKS:
            return self.pairs(model, batch, accelerator)
        fields = batch_fields(batch.examples, TRIPLET_FIELDS)
        if self.recipe.anchor_weight and self.recipe.anchor_openings:
            fields["opening"] = ("jd", [opening(text) for text in fields["query"][1]])
        anchors = self.anchors(fields, accelerator.device) if self.recipe.anchor_weight else None
        if self.recipe.cache_chunk:
            loss = self.cached_backward(model, fields, accelerator, anchors)
        else:
            # Openings are short: padded with the whole JDs and CVs, they would cost as much as those.
            long = {name: field for name, field in fields.items() if name != "opening"}
            embeddings = self.encoder(model, long, accelerator.device)
            if "opening" in fields:
                embeddings |= self.encoder(model, {"opening": fields["opening"]}, accelerator.device)
            loss = self.loss(embeddings, accelerator, anchors)
            accelerator.backward(loss)
        return {"loss": float(loss.detach())}

    def pairs(self, model: torch.nn.Module, batch: MicroBatch, accelerator: Accelerator) -> dict[str, float]:
        """A pair task's batch: each query must pick its own positive among the batch's (all processes'
        when gathered) — :func:`train.losses.jd_cv_loss` without hard negatives or anchors, in one pass
        (the pairs are short, so ``cache_chunk`` does not apply)."""
        fields = batch_fields(batch.examples, PAIR_TASKS[batch.stage].kinds)
        embeddings = self.encoder(model, fields, accelerator.device)
        exclude = None
        if batch.stage == "questions" and self.recipe.question_windows:
            keys = window_keys(batch.examples, accelerator.device)
            pool = accelerator.gather(keys) if self.recipe.gather else keys  # in the positives' order
            exclude = answered_by(keys, pool)
        loss = self.loss(embeddings, accelerator, temperature=self.recipe.pair_temperature, exclude=exclude)
        accelerator.backward(loss)
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def anchors(self, fields: Fields, device: torch.device) -> dict[str, torch.Tensor]:
        """The frozen base's embeddings of the batch's JDs (and openings), in ``cache_chunk`` pieces when
        the loss is cached, so that no pass holds more than one chunk."""
        anchored = {name: fields[name] for name in ("query", "opening") if name in fields}
        pieces = defaultdict(list)
        for name, chunk in field_chunks(anchored, self.recipe.cache_chunk):
            pieces[name].append(self.encoder(self.base, chunk, device)[name])
        return {name: torch.cat(embeddings) for name, embeddings in pieces.items()}

    def loss(
        self,
        embeddings: dict[str, torch.Tensor],
        accelerator: Accelerator,
        anchors: dict[str, torch.Tensor] | None = None,
        temperature: float | None = None,
        exclude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:func:`train.losses.jd_cv_loss` on this batch, its candidates gathered across processes when
        ``recipe.gather`` (``anchors``: field -> the frozen base's embeddings; a pair task's batch has no
        ``negative``; ``temperature``: τ instead of ``recipe.temperature``; ``exclude``: pool positives that
        are no negatives of a query, see :func:`train.question_windows.answered_by`)."""
        positives, negatives, offset = embeddings["positive"], embeddings.get("negative"), 0
        queries = embeddings["query"] if self.recipe.symmetric else None
        if self.recipe.gather:
            positives, offset = gather_keep_grad(positives, accelerator)
            negatives = gather_keep_grad(negatives, accelerator)[0] if negatives is not None else None
            queries = gather_keep_grad(queries, accelerator)[0] if queries is not None else None
        return jd_cv_loss(
            embeddings["query"],
            embeddings["positive"],
            positives,
            negatives,
            self.recipe.temperature if temperature is None else temperature,
            offset,
            pool_queries=queries,
            anchored=[(embeddings[name], targets) for name, targets in (anchors or {}).items()],
            anchor_weight=self.recipe.anchor_weight,
            exclude=exclude,
        )

    def cached_backward(
        self,
        model: torch.nn.Module,
        fields: Fields,
        accelerator: Accelerator,
        anchors: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """GradCache: embed without gradients, backpropagate the loss to the embeddings, then chunk by chunk
        into the model with the same dropout masks. Returns the (detached) loss."""
        chunks = field_chunks(fields, self.recipe.cache_chunk)
        states, leaves = [], []
        with torch.no_grad():
            for name, chunk in chunks:
                states.append(_RandomState(accelerator.device))
                leaves.append(self.encoder(model, chunk, accelerator.device)[name].detach().requires_grad_())
        embeddings = {
            name: torch.cat([leaf for (n, _), leaf in zip(chunks, leaves, strict=True) if n == name])
            for name in fields
        }
        loss = self.loss(embeddings, accelerator, anchors)
        loss.backward()  # gradients of the loss w.r.t. the cached embeddings only
        for index, ((name, chunk), state, leaf) in enumerate(zip(chunks, states, leaves, strict=True)):
            # Gradients are synchronised across processes once, with the last chunk.
            sync = contextlib.nullcontext() if index == len(chunks) - 1 else accelerator.no_sync(model)
            with state.replay(), sync:
                embedding = self.encoder(model, chunk, accelerator.device)[name]
                accelerator.backward((embedding * leaf.grad).sum())
        return loss.detach()


def train_r2(
    base: str, data_dir: str | Path, settings: LoopSettings, recipe: R2Recipe, lora: LoraSettings
) -> tuple[torch.nn.Module, dict] | None:
    """Train Round 2 from ``base`` (the R1 checkpoint); returns ``(merged model, summary)`` or ``None``
    when the run stopped early."""
    check_options(recipe, lora)
    for model_source in filter(None, [base, recipe.graft_onto]):
        check_model_source(model_source)  # a wrong path fails before the data is read
    triplets = load_r2_data(data_dir, recipe.skip_negative_types) if recipe.steps != 0 else []
    pairs = {
        task: load_pair_data(
            data_dir, task, ["cv"] if task == "questions" and recipe.question_windows else []
        )
        for task in PAIR_TASKS
        if recipe.pair_steps(task)
    }
    accelerator = make_accelerator(settings, find_unused_parameters=lora.rank == 0)
    set_seed(settings.seed)
    model = load_model(base)
    if recipe.question_windows:
        size = text_room(model, PAIR_TASKS["questions"].kinds["positive"], recipe.max_length)
        source = str(Path(data_dir) / PAIR_TASKS["questions"].file)
        pairs["questions"] = question_windows(
            pairs["questions"], model.tokenizer, size, settings.seed, source
        )
    # Before the adapter is added: the starting model's own view of which occupations are alike.
    title_neighbours = group_vectors(model, pairs["titles"], "titles") if recipe.title_neighbours else None
    # The frozen starting model: the JD anchor's targets, the interpolation's other end and the weights
    # that the tasks without the adapter keep.
    frozen = None
    if recipe.anchor_weight or recipe.update_weight != 1 or recipe.task_adapter:
        frozen = copy.deepcopy(model).requires_grad_(False).eval().to(accelerator.device)
    model = add_lora(model, lora)
    world, accumulation = accelerator.num_processes, settings.gradient_accumulation_steps
    batch = recipe.batch_size * world
    steps = recipe.steps if recipe.steps is not None else math.ceil(len(triplets) / (batch * accumulation))
    jdcv = cycle_batches(triplets, steps * accumulation, batch, settings.seed) if steps else []
    tasks = [[MicroBatch("jdcv", chunk) for chunk in jdcv]]
    for task, examples in pairs.items():
        count = recipe.pair_steps(task) * accumulation
        chunks = cycle_grouped_batches(
            examples,
            count,
            recipe.pair_batch_size * world,
            settings.seed,
            PAIR_TASKS[task].per_group,
            title_neighbours if task == "titles" else None,
        )
        tasks.append([MicroBatch(task, chunk) for chunk in chunks])
    # One optimizer step is one task's micro-batches, so accumulation never mixes two tasks' losses.
    schedule = interleave(
        *([task[i : i + accumulation] for i in range(0, len(task), accumulation)] for task in tasks)
    )
    objective = R2Objective(
        BatchEncoder.for_model(model, recipe.max_length, accelerator.num_processes), recipe, frozen
    )
    model, result = run_training(accelerator, model, schedule, objective, settings)
    if not result.finished:
        return None
    model = accelerator.unwrap_model(model)
    if recipe.task_adapter:
        model = to_task_adapter(model, frozen, recipe.task_adapter, recipe.update_weight)
        if recipe.graft_onto:
            host = load_model(recipe.graft_onto).to(accelerator.device)
            model = graft_task_adapter(model, host, frozen, recipe.task_adapter)
    elif recipe.update_weight != 1:
        model = scale_update(model, frozen, recipe.update_weight)
    counts = ({"jdcv": len(triplets)} if triplets else {}) | {
        task: len(examples) for task, examples in pairs.items()
    }
    return model, round_summary(result, counts, recipe, lora, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="CRE Round 2: JD–CV alignment (multiple-negatives ranking loss)"
    )
    parser.add_argument("--data", required=True, help="synthesis run folder (jdcv.jsonl)")
    parser.add_argument(
        "--base", required=True, help="the Round 1 checkpoint (or any CRE checkpoint/backbone)"
    )
    parser.add_argument("--out", required=True, help="output folder (checkpoint, state/, logs/)")
    add_recipe_arguments(parser, R2Recipe)
    add_lora_arguments(parser)
    add_loop_arguments(parser, lr=5e-5)
    add_hub_arguments(parser)
    return parser


@report_data_errors
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = build_parser()
    args, recipe = parse_recipe(parser, R2Recipe, argv)
    lora = LoraSettings.from_args(args)
    try:
        check_options(recipe, lora)
    except ValueError as error:
        parser.error(str(error))
    trained = train_r2(args.base, args.data, LoopSettings.from_args(args), recipe, lora)
    return finish_round(trained, args, "r2")


if __name__ == "__main__":
    sys.exit(main())
