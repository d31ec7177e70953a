"""CRE-T1's GRPO stage: train the reasoning generator so that its traces make the encoder retrieve better.

The policy is a chat LM that writes a short reasoning trace for a query (a JD, a recruiter question),
answering the ``reasoning`` prompt of :class:`train.reasoning.TraceGenerator`'s backends
(:func:`train.t1.policy_prompt`), so the trained policy serves as ``TraceGenerator("local",
model="<out>/final")``. The reward of a trace is the rank of the query's fitting CV when the query is
encoded as ``CREModel.encode(..., reason=...)`` encodes it, ``join_reasoning(query, trace)``, or the
plain query when the trace fails validation (:func:`train.reasoning.trace_problem`), by the frozen CRE
encoder and compared with a pool of CVs (:class:`RankReward`). TRL's ``GRPOTrainer`` samples
``generations`` traces per query and moves the policy towards those that rank above their group's mean.

The pool of a query is every fitting CV (or passage) of its source file, or a seeded sample of
``pool_size`` of them, plus its own; the rank counts ties against the trace (a tie is not a win), so
a trace that changes nothing earns nothing, and a non-finite similarity ranks last.

Written under ``--out``: TRL checkpoints (``checkpoint-N/``, for ``--resume``), ``final/`` (the
policy and its tokenizer) and ``grpo_summary.json`` (the recipe, the mean reward of each step, the
greedy reward before and after, seconds per step).

Command line::

    python -m train.grpo --data runs/synth --policy smollm2-135m --encoder outputs/r2 --out outputs/grpo
    accelerate launch -m train.grpo --data runs/synth --policy smollm2-135m --encoder outputs/r2 \\
        --out outputs/grpo --steps 500 --queries-per-step 8 --generations 8
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run by path (`accelerate launch train/grpo.py`): see train/_run_by_path.py
    import _run_by_path  # noqa: F401  (puts the repository root on sys.path)

import torch
from tqdm.auto import tqdm

from common.backbones import check_model_source
from common.models import load_model
from cre.modeling_cre import join_reasoning
from train.data import TrainingDataError, report_data_errors
from train.loop import setup_logging
from train.reasoning import TraceGenerator, trace_problem
from train.recipes import add_recipe_arguments, option, parse_recipe
from train.t1 import (
    QUERY_SOURCES,
    completion_trace,
    load_policy,
    load_query_examples,
    policy_prompt,
    source_names,
)

logger = logging.getLogger("train.grpo")  # not __name__, which is __main__ under -m

REWARDS = ("reciprocal-rank", "normalised-rank")
# texts, input kind -> (n, dim) float32 rows, L2-normalised
Encoder = Callable[[list[str], str], torch.Tensor]


@dataclass
class GRPORecipe:
    """The GRPO stage's options (each one a flag of ``python -m train.grpo``).

    Attributes:
        steps: Optimizer steps.
        queries_per_step: Queries per process per step; each gets ``generations`` traces.
        generations: Traces sampled per query: GRPO's group, whose mean reward is the baseline.
        max_trace_tokens: Longest trace in tokens (generation stops there).
        temperature: Sampling temperature of the traces.
        learning_rate: AdamW learning rate of the policy.
        beta: KL penalty towards the starting policy (0: no reference model is loaded).
        reward: ``reciprocal-rank`` (1/rank: rewards reaching the top) or ``normalised-rank``
            (1 − (rank − 1)/(pool − 1): rewards every place gained).
        pool_size: Other CVs each query's fitting CV is ranked against (0: all of its source).
        sources: Synthesis files the queries come from (:data:`train.t1.QUERY_SOURCES`).
        max_examples: Use a seeded sample of this many queries (``None``: all).
        eval_examples: Before and after training, score the greedy trace of this many of the queries
            (the first of the seeded order; 0: off): the policy's reward without sampling noise.
        max_length: Encoder token budget for the expanded query and for each CV.
        save_steps: Save a TRL checkpoint every this many steps (for ``--resume``).
        seed: Seed of the sampling, the pool and the data order.
    """

    steps: int = option(100, "optimizer steps")
    queries_per_step: int = option(2, "queries per process per step (each gets --generations traces)")
    generations: int = option(4, "traces sampled per query (the GRPO group)")
    max_trace_tokens: int = option(48, "longest trace in tokens")
    temperature: float = option(1.0, "sampling temperature of the traces")
    learning_rate: float = option(1e-6, "learning rate of the policy", flag="--lr")
    beta: float = option(0.0, "KL penalty towards the starting policy (0 = off, no reference model)")
    reward: str = option(REWARDS[0], "reward of a trace from the fitting CV's rank", choices=REWARDS)
    pool_size: int = option(256, "other CVs the fitting CV is ranked against (0 = all of its source)")
    sources: tuple[str, ...] = option(
        tuple(QUERY_SOURCES),
        f"synthesis files the queries come from (of: {', '.join(QUERY_SOURCES)})",
        parse=source_names,
        metavar="SOURCE,...",
    )
    max_examples: int | None = option(None, "use a seeded sample of this many queries (default: all)")
    eval_examples: int = option(
        0, "score greedy traces of this many queries before and after training (0 = off)"
    )
    max_length: int = option(512, "encoder token budget per expanded query and per CV")
    save_steps: int = option(50, "save a checkpoint every this many steps")
    seed: int = option(0, "seed of sampling, pool and data order")

    def __post_init__(self) -> None:
        positive = ["steps", "queries_per_step", "max_trace_tokens", "max_length", "save_steps"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.generations < 2:
            raise ValueError(
                f"--generations must be at least 2 (GRPO compares traces of one query), got {self.generations}"
            )
        if (
            self.pool_size < 0
            or self.eval_examples < 0
            or (self.max_examples is not None and self.max_examples < 1)
        ):
            raise ValueError("--pool-size and --eval-examples must be >= 0, --max-examples >= 1")
        if not self.temperature > 0 or not self.learning_rate > 0 or self.beta < 0:
            raise ValueError("--temperature and --lr must be > 0, --beta >= 0")
        unknown = sorted(set(self.sources) - set(QUERY_SOURCES))
        if unknown or not self.sources:
            raise ValueError(f"unknown sources {unknown}; known: {', '.join(QUERY_SOURCES)}")


def cre_encoder(model: torch.nn.Module, max_length: int, batch_size: int = 32) -> Encoder:
    """The :data:`Encoder` of a CRE model for JD→CV matching (normalised, no progress bars).

    Example:
        >>> encode = cre_encoder(load_model("outputs/r2"), max_length=512)  # doctest: +SKIP
        >>> encode(["Nurse"], "jd").shape  # doctest: +SKIP
        torch.Size([1, 384])
    """

    def encode(texts: list[str], kind: str) -> torch.Tensor:
        return model.encode(
            texts,
            kind=kind,
            task="jd-cv",
            normalize=True,
            convert_to="torch",
            show_progress=False,
            max_length=max_length,
            batch_size=batch_size,
        )

    return encode


def fitting_rank(similarity: torch.Tensor, fitting: torch.Tensor) -> torch.Tensor:
    """1-based rank of each row's fitting candidate; a tie counts against it, NaN ranks last.

    Args:
        similarity: ``(n, pool)`` query–candidate similarities.
        fitting: ``(n,)`` column of each row's fitting candidate.

    Example:
        >>> fitting_rank(torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.2, 0.1], [float("nan"), 0.0, 0.0]]), torch.tensor([0, 0, 0]))
        tensor([1, 2, 3])
    """
    similarity = torch.nan_to_num(similarity.float(), nan=-torch.inf)
    own = similarity.gather(1, fitting[:, None])
    others = torch.ones_like(similarity, dtype=torch.bool).scatter(1, fitting[:, None], False)
    beaten = ((similarity >= own) & others).sum(dim=1)
    return torch.where(torch.isfinite(own[:, 0]), beaten + 1, torch.full_like(beaten, similarity.shape[1]))


class RankReward:
    """GRPO reward: how high the fitting CV ranks when the query is encoded with the trace.

    TRL calls it with the batch's ``completions`` (the traces) and the dataset columns ``query``,
    ``positive`` (the fitting CV) and ``source`` (a :data:`train.t1.QUERY_SOURCES` name).

    Args:
        encode: The frozen encoder (:func:`cre_encoder`).
        pools: Source -> the candidate CVs its queries are ranked against (distinct texts, at least
            two, so that every fitting CV has a rival).
        reward: One of :data:`REWARDS`.

    Example:
        >>> reward = RankReward(encode, {"jdcv": cvs})  # doctest: +SKIP
        >>> reward(completions=["Needs SQL."], query=["Data analyst"], positive=[cvs[0]], source=["jdcv"])  # doctest: +SKIP
        [1.0]
    """

    __name__ = "rank_reward"  # TRL logs each reward under its function's name

    def __init__(self, encode: Encoder, pools: dict[str, Sequence[str]], reward: str = REWARDS[0]):
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        for name, pool in pools.items():
            if len(set(pool)) < 2:
                raise TrainingDataError(
                    f"{name}: {len(set(pool))} distinct fitting CVs, need at least 2 to rank"
                )
        self.encode, self.reward = encode, reward
        self.pools = {name: list(dict.fromkeys(pool)) for name, pool in pools.items()}
        self._pool_vectors: dict[str, torch.Tensor] = {}
        self._vectors: dict[tuple[str, str], torch.Tensor] = {}  # (kind, text) -> vector, for fitting CVs

    def _documents(self, texts: list[str], kind: str) -> torch.Tensor:
        """Vectors of documents, each encoded once per run: the encoder is frozen."""
        missing = list(dict.fromkeys(text for text in texts if (kind, text) not in self._vectors))
        if missing:
            for text, vector in zip(missing, self.encode(missing, kind), strict=True):
                self._vectors[kind, text] = vector
        return torch.stack([self._vectors[kind, text] for text in texts])

    def ranks(
        self, traces: Sequence[str], query: Sequence[str], positive: Sequence[str], source: Sequence[str]
    ) -> list[tuple[int, int]]:
        """``(rank, pool size)`` of each example's fitting CV with its query expanded by its trace (the
        plain query where the trace fails :func:`~train.reasoning.trace_problem`, as encode does)."""
        found: list[tuple[int, int]] = [(0, 0)] * len(traces)
        for name in dict.fromkeys(source):
            rows = [i for i, s in enumerate(source) if s == name]
            spec = QUERY_SOURCES[name]
            if name not in self._pool_vectors:
                self._pool_vectors[name] = self._documents(self.pools[name], spec.document_kind)
            pool, texts = self._pool_vectors[name], self.pools[name]
            texts_in = [
                query[i] if trace_problem(query[i], traces[i]) else join_reasoning(query[i], traces[i])
                for i in rows
            ]
            queries = self.encode(texts_in, spec.query_kind)
            fitting = self._documents([positive[i] for i in rows], spec.document_kind)
            for row, vector, own in zip(rows, queries, fitting, strict=True):
                # The fitting CV in column 0, its rivals the pool without it.
                rivals = [j for j, text in enumerate(texts) if text != positive[row]]
                similarity = torch.cat([own[None], pool[rivals]]) @ vector
                found[row] = (
                    int(fitting_rank(similarity[None], torch.zeros(1, dtype=torch.long))),
                    len(rivals) + 1,
                )
        return found

    def scores(
        self, traces: Sequence[str], query: Sequence[str], positive: Sequence[str], source: Sequence[str]
    ) -> list[float]:
        """The reward of each trace (see :meth:`ranks`)."""
        ranks = self.ranks(traces, query, positive, source)
        if self.reward == "reciprocal-rank":
            return [1.0 / rank for rank, _ in ranks]
        return [1.0 - (rank - 1) / (size - 1) for rank, size in ranks]

    def __call__(
        self, completions: list, query: list[str], positive: list[str], source: list[str], **_: Any
    ) -> list[float]:
        """TRL's reward-function call: the completions are read as the ``local`` backend reads them."""
        traces = [completion_trace(completion) for completion in completions]
        return self.scores(traces, query, positive, source)


