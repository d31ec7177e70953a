"""Round 1: JD–JD domain alignment with a LoRA adapter and a four-stage curriculum.

One adapter trains through four stages, in order:

1. **card warm-up** on stage-3 pairs (a JD summary and its key-facts card),
2. **semantic alignment** on stage-2 pairs (a JD and its paraphrase),
   both with ``L_pair = w_p·(1 − cos(q, c))² + w_d·(MSE(e_q, e_q^t) + MSE(e_c, e_c^t))``;
3. **profile** on ``profiles.jsonl`` (a JD's opening and the whole JD) with
   :func:`train.losses.profile_loss` towards the frozen model's whole-JD embeddings (skipped when
   the synthesis run has no such file, or with ``--profile-steps 0``);
4. **ranking** on (q, c+, c−_role, c−_cons) with
   ``L = w_p·L_pos + w_r·L_role + w_k·L_cons + w_d·L_distill`` (see :mod:`train.losses`),

where ``^t`` is the frozen original model, which keeps the embeddings close to the pretrained space.
The CNN projection, when the model has one, trains jointly. The adapter is merged into the released
checkpoint.

Recipe: the CRE paper uses r = 16, α = 32 and lr 8e-6 on 0.5B+ decoders. On MiniLM-sized backbones
an adapter at 8e-6 barely moves in the few hundred steps a CPU budget allows, so the default learning
rate is 5e-5 with the same r and α. The loss weights default to the paper's; the main job
(:mod:`train.pipeline`) raises ``w_d`` to 0.5, because with 0.05 Round 1 on MiniLM drifted below the
zero-shot model on O*NET dev (NDCG@10 −0.009) and with 0.5 it stays above it (+0.004). Every option
is a flag (``--help``).

Command line (one process, or several with ``accelerate launch --multi_gpu --num_processes N -m
train.r1 ...``; without a GPU the processes train on CPU over gloo)::

    python -m train.r1 --data runs/synth --base minilm --out outputs/r1 --cnn
    python -m train.r1 --data runs/synth --base minilm --out outputs/r1 --resume   # after an interruption
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

if not __package__:  # run by path (`accelerate launch train/r2.py`): see train/_run_by_path.py
    import _run_by_path  # noqa: F401  (puts the repository root on sys.path)

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed

from common.backbones import check_model_source
from common.models import load_model
from train.checkpoint import add_hub_arguments, finish_round, round_summary
from train.data import read_records, report_data_errors, require_records
from train.encoding import LENGTH_CHUNK, BatchEncoder, batch_fields
from train.loop import (
    LoopSettings,
    MicroBatch,
    add_loop_arguments,
    cycle_batches,
    make_accelerator,
    run_training,
    setup_logging,
)
from train.lora import LoraSettings, add_lora, add_lora_arguments
from train.losses import RankingWeights, pair_loss, profile_loss, ranking_loss
from train.recipes import add_recipe_arguments, option, parse_recipe

STAGES = ("card", "semantic", "profile", "ranking")
PAIR_STAGE_OF = {"card": "card", "paraphrase": "semantic"}  # pairs.jsonl ``stage`` -> curriculum stage
PAIR_FIELDS = ("query", "positive")
RANKING_FIELDS = ("query", "positive", "negative_role", "negative_constraint")
LOSS_PARTS = ("loss", "pos", "role", "constraint", "distill", "structure")


@dataclass
class R1Recipe:
    """Round 1's data and curriculum options (each one a flag of ``python -m train.r1``).

    Attributes:
        card_steps: Optimizer steps of the card warm-up (``None``: one pass over its data).
        semantic_steps: Likewise for semantic alignment.
        profile_steps: Likewise for the profile stage (0 skips it).
        ranking_steps: Likewise for the ranking stage.
        batch_size: Examples per process per micro-batch.
        profile_batch_size: The profile stage's micro-batch (default ``batch_size``): only short openings
            run through the trained model there, and a larger batch gives its in-batch ranking more
            related jobs to order.
        max_length: Token budget per JD text.
        profile_teacher_rt: RT iterations of the frozen model when it embeds the whole JDs of the
            profile stage (0 = plain). RT's refinement then reaches the single-pass student without
            RT's test-time cost.
        weights: Loss weights and margins.
    """

    card_steps: int | None = option(None, "card stage steps (default: one pass)")
    semantic_steps: int | None = option(None, "semantic stage steps (default: one pass)")
    profile_steps: int | None = option(None, "profile stage steps (default: one pass)")
    ranking_steps: int | None = option(None, "ranking stage steps (default: one pass)")
    batch_size: int = option(16, "examples per process per micro-batch")
    profile_batch_size: int | None = option(
        None, "profile-stage openings per process per micro-batch (default --batch-size)"
    )
    max_length: int = option(128, "token budget per JD")
    profile_teacher_rt: int = option(
        0, "RT iterations of the frozen model for the profile stage's whole-JD targets (0 = off)"
    )
    weights: RankingWeights = option(default_factory=RankingWeights, help="loss weights and margins")

    def steps(self, stage: str) -> int | None:
        """The optimizer steps of ``stage`` (one of :data:`STAGES`; ``None``: one pass)."""
        return getattr(self, f"{stage}_steps")


def load_r1_data(data_dir: str | Path) -> dict[str, list[dict]]:
    """The training examples of each stage (``train`` split of ``pairs.jsonl`` and ``ranking.jsonl``).

    Raises:
        TrainingDataError: A malformed record, or a stage without examples.
    """
    data_dir = Path(data_dir)
    pairs = read_records(
        data_dir / "pairs.jsonl", [*PAIR_FIELDS, "stage"], "train", choices={"stage": list(PAIR_STAGE_OF)}
    )
    stages = {
        stage: [r for r in pairs if PAIR_STAGE_OF[r["stage"]] == stage] for stage in ("card", "semantic")
    }
    profiles = data_dir / "profiles.jsonl"  # older synthesis runs have none: the stage is skipped
    stages["profile"] = read_records(profiles, PAIR_FIELDS, "train") if profiles.exists() else []
    stages["ranking"] = read_records(data_dir / "ranking.jsonl", RANKING_FIELDS, "train")
    for stage, records in stages.items():
        if stage != "profile" or profiles.exists():
            require_records(records, f"R1 {stage} stage ({data_dir}, split train)")
    return stages


def build_schedule(
    stages: dict[str, list[dict]], recipe: R1Recipe, accumulation: int, world: int, seed: int
) -> list[MicroBatch]:
    """The curriculum as global micro-batches: card, semantic, profile, then ranking (0-step stages skipped)."""
    schedule = []
    for index, stage in enumerate(STAGES):
        examples = stages[stage]
        per_process = recipe.profile_batch_size if stage == "profile" else None
        batch = (per_process or recipe.batch_size) * world
        steps = recipe.steps(stage)
        if steps is None:
            steps = math.ceil(len(examples) / (batch * accumulation))
        if not steps:
            continue
        for chunk in cycle_batches(examples, steps * accumulation, batch, seed + index):
            schedule.append(MicroBatch(stage, chunk))
    return schedule


class R1Objective:
    """Embeds a micro-batch with the trained model and backpropagates the stage's loss towards the frozen
    original model's embeddings, which never change and so were computed before training.

    Args:
        encoder: Tokenises the JD fields.
        weights: Loss weights and margins.
        teacher_targets: The frozen model's embedding of every text of the card, semantic and ranking
            steps (:func:`embed_teacher_targets`).
        profile_targets: Its embedding of every whole JD of the profile stage (:func:`embed_profiles`).
    """

    def __init__(
        self,
        encoder: BatchEncoder,
        weights: RankingWeights,
        teacher_targets: dict[str, torch.Tensor],
        profile_targets: dict[str, torch.Tensor] | None = None,
    ):
        self.encoder, self.weights = encoder, weights
        self.teacher_targets, self.profile_targets = teacher_targets, profile_targets or {}

    def __call__(
        self, model: torch.nn.Module, batch: MicroBatch, accelerator: Accelerator
    ) -> dict[str, float]:
        if batch.stage == "profile":
            return self.profile_step(model, batch, accelerator)
        fields = batch_fields(batch.examples, dict.fromkeys(stage_fields(batch.stage), "jd"))
        embeddings = self.encoder(model, fields, accelerator.device)
        targets = {
            name: torch.stack([self.teacher_targets[text] for text in texts]).to(accelerator.device)
            for name, (_, texts) in fields.items()
        }
        loss_fn = ranking_loss if batch.stage == "ranking" else pair_loss
        parts = loss_fn(embeddings, targets, self.weights)
        return self.backward(parts, accelerator)

    def profile_step(
        self, model: torch.nn.Module, batch: MicroBatch, accelerator: Accelerator
    ) -> dict[str, float]:
        """Only the openings go through the trained model; the whole JDs' targets were computed once."""
        openings = [example["query"] for example in batch.examples]
        opening = self.encoder(model, {"query": ("jd", openings)}, accelerator.device)["query"]
        profile = torch.stack([self.profile_targets[example["positive"]] for example in batch.examples])
        parts = profile_loss(opening, profile.to(accelerator.device), self.weights)
        return self.backward(parts, accelerator)

    @staticmethod
    def backward(parts: dict[str, torch.Tensor], accelerator: Accelerator) -> dict[str, float]:
        accelerator.backward(parts["loss"])
        return {name: float(parts[name].detach()) if name in parts else 0.0 for name in LOSS_PARTS}


