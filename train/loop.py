"""The training loop every round shares: Accelerate, a fixed batch schedule, checkpoints and resume.

A round describes its work as a **schedule**: the list of global micro-batches, fixed in advance by
the seed (:func:`cycle_batches`). Step ``s`` always trains on the same examples, whichever process
count runs it, so a run stopped after any saved step and resumed with ``--resume`` replays exactly
the batches an uninterrupted run would have seen; Accelerate's ``save_state``/``load_state`` bring
back the weights, optimizer, learning-rate schedule and random number generators, so the resumed
run ends with the same weights.

Each process trains on its slice of every micro-batch (``examples[rank::world]``), gradients are
averaged by DDP, and the round's objective does its own backward pass (so that an objective such as
Round 2's cached loss can run several partial passes).

Written under ``output_dir``:

* ``state/step-N/``: the latest Accelerate state (every ``save_every`` optimizer steps);
* ``logs/train_log.csv``: step, stage, loss parts, learning rate, throughput (pairs/s) and elapsed
  seconds; with ``log_with="tensorboard"`` also a TensorBoard run under ``logs/``.

Example:
    >>> settings = LoopSettings(output_dir="runs/r1", learning_rate=5e-5, save_every=50)
    >>> accelerator = make_accelerator(settings)  # doctest: +SKIP
    >>> model, result = run_training(accelerator, model, schedule, objective, settings)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import random
import resource
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

logger = logging.getLogger(__name__)

STATE_DIR = "state"
LOG_DIR = "logs"


@dataclass
class MicroBatch:
    """One global micro-batch: the examples all processes share out, and the curriculum stage."""

    stage: str
    examples: list[Any]


# objective(model, micro_batch_of_this_process, accelerator) -> {"loss": float, ...}; runs backward itself.
Objective = Callable[[torch.nn.Module, MicroBatch, Accelerator], dict[str, float]]


@dataclass
class LoopSettings:
    """Optimisation, precision, logging and checkpoint options of a round.

    Attributes:
        output_dir: The round's folder (states and logs live below it).
        learning_rate: Peak AdamW learning rate, reached after warm-up, then decayed linearly to 0.
        weight_decay: AdamW weight decay.
        warmup_ratio: Fraction of the optimizer steps spent warming up.
        gradient_accumulation_steps: Micro-batches per optimizer step.
        max_grad_norm: Gradient clipping (0 disables it).
        mixed_precision: ``no``, ``bf16``, ``fp16``, or ``auto`` (bf16 on GPUs that support it, else no).
        seed: Seed of the schedule, adapter initialisation and dropout.
        save_every: Save the Accelerate state every N optimizer steps (0: only at the end).
        resume: Continue from the latest saved state under ``output_dir``.
        stop_after: Stop (with the state saved) after this optimizer step; simulates an interruption.
        log_every: Log every N optimizer steps.
        log_with: ``csv`` (always written) or ``tensorboard`` (in addition).
    """

    output_dir: str | Path
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str = "auto"
    seed: int = 0
    save_every: int = 0
    resume: bool = False
    stop_after: int | None = None
    log_every: int = 1
    log_with: str = "csv"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LoopSettings:
        return cls(
            output_dir=args.out,
            learning_rate=args.lr,
            weight_decay=args.weight_decay,
            warmup_ratio=args.warmup_ratio,
            gradient_accumulation_steps=args.grad_accum,
            max_grad_norm=args.max_grad_norm,
            mixed_precision=args.mixed_precision,
            seed=args.seed,
            save_every=args.save_every,
            resume=args.resume,
            stop_after=args.stop_after,
            log_every=args.log_every,
            log_with=args.log_with,
        )


def add_loop_arguments(parser: argparse.ArgumentParser, lr: float) -> None:
    """Add the :class:`LoopSettings` options (``--lr``, ``--grad-accum``, ``--resume``, ...)."""
    group = parser.add_argument_group("optimisation and checkpoints")
    group.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    group.add_argument("--weight-decay", type=float, default=0.01)
    group.add_argument("--warmup-ratio", type=float, default=0.1)
    group.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    group.add_argument("--max-grad-norm", type=float, default=1.0)
    group.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"], default="auto")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--save-every", type=int, default=0, help="save the training state every N steps")
    group.add_argument("--resume", action="store_true", help="continue from the latest saved state")
    group.add_argument(
        "--stop-after", type=int, help="stop after this step, state saved (to test or split a run)"
    )
    group.add_argument("--log-every", type=int, default=1)
    group.add_argument("--log-with", choices=["csv", "tensorboard"], default="csv")


@dataclass
class TrainingResult:
    """What a run did, for logs, model cards and benchmarks.

    Attributes:
        steps: Optimizer steps completed (including those of the run that was resumed).
        finished: ``False`` when the run stopped early (``stop_after``).
        final_loss: Mean loss of the last logged step.
        seconds: Wall time of this run's training steps.
        pairs: Training examples processed by this run (all processes).
        pairs_per_second: ``pairs / seconds``.
        peak_memory_mb: Peak resident memory of this process (CPU) or peak allocated GPU memory.
        replicas_identical: Whether every process ended with bit-identical weights.
        trainable_parameters: Parameters the optimizer updated.
    """

    steps: int = 0
    finished: bool = True
    final_loss: float = math.nan
    seconds: float = 0.0
    pairs: int = 0
    pairs_per_second: float = 0.0
    peak_memory_mb: float = 0.0
    replicas_identical: bool = True
    trainable_parameters: int = 0
    resumed_from: int | None = None
    stage_losses: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def setup_logging() -> None:
    """Log this project's progress at INFO and everything else (Accelerate's per-file save messages,
    ...) at WARNING, for the command-line entry points."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("train").setLevel(logging.INFO)


