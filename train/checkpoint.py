"""Write (and publish) a training round's checkpoint.

A round's output is a complete CRE checkpoint: merged weights (never adapter files), the code files,
the tokenizer, the sentence-transformers files, ``training_summary.json`` (recipe and metrics) and,
when :mod:`train.model_card` is available, its model card. ``--push-to-hub`` uploads the folder with
:func:`train.hub.push_folder`, which retries transient failures and only ever reads the folder.

A round starts from :func:`common.models.load_model` (a checkpoint as saved, or a fresh model on a
backbone).

Example:
    >>> from common.models import load_model
    >>> model = load_model("minilm")  # doctest: +SKIP
    >>> save_checkpoint(model, "outputs/r1", round_name="R1", summary={"loss": 0.02})  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState

from cre.modeling_cre import CREModel
from train.hub import HubPublishError, push_folder
from train.loop import TrainingResult
from train.lora import merge_lora
from train.model_card import write_model_card

logger = logging.getLogger(__name__)

SUMMARY_FILE = "training_summary.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def save_checkpoint(
    model: CREModel,
    folder: str | os.PathLike,
    *,
    round_name: str,
    summary: dict[str, Any],
    base_model: str | None = None,
    eval_metrics: dict[str, dict[str, float]] | None = None,
) -> Path:
    """Merge any adapter, save the full checkpoint and its training summary (and model card).

    Args:
        model: The trained model (with or without a LoRA adapter on its backbone).
        folder: Where to write; created if missing.
        round_name: ``r1``, ``r2`` or ``full`` (with the BoundaryHead), for the summary and model card.
        summary: Recipe and training metrics of the round (JSON-serialisable).
        base_model: What the round started from.
        eval_metrics: ``{benchmark: {metric: value}}`` for the model card, when evaluated.

    Returns:
        The folder.
    """
    folder = Path(folder)
    model = merge_lora(model)
    model.save_pretrained(folder)
    leftovers = [name for name in ADAPTER_FILES if (folder / name).exists()]
    if leftovers:  # a checkpoint with adapter files beside merged weights would load the update twice
        raise RuntimeError(f"{folder}: adapter files {leftovers} beside merged weights")
    record = {"round": round_name, "base_model": base_model, **summary}
    (folder / SUMMARY_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    write_model_card(folder, round_name=round_name, metrics=eval_metrics, base_model=base_model)
    return folder


def round_summary(
    result: TrainingResult, examples: dict[str, int], recipe: Any, lora: Any, settings: Any
) -> dict:
    """What ``training_summary.json`` records about a training round: metrics, run, data and settings."""
    metrics = {"final_loss": result.final_loss}
    if len(result.stage_losses) > 1:
        metrics.update({f"loss_{stage}": loss for stage, loss in result.stage_losses.items()})
    return {
        "metrics": metrics,
        "training": result.to_dict(),
        "examples": examples,
        "recipe": asdict(recipe),
        "lora": asdict(lora),
        "loop": {key: str(value) for key, value in asdict(settings).items()},
    }


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--push-to-hub REPO_ID``, ``--private`` and ``--hub-revision``."""
    group = parser.add_argument_group("Hugging Face Hub (token from HF_TOKEN, endpoint from HF_ENDPOINT)")
    group.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the checkpoint to this model repo")
    group.add_argument("--private", action="store_true", help="create the repo private")
    group.add_argument("--hub-revision", help="branch to push to (default main)")


def push_checkpoint(
    folder: str | os.PathLike, args: argparse.Namespace, round_name: str, metrics: dict
) -> bool:
    """Upload ``folder`` if ``--push-to-hub`` was given; a failure is logged, the folder stays intact.

    Returns:
        ``True`` when there was nothing to push or the push succeeded.
    """
    if not args.push_to_hub:
        return True
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
    message = f"CRE {round_name}" + (f": {shown}" if shown else "")
    try:
        commit = push_folder(
            folder,
            args.push_to_hub,
            private=args.private,
            revision=args.hub_revision,
            commit_message=message,
            endpoint=os.environ.get("HF_ENDPOINT"),  # read now: huggingface_hub reads it once, at import
        )
    except HubPublishError as error:
        logger.error("%s; the checkpoint is still in %s", error, folder)
        return False
    logger.info("pushed %s to %s (%s)", folder, args.push_to_hub, commit)
    return True


def finish_round(
    trained: tuple[torch.nn.Module, dict] | None, args: argparse.Namespace, round_name: str
) -> int:
    """Save (and push) a round's checkpoint from the main process; the exit status of the command."""
    state = PartialState()
    pushed = True
    if trained is None:
        logger.info("stopped early with the state saved; rerun with --resume to finish")
    elif state.is_main_process:
        model, summary = trained
        folder = save_checkpoint(
            model, args.out, round_name=round_name, summary=summary, base_model=args.base
        )
        logger.info("%s checkpoint written to %s", round_name, folder)
        pushed = push_checkpoint(folder, args, round_name, summary["metrics"])
    state.wait_for_everyone()
    state.destroy_process_group()
    return 0 if pushed else 1