def embed_profiles(
    teacher: torch.nn.Module,
    examples: list[dict],
    batch_size: int = 32,
    accelerator: Accelerator | None = None,
    rt_iterations: int = 0,
) -> dict[str, torch.Tensor]:
    """The frozen model's embedding of each distinct whole JD of the profile stage, read up to the model's
    ``max_length``: the targets never change, so they are computed once instead of at every step.

    ``rt_iterations`` > 0 embeds them with RT (the model's configured placement). With an
    ``accelerator`` of several processes, each embeds its share and all of them receive every target.
    """
    texts = list(dict.fromkeys(example["positive"] for example in examples))
    # ``encode`` batches by token length and returns the rows in input order.
    targets = embed_shared(
        texts,
        lambda mine: teacher.encode(
            mine,
            kind="jd",
            batch_size=batch_size,
            normalize=False,
            convert_to="torch",
            rt_iterations=rt_iterations,
        ),
        accelerator,
    )
    return {text: targets[text] for text in texts}


def embed_shared(
    texts: list[str],
    embed: Callable[[list[str]], Sequence[torch.Tensor]],
    accelerator: Accelerator | None = None,
) -> dict[str, torch.Tensor]:
    """``embed`` over ``texts``: with an ``accelerator`` of several processes each embeds its share,
    and all of them receive every text's vector."""
    processes = accelerator.num_processes if accelerator is not None else 1
    mine = texts[accelerator.process_index :: processes] if processes > 1 else texts
    pairs = list(zip(mine, embed(mine) if mine else [], strict=True))
    if processes > 1:
        pairs = gather_object(pairs)
    return dict(pairs)


