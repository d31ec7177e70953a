"""LoRA adapters on a CRE model's backbone (through peft), and merging them back for release.

Rounds train an adapter on ``model.backbone`` (plus the CNN projection when the model has one) and
release merged weights: :func:`merge_lora` folds the adapter into the backbone in float32 and
returns a plain transformers backbone, so checkpoints never carry adapter files. Or the update
becomes one task's own weights inside the checkpoint (:func:`to_task_adapter`), applied only to
that task's inputs.

Example:
    >>> settings = LoraSettings(rank=8, alpha=16)
    >>> model = add_lora(build_cre_model("minilm"), settings)  # doctest: +SKIP
    >>> # ... train it ...  (see train.r1 and train.r2)
    >>> model = merge_lora(model)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass, field

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer

from cre.modeling_cre import CREModel

# Every linear layer of the backbone except BERT's pooler, which CRE never reads: an adapter there
# would get no gradient (and distributed training would wait for it forever).
DEFAULT_TARGETS = "all-linear"
EXCLUDED_MODULES = ["pooler.dense"]


@dataclass
class LoraSettings:
    """Adapter shape. The CRE paper uses r = 16, α = 32 on 0.5B+ backbones.

    Attributes:
        rank: ``r``, the adapter rank; 0 means full fine-tuning (no adapter).
        alpha: ``α``; the update is scaled by ``α / r``.
        dropout: Dropout on the adapter's input.
        target_modules: Module names (or suffixes) to adapt; default every linear layer.
    """

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = field(default=DEFAULT_TARGETS)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LoraSettings:
        targets = args.lora_targets.split(",") if "," in args.lora_targets else args.lora_targets
        return cls(args.lora_rank, args.lora_alpha, args.lora_dropout, targets)


def add_lora_arguments(parser: argparse.ArgumentParser, rank: int = 16, alpha: int = 32) -> None:
    """Add ``--lora-rank``, ``--lora-alpha``, ``--lora-dropout`` and ``--lora-targets``."""
    group = parser.add_argument_group("LoRA")
    group.add_argument("--lora-rank", type=int, default=rank, help="adapter rank r (0 = full fine-tuning)")
    group.add_argument("--lora-alpha", type=int, default=alpha, help="adapter scale α (update × α/r)")
    group.add_argument("--lora-dropout", type=float, default=0.05)
    group.add_argument(
        "--lora-targets",
        default=DEFAULT_TARGETS,
        help="comma-separated module names to adapt, or 'all-linear' (default)",
    )


def add_lora(model: CREModel, settings: LoraSettings) -> CREModel:
    """Wrap ``model.backbone`` with a fresh LoRA adapter; only the adapter (and the CNN projection,
    if any) stays trainable. With ``settings.rank == 0`` every parameter trains instead.

    Returns:
        The same model object, modified in place.

    Raises:
        ValueError: The model has task adapters (they address the backbone's modules by name).
    """
    if len(model.task_adapters):
        raise ValueError(
            f"the model has task adapters ({', '.join(model.task_adapters)}); train from a checkpoint without them"
        )
    if settings.rank == 0:
        model.requires_grad_(True)
        if getattr(model.backbone, "pooler", None) is not None:
            model.backbone.pooler.requires_grad_(False)  # unused by CRE, see EXCLUDED_MODULES
        return model
    # LoRA adapts linear layers only; an <embtoken> model's token row is an embedding, so it trains as
    # peft's trainable tokens (that one row, merged with the adapter) or the token would never learn.
    embtoken = [model.config.embtoken_id] if model.config.pooling == "embtoken" else None
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        exclude_modules=EXCLUDED_MODULES if getattr(model.backbone, "pooler", None) is not None else None,
        trainable_token_indices=embtoken,
    )
    model.backbone = get_peft_model(model.backbone, config)
    if model.cnn is not None:
        model.cnn.requires_grad_(True)
    if model.boundary_head is not None:
        model.boundary_head.requires_grad_(False)  # trained on its own, after Round 2
    return model


def merge_lora(model: CREModel) -> CREModel:
    """Fold the adapter into the backbone weights in float32 and drop the peft wrapper.

    Returns:
        The same model object, whose ``backbone`` is a plain transformers model again.
    """
    model.float()  # merging in low precision would round the update away
    if isinstance(model.backbone, PeftModel):
        model.backbone = model.backbone.merge_and_unload()
    return model


@torch.no_grad()
def scale_update(model: CREModel, base: CREModel, weight: float) -> CREModel:
    """Keep ``weight`` of the training update: every weight becomes ``base + weight·(trained − base)``.

    Weight-space interpolation between a fine-tuned model and its starting point (WiSE-FT, Wortsman
    et al., 2022) keeps most of the new task's gain while giving back much of what fine-tuning made
    the model forget; ``weight = 0.5`` is the untuned midpoint. Any adapter is merged first.

    Returns:
        The same model object, merged and interpolated in place.
    """
    return interpolate_weights(merge_lora(model), base, weight)


@torch.no_grad()
def interpolate_weights(module: torch.nn.Module, base: torch.nn.Module, weight: float) -> torch.nn.Module:
    """In place, every floating-point weight of ``module`` becomes ``base + weight·(module − base)``
    (``base`` has the same structure); returns ``module``."""
    base_state = base.state_dict()
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point():
            start = base_state[name].to(tensor.device, tensor.dtype)
            tensor.copy_(start + weight * (tensor - start))
    return module


@torch.no_grad()
def to_task_adapter(model: CREModel, base: CREModel, task: str, weight: float = 1.0) -> CREModel:
    """Make the round's update ``task``'s own weights: the backbone and CNN projection go back to
    ``base`` and the update applies only when that task's inputs are encoded.

    The LoRA factors are kept as they are (``B`` scaled by ``α/r · weight``), so the task encodes exactly
    as :func:`merge_lora` (with :func:`scale_update` by ``weight``) would; the CNN projection, trained in
    full, becomes the task's own. Every other task keeps ``base``'s weights.

    Args:
        model: The trained model, its backbone still wrapped by peft.
        base: The frozen model the round started from.
        task: One of ``configuration_cre.TASKS``.
        weight: Share of the update to keep.

    Returns:
        The same model object, with a plain backbone and ``model.task_adapters[task]``.

    Raises:
        ValueError: The backbone carries no LoRA adapter (full fine-tuning has no low-rank update), or
            the model pools an ``<embtoken>``, whose trained embedding row a task adapter cannot hold.
    """
    if not isinstance(model.backbone, PeftModel):
        raise ValueError("a task adapter needs a LoRA round (--lora-rank > 0)")
    if model.config.pooling == "embtoken":
        raise ValueError(
            "a task adapter holds linear-layer factors, so the <embtoken> row this round trained would be "
            "lost: train an embtoken model without --task-adapter"
        )
    factors = {}
    for name, module in model.backbone.base_model.model.named_modules():
        if isinstance(module, LoraLayer):
            adapter = module.active_adapters[0]
            down = module.lora_A[adapter].weight.float().clone()
            up = module.lora_B[adapter].weight.float() * (module.scaling[adapter] * weight)
            factors[name] = (down, up)
    model.float()
    model.backbone = model.backbone.unload()  # LoRA leaves the base weights untouched
    task_cnn = None
    if model.cnn is not None:
        task_cnn = interpolate_weights(copy.deepcopy(model.cnn), base.cnn, weight)
        model.cnn.load_state_dict(base.cnn.state_dict())
    model.add_task_adapter(task, factors, task_cnn)
    return model


@torch.no_grad()
def graft_task_adapter(model: CREModel, host: CREModel, base: CREModel, task: str) -> CREModel:
    """Move ``task``'s adapter from ``model`` onto ``host``, another round trained from the same ``base``.

    ``model`` is ``base`` plus ``task``'s adapter (a round started from ``base``, then
    :func:`to_task_adapter`); ``host`` is ``base`` with a merged low-rank update ``D`` (a merged LoRA
    round such as Round 1). On ``host`` the task's factors become the adapter's next to ``−D`` (from an
    SVD of ``host − base``), so ``task`` encodes exactly as on ``model`` while every other task keeps
    ``host``'s weights. The task also gets ``model``'s CNN projection, or an identity one (zero
    fusion) when ``model`` has none and ``host`` has one.

    Args:
        model: ``base`` plus ``task``'s adapter.
        host: The checkpoint that receives the adapter; modified in place and returned.
        base: The frozen model both rounds started from.
        task: One of ``configuration_cre.TASKS``.

    Raises:
        ValueError: ``model`` has no ``task`` adapter or is not ``base`` underneath; ``host`` differs
            from ``base`` outside linear weights or by more than a low-rank update; ``model`` has a CNN
            projection and ``host`` none.
    """
    if task not in model.task_adapters:
        raise ValueError(f"the model has no {task!r} adapter to graft")
    if changed := _differing_parameters(model.backbone, base.backbone):
        raise ValueError(f"the adapter's model is not the base underneath: {changed[0]} differs")
    own = model.task_adapters[task].factors()
    undo = low_rank_difference(host.backbone, base.backbone)
    own_rank = next(iter(own.values()))[0].shape[0]
    undo_rank = max((down.shape[0] for down, _ in undo.values()), default=0)
    factors = {}
    for name in sorted(set(own) | set(undo)):
        linear = base.backbone.get_submodule(name)
        own_down, own_up = own.get(name, _zero_factors(linear, own_rank))
        undo_down, undo_up = _padded(undo.get(name, _zero_factors(linear, 0)), undo_rank)
        factors[name] = (torch.cat([own_down, undo_down]), torch.cat([own_up, -undo_up], dim=1))
    task_cnn = model.task_adapters[task].cnn
    task_cnn = model.cnn if task_cnn is None else task_cnn
    if task_cnn is not None and host.cnn is None:
        raise ValueError("the adapter comes with a CNN projection but the host model has none")
    if task_cnn is None and host.cnn is not None:
        task_cnn = copy.deepcopy(host.cnn).make_identity()
    host.add_task_adapter(task, factors, task_cnn)
    return host


@torch.no_grad()
def low_rank_difference(
    module: torch.nn.Module, base: torch.nn.Module, tolerance: float = 1e-4
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``module − base`` as low-rank factors per linear layer: name -> ``(down (r, in), up (out, r))``.

    Singular values below ``tolerance`` × the largest are float32 rounding of the merge and dropped.

    Raises:
        ValueError: A parameter other than a linear weight differs, or a difference is not low-rank
            (more than half the layer's smaller dimension, as after full fine-tuning).
    """
    factors = {}
    for name in _differing_parameters(module, base):
        layer_name, _, kind = name.rpartition(".")
        layer = module.get_submodule(layer_name) if layer_name else None
        if kind != "weight" or not isinstance(layer, torch.nn.Linear):
            raise ValueError(f"{name} differs from the base: only linear weights may (a merged LoRA round)")
        delta = layer.weight.float() - base.get_submodule(layer_name).weight.float()
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        rank = int((s > tolerance * s[0]).sum())
        if rank > min(delta.shape) // 2:
            raise ValueError(f"{name} differs from the base by a rank-{rank} update: not a merged LoRA round")
        factors[layer_name] = (vh[:rank].clone(), u[:, :rank] * s[:rank])
    return factors


def _differing_parameters(module: torch.nn.Module, base: torch.nn.Module) -> list[str]:
    base_state = base.state_dict()
    return [
        name
        for name, tensor in module.state_dict().items()
        if not torch.equal(tensor.float(), base_state[name].to(tensor.device).float())
    ]


def _zero_factors(linear: torch.nn.Linear, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    zeros = linear.weight.new_zeros  # on the layer's device, like the other factors
    return zeros(rank, linear.in_features, dtype=torch.float32), zeros(
        linear.out_features, rank, dtype=torch.float32
    )


def _padded(factors: tuple[torch.Tensor, torch.Tensor], rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of a lower rank padded with zero rows/columns to ``rank`` (the product is unchanged)."""
    down, up = factors
    missing = rank - down.shape[0]
    return (
        torch.cat([down, down.new_zeros(missing, down.shape[1])]),
        torch.cat([up, up.new_zeros(up.shape[0], missing)], dim=1),
    )