def make_accelerator(settings: LoopSettings, find_unused_parameters: bool = False) -> Accelerator:
    """An :class:`~accelerate.Accelerator` for ``settings`` (precision, accumulation, trackers)."""
    precision = settings.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return Accelerator(
        # Without a GPU, processes started by `accelerate launch --multi_gpu` train on CPU over gloo.
        cpu=not torch.cuda.is_available(),
        mixed_precision=precision,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        log_with="tensorboard" if settings.log_with == "tensorboard" else None,
        project_config=ProjectConfiguration(
            project_dir=str(settings.output_dir), logging_dir=str(Path(settings.output_dir) / LOG_DIR)
        ),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)],
    )


def cycle_batches(examples: Sequence[Any], count: int, batch_size: int, seed: int) -> list[list[Any]]:
    """``count`` batches of exactly ``batch_size`` examples, from seeded shuffled passes over the data.

    Every batch is full (the next pass starts inside it), so each process always gets the same share.

    Example:
        >>> cycle_batches(["a", "b", "c"], count=2, batch_size=2, seed=0)
        [['a', 'c'], ['b', 'c']]
    """
    if not examples:
        raise ValueError("cannot draw batches from an empty set of examples")
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < count * batch_size:
        permutation = list(range(len(examples)))
        rng.shuffle(permutation)
        order += permutation
    return [[examples[i] for i in order[b * batch_size : (b + 1) * batch_size]] for b in range(count)]