def stage_fields(stage: str) -> tuple[str, ...]:
    """The JD fields a card, semantic or ranking step embeds."""
    return RANKING_FIELDS if stage == "ranking" else PAIR_FIELDS


@torch.no_grad()
def embed_teacher_targets(
    teacher: torch.nn.Module,
    encoder: BatchEncoder,
    schedule: list[MicroBatch],
    accelerator: Accelerator | None = None,
) -> dict[str, torch.Tensor]:
    """The frozen model's embedding of every distinct text the card, semantic and ranking steps read.

    The targets never change, and most texts come back in several steps (a JD is the anchor of its
    card pair, its semantic pair and its ranking lists), so each is embedded once, before training,
    in chunks of similar length: the same vectors as embedding them at every step, up to the rounding
    of other padding. With an ``accelerator`` of several processes, each embeds its share and all
    of them receive every target.
    """
    texts = list(
        dict.fromkeys(
            example[name]
            for batch in schedule
            if batch.stage != "profile"
            for example in batch.examples
            for name in stage_fields(batch.stage)
        )
    )
    device = accelerator.device if accelerator is not None else None
    # No gradients flow here, so no DDP reducer needs one pass: chunks by length in every process.
    chunked = replace(encoder, chunk_size=encoder.chunk_size or LENGTH_CHUNK)
    return embed_shared(
        texts, lambda mine: chunked(teacher, {"texts": ("jd", mine)}, device)["texts"].cpu(), accelerator
    )


