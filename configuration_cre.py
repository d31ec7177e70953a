"""Configuration of CRE, the recruitment-domain embedding model.

One :class:`CREConfig` describes a whole checkpoint: the backbone's own configuration nested as
``text_config`` (an encoder such as BERT/XLM-R/MPNet, or a decoder such as Llama/Qwen2), how token
states become one vector (pooling, length, normalisation, output dimension), the instruction put in
front of each kind of input, the three CRE components (CNN projection, RT, BoundaryHead) and
candidate feedback when reranking a pool, each a small dict of options that is off by default.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal, get_args

from transformers import AutoConfig
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

Pooling = Literal["mean", "cls", "last_token", "embtoken"]
RTPlacement = Literal["prefix", "suffix"]
# What the embeddings will be compared with: other JDs (JD–JD search), CVs (JD→CV matching, both sides),
# or job titles with job titles (normalising a title onto a taxonomy's occupation names).
Task = Literal["jd-jd", "jd-cv", "title"]
POOLING_MODES: tuple[str, ...] = get_args(Pooling)
RT_PLACEMENTS: tuple[str, ...] = get_args(RTPlacement)
TASKS: tuple[str, ...] = get_args(Task)
INPUT_KINDS = ("jd", "cv", "query", "document")
# The query side: the kinds that reasoning before encoding expands (CVs and passages never are).
REASONING_KINDS = ("jd", "query")
# CRE-T1's embedding token: decoders with embtoken pooling end every text with it and read its state.
EMBTOKEN = "<embtoken>"

# Decoders read instructions in the E5-Mistral style; on the passage side they read raw text, so a
# JD→CV query and a CV→CV query differ only by the instruction.
DECODER_INSTRUCTIONS = {
    "jd": "Instruct: Given a job description, retrieve job descriptions and résumés that fit the same role\nQuery: ",
    "query": "Instruct: Given a recruiter's question, retrieve résumé passages that answer it\nQuery: ",
    "cv": "",
    "document": "",
}
# Encoders such as all-MiniLM-L6-v2 were trained without instructions: none by default.
ENCODER_INSTRUCTIONS = dict.fromkeys(INPUT_KINDS, "")

CNN_DEFAULTS = {"enabled": False, "kernel_sizes": [1, 3, 5], "channels": 128}
RT_DEFAULTS = {"iterations": 0, "placement": "prefix"}  # prefix: see docs/benchmarks.md, RT
BOUNDARY_DEFAULTS = {"enabled": False, "hidden_size": 256, "dropout": 0.1, "weight": 0.3, "trained": False}
FEEDBACK_DEFAULTS = {"top_k": 0, "weight": 1.0}


class CREConfig(PreTrainedConfig):
    """Configuration of a :class:`~modeling_cre.CREModel`.

    Args:
        text_config: The backbone's configuration (a ``PreTrainedConfig`` or its dict with ``model_type``).
        pooling: ``"mean"``, ``"cls"``, ``"last_token"`` or ``"embtoken"`` (decoders only: the final
            state of an added ``<embtoken>`` that the tokenizer appends after every text, CRE-T1).
            Default: ``"last_token"`` for decoder backbones, ``"mean"`` for encoders.
        max_length: Token budget per text, instruction and special tokens included; longer texts are
            truncated (and counted by ``encode``).
        normalize: Whether ``encode`` returns unit-length vectors by default.
        output_dim: Embedding size. Smaller than the backbone's width keeps the first ``output_dim``
            dimensions (Matryoshka-style truncation, applied before normalisation). Default: the width.
        instructions: Text put in front of each kind of input (``jd``, ``cv``, ``query``, ``document``;
            more kinds may be added). Default: none for encoders, E5-style for decoders.
        cnn: CNN projection options: ``enabled``, ``kernel_sizes``, ``channels``.
        rt: Refine Thought options: ``iterations`` (0 = off) and ``placement`` (``"prefix"`` | ``"suffix"``).
        boundary: BoundaryHead options: ``enabled``, ``hidden_size``, ``dropout``, ``weight`` (λ in
            ``cos − λ·s_boundary``) and ``trained`` (set by the training script).
        feedback: Candidate feedback when reranking a pool (pseudo-relevance feedback, Rocchio): each
            candidate's score gains ``weight`` × its mean cosine to the ``top_k`` candidates closest to
            the JD, as if the JD's vector moved towards theirs (``top_k`` 0 = off).
        task_adapters: Task -> its adapter's shape (``rank``, adapted backbone ``modules``, and ``cnn``:
            whether the task has its own CNN projection). A task's adapter is a low-rank update of the
            backbone that applies only to that task's inputs (``jd-cv``: both sides of JD→CV
            matching), so one model holds weights tuned for each task. Set by the training script.
        default_task: The task of inputs encoded without one (``jd-jd``, ``jd-cv`` or ``title``).
        embtoken_id: The token id of ``<embtoken>`` (embtoken pooling; set when the token is added).

    Example:
        >>> from transformers import BertConfig
        >>> config = CREConfig(text_config=BertConfig(hidden_size=64, num_hidden_layers=1,
        ...                    num_attention_heads=2, intermediate_size=128))
        >>> config.pooling, config.hidden_size, config.is_decoder_backbone
        ('mean', 64, False)
    """

    model_type = "cre"
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    text_config: dict | PreTrainedConfig | None = None
    pooling: Pooling | None = None
    max_length: int = 256
    normalize: bool = True
    output_dim: int | None = None
    hidden_size: int | None = None
    instructions: dict[str, str] | None = None
    cnn: dict[str, Any] | None = None
    rt: dict[str, Any] | None = None
    boundary: dict[str, Any] | None = None
    feedback: dict[str, Any] | None = None
    task_adapters: dict[str, dict[str, Any]] | None = None
    default_task: Task = "jd-cv"
    embtoken_id: int | None = None

    def __post_init__(self, **kwargs):
        """Fill the defaults that depend on the backbone, then validate every CRE option.

        Raises:
            ValueError: An option is out of range or not one of its allowed values; the message names
                the field (``pooling``, ``rt.placement``, ``default_task``, ...) and what is allowed.
        """
        super().__post_init__(**kwargs)
        width = self.text_config.hidden_size
        self.output_dim = self.output_dim or width
        if not 0 < self.output_dim <= width:
            raise ValueError(f"output_dim must be in 1..{width} (the backbone width), got {self.output_dim}")
        # Kept at the top level for sentence-transformers and other tools that read config.hidden_size.
        self.hidden_size = self.output_dim
        defaults = DECODER_INSTRUCTIONS if self.is_decoder_backbone else ENCODER_INSTRUCTIONS
        self.instructions = {**defaults, **(self.instructions or {})}
        self.pooling = self.pooling or ("last_token" if self.is_decoder_backbone else "mean")
        check_choice(self.pooling, "pooling", POOLING_MODES)
        if self.pooling == "embtoken" and not self.is_decoder_backbone:
            raise ValueError(
                f"pooling 'embtoken' needs a decoder backbone (causal attention lets the appended token read "
                f"the whole text); got a {self.text_config.model_type} encoder: use 'mean' or 'cls'"
            )
        check_int(self.embtoken_id, "embtoken_id", optional=True)
        self.cnn = _with_defaults("cnn", self.cnn, CNN_DEFAULTS)
        self.rt = _with_defaults("rt", self.rt, RT_DEFAULTS)
        self.boundary = _with_defaults("boundary", self.boundary, BOUNDARY_DEFAULTS)
        self.feedback = _with_defaults("feedback", self.feedback, FEEDBACK_DEFAULTS)
        check_feedback(self.feedback["top_k"], self.feedback["weight"])
        check_choice(self.rt["placement"], "rt.placement", RT_PLACEMENTS)
        check_int(self.rt["iterations"], "rt.iterations")
        check_choice(self.default_task, "default_task", TASKS)
        self.task_adapters = dict(self.task_adapters or {})
        for task in self.task_adapters:
            check_choice(task, "task_adapters key", TASKS)

    @property
    def is_decoder_backbone(self) -> bool:
        """True for causal (decoder-only) backbones, which need left padding and last-token pooling."""
        return self.text_config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> Any:
    """``value`` itself if it is one of ``allowed``, else a ValueError naming ``name`` and the allowed values.

    Example:
        >>> check_choice("max", "pooling", POOLING_MODES)
        Traceback (most recent call last):
        ...
        ValueError: pooling must be one of ('mean', 'cls', 'last_token', 'embtoken'), got 'max'
    """
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_task(task: str) -> str:
    """``task`` itself, or a ValueError naming the known tasks."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {TASKS}")
    return task