def cycle_grouped_batches(
    examples: Sequence[dict],
    count: int,
    batch_size: int,
    seed: int,
    per_group: int | None,
    neighbours: Mapping[str, np.ndarray] | None = None,
) -> list[list[dict]]:
    """Like :func:`cycle_batches`, but each pass keeps the examples of one ``source_id`` together and
    takes at most ``per_group`` of them (``None``: all), so a batch holds whole groups.

    With ``neighbours`` (``source_id`` -> a unit vector) each pass runs through the groups in runs of
    ``batch_size // per_group``: a random group, then the groups nearest to it that the pass has not
    taken yet (:func:`neighbour_order`), so that a batch's groups are each other's hard negatives.

    Example:
        >>> rows = [{"source_id": s, "n": n} for s, n in ["a1", "a2", "b1", "c1"]]
        >>> [[row["source_id"] for row in batch] for batch in cycle_grouped_batches(rows, 2, 2, 0, 1)]
        [['a', 'c'], ['b', 'a']]
    """
    if not examples:
        raise ValueError("cannot draw batches from an empty set of examples")
    groups: dict[str, list[dict]] = {}
    for example in examples:
        groups.setdefault(example["source_id"], []).append(example)
    if neighbours is not None and (missing := [name for name in groups if name not in neighbours]):
        raise ValueError(f"no neighbour vector for {len(missing)} group(s), e.g. {missing[0]!r}")
    rng = random.Random(seed)
    order: list[dict] = []
    while len(order) < count * batch_size:
        names = list(groups)
        rng.shuffle(names)
        if neighbours is not None:
            names = neighbour_order(names, neighbours, max(1, batch_size // (per_group or 1)))
        for name in names:
            members = groups[name]
            order += rng.sample(members, min(per_group or len(members), len(members)))
    return [order[b * batch_size : (b + 1) * batch_size] for b in range(count)]


def neighbour_order(names: Sequence[str], vectors: Mapping[str, np.ndarray], run: int) -> list[str]:
    """``names`` in runs of ``run``: the first name not yet taken, then its nearest (by cosine of unit
    ``vectors``) names not yet taken, nearest first; the runs follow the order of ``names``.

    Example:
        >>> vectors = {name: np.array(v, dtype=float) for name, v in
        ...            {"cook": [1, 0], "chef": [0.9, 0.44], "nurse": [0, 1], "midwife": [0.1, 0.99]}.items()}
        >>> neighbour_order(["cook", "nurse", "chef", "midwife"], vectors, run=2)
        ['cook', 'chef', 'nurse', 'midwife']
    """
    matrix = np.stack([vectors[name] for name in names])
    taken = np.zeros(len(names), dtype=bool)
    order: list[str] = []
    for first in range(len(names)):
        if taken[first]:
            continue
        taken[first] = True
        similarity = matrix @ matrix[first]
        similarity[taken] = -np.inf
        nearest = np.argsort(-similarity, kind="stable")[: min(run - 1, int((~taken).sum()))]
        taken[nearest] = True
        order += [names[first], *(names[index] for index in nearest)]
    return order


def latest_state(output_dir: str | Path) -> tuple[Path, int] | None:
    """The newest ``state/step-N`` folder under ``output_dir`` and its step, or ``None``."""
    folders = [
        (path, int(path.name.split("-")[1]))
        for path in (Path(output_dir) / STATE_DIR).glob("step-*")
        if path.name.split("-")[1].isdigit()
    ]
    return max(folders, key=lambda item: item[1]) if folders else None


def run_training(
    accelerator: Accelerator,
    model: torch.nn.Module,
    schedule: Sequence[MicroBatch],
    objective: Objective,
    settings: LoopSettings,
) -> tuple[torch.nn.Module, TrainingResult]:
    """Train ``model`` on ``schedule`` with ``objective``; returns the unwrapped model and a summary.

    Args:
        accelerator: From :func:`make_accelerator` (created before the model so that seeding and
            process rank are known).
        model: The model with only the parameters to train left trainable.
        schedule: Global micro-batches; ``len(schedule)`` must be a multiple of the accumulation steps.
        objective: Computes the loss of one process's share of a micro-batch and runs backward.
        settings: Optimisation and checkpoint options.

    Returns:
        ``(model, result)``; the model is unwrapped from DDP and left in eval mode.

    Raises:
        ValueError: The schedule does not split into whole optimizer steps, or ``--resume`` found no state.
    """
    accumulation = settings.gradient_accumulation_steps
    if len(schedule) % accumulation:
        raise ValueError(f"{len(schedule)} micro-batches do not make whole steps of {accumulation}")
    total_steps = len(schedule) // accumulation
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(settings.warmup_ratio * total_steps), total_steps
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    # Stepped by hand once per optimizer step: a prepared scheduler would step once per process.
    accelerator.register_for_checkpointing(scheduler)
    result = TrainingResult(trainable_parameters=sum(p.numel() for p in trainable))
    start = _resume(accelerator, settings) if settings.resume else 0
    result.resumed_from = start if settings.resume else None
    if settings.log_with == "tensorboard":
        accelerator.init_trackers("train")
    log = _CsvLog(Path(settings.output_dir) / LOG_DIR / "train_log.csv", accelerator.is_main_process)
    log.keep_until(start)  # a killed run may have logged steps past its last saved state

    model.train()
    started = time.perf_counter()
    progress = tqdm(
        total=total_steps, initial=start, desc="train", unit="step", disable=not accelerator.is_main_process
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    for step in range(start, total_steps):
        step_logs: list[dict[str, float]] = []
        for micro in schedule[step * accumulation : (step + 1) * accumulation]:
            share = MicroBatch(micro.stage, micro.examples[rank::world])
            with accelerator.accumulate(model):
                step_logs.append(objective(model, share, accelerator))
                if accelerator.sync_gradients and settings.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, settings.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            result.pairs += len(micro.examples)
        scheduler.step()
        done = step + 1
        result.steps = done
        result.seconds = time.perf_counter() - started
        if done % settings.log_every == 0 or done == total_steps:
            row = _mean_logs(step_logs, accelerator)
            result.final_loss = row["loss"]
            result.stage_losses[schedule[step * accumulation].stage] = row["loss"]
            row.update(
                step=done,
                stage=schedule[step * accumulation].stage,
                lr=scheduler.get_last_lr()[0],
                pairs_per_s=result.pairs / max(result.seconds, 1e-9),
                elapsed_s=result.seconds,
            )
            log.write(row)
            accelerator.log({k: v for k, v in row.items() if k != "stage"}, step=done)
            progress.set_postfix(stage=row["stage"], loss=f"{row['loss']:.4f}")
        progress.update(1)
        stopping = settings.stop_after is not None and done >= settings.stop_after and done < total_steps
        if (settings.save_every and done % settings.save_every == 0) or stopping:
            _save_state(accelerator, settings.output_dir, done)
        if stopping:
            result.finished = False
            break
    progress.close()
    result.pairs_per_second = result.pairs / max(result.seconds, 1e-9)
    result.peak_memory_mb = peak_memory_mb()
    result.replicas_identical = replicas_identical(accelerator, model)
    for tracker in accelerator.trackers:  # not end_training(): that also ends the process group
        tracker.finish()
    model = accelerator.unwrap_model(model)
    return model.eval(), result


def _resume(accelerator: Accelerator, settings: LoopSettings) -> int:
    found = latest_state(settings.output_dir)
    if found is None:
        raise ValueError(f"--resume: no saved state under {Path(settings.output_dir) / STATE_DIR}")
    folder, step = found
    accelerator.load_state(str(folder))
    if accelerator.is_main_process:
        logger.info("resumed from %s (step %d)", folder, step)
    return step


def _save_state(accelerator: Accelerator, output_dir: str | Path, step: int) -> None:
    """Save the state of ``step`` and keep only the newest one (states are as large as the model)."""
    folder = Path(output_dir) / STATE_DIR / f"step-{step}"
    accelerator.save_state(str(folder))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for old in (Path(output_dir) / STATE_DIR).glob("step-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)


def _mean_logs(logs: list[dict[str, float]], accelerator: Accelerator) -> dict[str, float]:
    """Average a step's micro-batch logs, then over processes."""
    keys = sorted(logs[0])
    values = torch.tensor([[entry[k] for k in keys] for entry in logs], dtype=torch.float64).mean(0)
    values = accelerator.reduce(values.to(accelerator.device), reduction="mean").cpu()
    return dict(zip(keys, values.tolist(), strict=True))


def replicas_identical(accelerator: Accelerator, model: torch.nn.Module) -> bool:
    """Whether all processes hold the same weights (checked on per-tensor sums and sums of squares)."""
    if accelerator.num_processes == 1:
        return True
    with torch.no_grad():
        fingerprint = torch.stack(
            [torch.stack([p.double().sum(), p.double().pow(2).sum()]) for p in model.parameters()]
        ).to(accelerator.device)
    everyone = accelerator.gather(fingerprint.unsqueeze(0))
    return bool((everyone == everyone[0]).all())


def peak_memory_mb() -> float:
    """Peak allocated GPU memory, or this process's peak resident memory on CPU, in MiB."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class _CsvLog:
    """Append rows to a CSV file (main process only); the header comes from the first row."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def keep_until(self, step: int) -> None:
        """Drop rows logged after ``step``."""
        if not self.enabled or not self.path.exists():
            return
        with self.path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
        self.path.unlink()
        for row in rows:
            if int(row["step"]) <= step:
                self.write(row)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(row), extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