def sample_pools(examples: Sequence[dict], pool_size: int, seed: int) -> dict[str, list[str]]:
    """Source -> its distinct fitting CVs, or a seeded sample of ``pool_size`` of them (0: all).

    Example:
        >>> rows = [{"source": "jdcv", "positive": p} for p in "abcab"]
        >>> sample_pools(rows, 0, seed=0), len(sample_pools(rows, 2, seed=0)["jdcv"])
        ({'jdcv': ['a', 'b', 'c']}, 2)
    """
    pools: dict[str, list[str]] = {}
    for example in examples:
        pools.setdefault(example["source"], []).append(example["positive"])
    rng = random.Random(seed)
    pools = {name: list(dict.fromkeys(texts)) for name, texts in pools.items()}
    return {
        name: rng.sample(texts, pool_size) if 0 < pool_size < len(texts) else texts
        for name, texts in pools.items()
    }


def build_dataset(examples: Sequence[dict]) -> Any:
    """The GRPO prompts (``prompt``) with the columns :class:`RankReward` reads."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": policy_prompt(e["query"]),
                "query": e["query"],
                "positive": e["positive"],
                "source": e["source"],
            }
            for e in examples
        ]
    )


def make_trainer(
    policy: torch.nn.Module,
    tokenizer: Any,
    dataset: Any,
    reward: Callable[..., list[float]],
    recipe: GRPORecipe,
    out_dir: str | os.PathLike,
) -> Any:
    """TRL's ``GRPOTrainer`` for ``recipe`` (logs every step; checkpoints every ``save_steps``)."""
    from trl import GRPOConfig, GRPOTrainer

    config = GRPOConfig(
        output_dir=str(out_dir),
        max_steps=recipe.steps,
        per_device_train_batch_size=recipe.queries_per_step * recipe.generations,
        num_generations=recipe.generations,
        max_completion_length=recipe.max_trace_tokens,
        temperature=recipe.temperature,
        learning_rate=recipe.learning_rate,
        beta=recipe.beta,
        logging_steps=1,
        save_steps=recipe.save_steps,
        save_total_limit=2,
        seed=recipe.seed,
        data_seed=recipe.seed,
        report_to="none",
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    return GRPOTrainer(
        model=policy, reward_funcs=reward, args=config, train_dataset=dataset, processing_class=tokenizer
    )


def greedy_reward(reason: Callable[[str], str | None], reward: RankReward, examples: Sequence[dict]) -> float:
    """Mean reward of ``reason``'s traces for ``examples``: with a greedy ``TraceGenerator("local")``
    over the policy, its reward without sampling noise.

    Example:
        >>> greedy_reward(TraceGenerator("local", model="outputs/grpo/final", cache_dir=False), reward, examples)  # doctest: +SKIP
        0.41
    """
    traces = [reason(e["query"]) or "" for e in tqdm(examples, desc="Greedy traces", unit="query")]
    columns = {key: [e[key] for e in examples] for key in ("query", "positive", "source")}
    scores = reward.scores(traces, **columns)
    return sum(scores) / len(scores)


def step_rewards(trainer: Any) -> list[float]:
    """The mean reward of each logged step of a trained ``GRPOTrainer``."""
    return [entry["reward"] for entry in trainer.state.log_history if entry.get("reward") is not None]


def train_grpo(
    policy: str,
    encoder: str,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    recipe: GRPORecipe,
    resume: bool = False,
) -> dict[str, Any]:
    """Run the GRPO stage and save the policy to ``out_dir/final``; returns the run's summary.

    Args:
        policy: The starting causal LM (alias such as ``smollm2-135m``, folder or Hub id).
        encoder: The frozen CRE checkpoint (or backbone) whose ranking is the reward.
        data_dir: The synthesis run folder.
        out_dir: Output folder.
        recipe: The stage's options.
        resume: Continue from the last TRL checkpoint in ``out_dir`` (if there is one).

    Raises:
        ModelNotFoundError: ``policy`` or ``encoder`` names no model.
        TrainingDataError: Data missing, malformed or too small.
    """
    from transformers.trainer_utils import get_last_checkpoint

    for source in (policy, encoder):
        check_model_source(source)  # a wrong path fails before anything is read
    examples = load_query_examples(data_dir, recipe.sources)
    # A seeded order: --max-examples and --eval-examples take its first queries, of every source.
    examples = random.Random(recipe.seed).sample(examples, len(examples))[: recipe.max_examples]
    pools = sample_pools(examples, recipe.pool_size, recipe.seed)
    model, tokenizer = load_policy(policy)
    frozen = load_model(encoder).requires_grad_(False).eval()
    reward = RankReward(cre_encoder(frozen, recipe.max_length), pools, recipe.reward)
    dataset = build_dataset(examples)
    trainer = make_trainer(model, tokenizer, dataset, reward, recipe, out_dir)
    frozen.to(trainer.accelerator.device)
    scored = examples[: recipe.eval_examples]

    def greedy(source: str) -> float | None:
        """The policy saved at ``source`` as the ``local`` backend runs it (greedy, no answer cache);
        on the main process only, as the other processes would repeat the same work."""
        if not scored or not trainer.accelerator.is_main_process:
            return None
        options = {"device": str(trainer.accelerator.device), "max_new_tokens": recipe.max_trace_tokens}
        return greedy_reward(
            TraceGenerator("local", model=source, cache_dir=False, **options), reward, scored
        )

    before = greedy(policy)
    checkpoint = get_last_checkpoint(str(out_dir)) if resume and Path(out_dir).is_dir() else None
    first_step = int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0  # TRL names them checkpoint-<step>
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    final = Path(out_dir) / "final"
    trainer.save_model(str(final))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(final)
    rewards = step_rewards(trainer)
    after = greedy(str(final))
    summary = {
        "policy": policy,
        "encoder": encoder,
        "data": str(data_dir),
        "recipe": asdict(recipe),
        "examples": len(examples),
        "pool": {name: len(pool) for name, pool in pools.items()},
        "resumed_from": checkpoint,
        "step_rewards": rewards,
        "greedy_reward": {"examples": len(scored), "before": before, "after": after},
        "seconds_per_step": seconds / max(1, trainer.state.global_step - first_step),
    }
    if trainer.accelerator.is_main_process:
        (Path(out_dir) / "grpo_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="CRE-T1 GRPO: train the reasoning generator on the encoder's ranking"
    )
    parser.add_argument("--data", required=True, help="synthesis run folder (jdcv.jsonl, cv_queries.jsonl)")
    parser.add_argument(
        "--policy", required=True, help="causal LM writing the traces (alias smollm2-135m, folder, Hub id)"
    )
    parser.add_argument(
        "--encoder", required=True, help="the frozen CRE checkpoint whose ranking is the reward"
    )
    parser.add_argument("--out", required=True, help="output folder (checkpoints, final/, grpo_summary.json)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    add_recipe_arguments(parser, GRPORecipe)
    return parser


@report_data_errors
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args, recipe = parse_recipe(build_parser(), GRPORecipe, argv)
    summary = train_grpo(args.policy, args.encoder, args.data, args.out, recipe, args.resume)
    rewards = summary["step_rewards"]
    logger.info(
        "GRPO: %d steps, %.1f s/step, mean reward first step %.3f, last step %.3f",
        len(rewards), summary["seconds_per_step"], rewards[0], rewards[-1],
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