class InputTypeError(TypeError, ValueError):
    """An argument of the wrong type, e.g. ``top_k="3"`` or a ``set`` of texts.

    Also a ``ValueError``: earlier versions raised ``ValueError`` for every bad input, and code written
    against them keeps catching it.
    """


def check_int(value: Any, name: str, minimum: int = 0, optional: bool = False, hint: str = "") -> int | None:
    """``value`` as an ``int`` if it is an integer >= ``minimum``, else an error naming ``name``.

    ``bool`` is not an integer here (``top_k=True`` is a mistake, not ``1``); numpy integers are.

    Args:
        value: What the caller passed.
        name: The argument's name, for the message.
        minimum: The smallest allowed value.
        optional: ``None`` is allowed (and returned).
        hint: Appended to the requirement, e.g. ``" (0 = off)"``.

    Raises:
        InputTypeError: ``value`` is not an integer (the message names its type, never its content).
        ValueError: ``value`` is below ``minimum``.

    Example:
        >>> check_int(3, "batch_size", minimum=1)
        3
        >>> check_int(-1, "top_k", optional=True)
        Traceback (most recent call last):
        ...
        ValueError: top_k must be an integer >= 0 or None, got -1
    """
    if optional and value is None:
        return None
    requirement = f"{name} must be an integer >= {minimum}{hint}" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{requirement}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{requirement}, got {value!r}")
    return int(value)


def check_number(value: Any, name: str, minimum: float = 0.0, optional: bool = False) -> float | None:
    """``value`` as a ``float`` if it is a finite real number >= ``minimum``, else an error naming ``name``.

    NaN and infinities are refused: a NaN weight makes every score NaN, which sorts arbitrarily.

    Raises:
        InputTypeError: ``value`` is not a real number (``bool`` and strings included).
        ValueError: ``value`` is NaN, infinite or below ``minimum``.

    Example:
        >>> check_number(0.3, "boundary_weight")
        0.3
        >>> check_number(float("nan"), "feedback weight")
        Traceback (most recent call last):
        ...
        ValueError: feedback weight must be a number >= 0, not NaN or infinite; got nan
    """
    if optional and value is None:
        return None
    requirement = f"{name} must be a number >= {minimum:g}" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{requirement}, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{requirement}, not NaN or infinite; got {value!r}")
    return float(value)


def check_feedback(top_k: int, weight: float) -> None:
    """An error naming the problem unless ``top_k`` is an integer >= 0 and ``weight`` a finite number >= 0."""
    check_int(top_k, "feedback top_k", hint=" (0 = off)")
    check_number(weight, "feedback weight")


def _with_defaults(name: str, options: dict[str, Any] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options or {}) - set(defaults)
    if unknown:
        raise ValueError(f"Unknown {name} option(s) {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **(options or {})}


__all__ = ["CREConfig"]