def train_r1(
    base: str,
    data_dir: str | Path,
    settings: LoopSettings,
    recipe: R1Recipe,
    lora: LoraSettings,
    cnn: bool = False,
) -> tuple[torch.nn.Module, dict] | None:
    """Train Round 1 and return ``(merged model, summary)``, or ``None`` when the run stopped early.

    Data are read and validated before the model is loaded, so bad data fails fast.
    """
    check_model_source(base)  # a wrong path fails before the data is read
    stages = load_r1_data(data_dir)
    accelerator = make_accelerator(settings, find_unused_parameters=lora.rank == 0)
    set_seed(settings.seed)
    model = load_model(base, **({"cnn": {"enabled": True}} if cnn else {}))
    teacher = copy.deepcopy(model).requires_grad_(False).eval().to(accelerator.device)
    model = add_lora(model, lora)
    schedule = build_schedule(
        stages, recipe, settings.gradient_accumulation_steps, accelerator.num_processes, settings.seed
    )
    scheduled = any(batch.stage == "profile" for batch in schedule)
    targets = (
        embed_profiles(
            teacher, stages["profile"], accelerator=accelerator, rt_iterations=recipe.profile_teacher_rt
        )
        if scheduled
        else {}
    )
    encoder = BatchEncoder.for_model(model, recipe.max_length, accelerator.num_processes)
    objective = R1Objective(
        encoder, recipe.weights, embed_teacher_targets(teacher, encoder, schedule, accelerator), targets
    )
    del teacher  # everything it gives is computed: its memory goes to training
    model, result = run_training(accelerator, model, schedule, objective, settings)
    if not result.finished:
        return None
    examples = {stage: len(records) for stage, records in stages.items()}
    return model, round_summary(result, examples, recipe, lora, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="CRE Round 1: JD–JD alignment (LoRA, 4-stage curriculum)")
    parser.add_argument("--data", required=True, help="synthesis run folder (pairs.jsonl, ranking.jsonl)")
    parser.add_argument("--base", default="minilm", help="backbone alias/folder, or a CRE checkpoint")
    parser.add_argument("--out", required=True, help="output folder (checkpoint, state/, logs/)")
    parser.add_argument("--cnn", action="store_true", help="add the CNN projection and train it jointly")
    add_recipe_arguments(parser, R1Recipe)
    add_lora_arguments(parser)
    add_loop_arguments(parser, lr=5e-5)
    add_hub_arguments(parser)
    return parser


@report_data_errors
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args, recipe = parse_recipe(build_parser(), R1Recipe, argv)
    settings = LoopSettings.from_args(args)
    trained = train_r1(args.base, args.data, settings, recipe, LoraSettings.from_args(args), args.cnn)
    return finish_round(trained, args, "r1")


if __name__ == "__main__":
    sys.exit(main())
