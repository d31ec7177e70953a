"""CRE: a recruitment-domain embedding model for job descriptions (JDs) and résumés (CVs).

:class:`CREModel` wraps a LoRA-merged backbone (an encoder such as BERT, or a decoder such as Llama)
and turns its token states into one embedding per text:

    token states ──pooling──▶ e ──CNN projection (optional)──▶ truncate to output_dim ──▶ normalise

with two optional test-time and reranking components:

* **RT (Refine Thought)**: after a pass, a memory vector built from the last hidden layer is fed back
  as one extra input token and the text is read again (:func:`memory_vector`).
* **BoundaryHead**: an MLP over ``[q, c, |q−c|, q⊙c]`` that scores role-boundary near misses, used by
  :meth:`CREModel.rerank` as ``s = cos − λ·s_boundary``.

:meth:`CREModel.rerank` can also add candidate feedback (:func:`candidate_feedback`): each candidate
gains ``w ×`` its mean cosine to the pool's ``k`` candidates closest to the JD. :func:`final_score`
is the one place that combines the three terms.

This file and ``configuration_cre.py`` are the checkpoint's custom code: they import only torch and
transformers, so ``AutoModel.from_pretrained(path, trust_remote_code=True)`` loads a CRE checkpoint
anywhere. Loading one with sentence-transformers needs sentence-transformers >= 6 and
``SentenceTransformer(path, trust_remote_code=True)``: the saved ``modules.json`` names the
``sentence_transformers.base.modules`` classes of version 6, which earlier versions do not have,
and the custom code only runs with ``trust_remote_code=True``.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, MappingView, Sequence, Set
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_cre import (
    REASONING_KINDS,
    CREConfig,
    InputTypeError,
    RTPlacement,
    Task,
    check_feedback,
    check_int,
    check_number,
    check_task,
)

try:  # progress bars are a convenience, not a requirement of the checkpoint code
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

# sentence-transformers' pipeline for a CRE folder: the model's own forward yields the embedding.
# These module paths exist from sentence-transformers 6 on, so a saved checkpoint needs version >= 6.
ST_TRANSFORMER = "sentence_transformers.base.modules.Transformer"
ST_NORMALIZE = "sentence_transformers.base.modules.Normalize"

ScoreT = TypeVar("ScoreT")  # torch.Tensor or numpy.ndarray (numpy is not a dependency of this file)


@dataclass
class CREModelOutput(ModelOutput):
    """Output of :meth:`CREModel.forward`.

    Args:
        sentence_embedding: ``(batch, output_dim)`` float32 embeddings, not normalised.
        last_hidden_state: ``(batch, seq_len, hidden)`` states of the text tokens in the last pass
            (the RT memory token excluded).
        attention_mask: The mask matching ``last_hidden_state``.
    """

    sentence_embedding: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool token states into one float32 vector per row, for left or right padding alike.

    Args:
        hidden: ``(batch, seq_len, dim)`` token states.
        mask: ``(batch, seq_len)``, 1 for the tokens to pool over.
        mode: ``"mean"`` (masked mean), ``"cls"`` (first masked-in token), ``"last_token"`` (last
            masked-in token) or ``"embtoken"`` (the same position: the tokenizer of an embtoken model
            ends every text with ``<embtoken>``, which :meth:`CREModel.forward` checks).

    Returns:
        ``(batch, dim)`` float32.

    Example:
        >>> h = torch.arange(6.0).view(1, 3, 2)
        >>> pool(h, torch.tensor([[0, 1, 1]]), "cls").tolist()
        [[2.0, 3.0]]
    """
    hidden = hidden.float()
    keep = mask.bool()
    if mode == "mean":
        weights = keep.unsqueeze(-1).float()
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    if mode == "cls":
        positions = torch.arange(hidden.shape[1], device=hidden.device).expand_as(keep)
        index = torch.where(keep, positions, hidden.shape[1]).min(dim=1).values
    elif mode in ("last_token", "embtoken"):
        index = last_index(mask)
    else:
        raise ValueError(f"Unknown pooling mode {mode!r}")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """``(batch,)`` the position of each row's last masked-in token, for left or right padding.

    Example:
        >>> last_index(torch.tensor([[0, 1, 1], [1, 1, 0]])).tolist()
        [2, 1]
    """
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, -1).max(dim=1).values


def memory_vector(
    states: torch.Tensor, mask: torch.Tensor, query: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """RT's memory token: attention-guided pooling of the last hidden layer.

    The weights come from the current embedding attending over the text's last-layer states:
    ``w_i = softmax_i(⟨h_i, e⟩ / √d)`` over the text tokens, ``m = Σ_i w_i h_i``. Last-layer states
    live at another scale than input embeddings, so ``m`` is rescaled to the mean norm of the text's
    own input token embeddings before it is fed back. Parameter-free: RT works at test time on any
    backbone, trained with it or not.

    Args:
        states: ``(batch, seq_len, dim)`` last-layer states of the text tokens.
        mask: ``(batch, seq_len)``, 1 for text tokens.
        query: ``(batch, dim)`` the embedding of the pass that produced ``states``.
        scale: ``(batch,)`` target norm for the memory token's input embedding.

    Returns:
        ``(batch, dim)`` float32 memory-token input embeddings.
    """
    states = states.float()
    scores = torch.einsum("bld,bd->bl", states, query.float()) / math.sqrt(states.shape[-1])
    weights = scores.masked_fill(~mask.bool(), float("-inf")).softmax(dim=-1)
    memory = torch.einsum("bl,bld->bd", weights, states)
    return F.normalize(memory, dim=-1) * scale.unsqueeze(-1)


def candidate_feedback(candidates: torch.Tensor, cosine: torch.Tensor, top_k: int) -> torch.Tensor:
    """Pseudo-relevance feedback over one pool: each candidate's mean cosine to the ``top_k``
    candidates closest to the query.

    Adding ``w ×`` this to the cosine ranks the pool as Rocchio's query ``q + w·mean(top k)`` would:
    candidates that resemble the best matches rise, which helps those that describe the role in
    other words than the JD. Zero when the pool has no more than ``top_k`` candidates (the "best"
    would be all of them).

    Args:
        candidates: ``(n, d)`` unit-length candidate embeddings.
        cosine: ``(n,)`` cosine of the query to each candidate.
        top_k: Candidates the feedback comes from (0 = none).

    Example:
        >>> c = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
        >>> candidate_feedback(c, torch.tensor([0.9, 0.5, 0.1]), top_k=1)
        tensor([1.0000, 0.8000, 0.0000])
    """
    if top_k <= 0 or len(cosine) <= top_k:
        return torch.zeros_like(cosine)
    best = torch.topk(cosine, top_k).indices
    return (candidates @ candidates[best].T).mean(dim=1)


def final_score(
    cosine: ScoreT,
    feedback: ScoreT | None = None,
    feedback_weight: float = 0.0,
    boundary: ScoreT | None = None,
    boundary_weight: float = 0.0,
) -> ScoreT:
    """A candidate pool's ranking scores ``s = cos + w·feedback − λ·s_boundary``.

    The one formula :meth:`CREModel.rerank` and the evaluation protocols rank by. A term without
    scores (``None``) or with weight 0 is left out, so a pool ranks exactly by cosine when both are.

    Args:
        cosine: ``(n,)`` cosine of the query to each candidate (a torch tensor or a numpy array).
        feedback: ``(n,)`` :func:`candidate_feedback` scores, or ``None``.
        feedback_weight: ``w``.
        boundary: ``(n,)`` ``s_boundary`` in [0, 1], or ``None``.
        boundary_weight: ``λ``.

    Returns:
        ``(n,)`` scores, of the type of ``cosine`` (higher ranks first).

    Example:
        >>> final_score(torch.tensor([0.8, 0.6]), boundary=torch.tensor([1.0, 0.0]), boundary_weight=0.5)
        tensor([0.3000, 0.6000])
    """
    score = cosine
    if feedback is not None and feedback_weight:
        score = score + feedback_weight * feedback
    if boundary is not None and boundary_weight:
        score = score - boundary_weight * boundary
    return score


def join_reasoning(query: str, trace: str) -> str:
    """The text encoded for a query expanded by a reasoning trace (CRE-T1's reasoning before encoding).

    The query comes first, so a token budget that cannot hold both cuts the trace, never the query.

    Example:
        >>> join_reasoning("Senior nurse, ICU", "Requires: critical care, 5+ years.")
        'Senior nurse, ICU\\nReasoning: Requires: critical care, 5+ years.'
    """
    return f"{query}\nReasoning: {trace}"


def expand_queries(
    queries: Sequence[str],
    reason: Callable[[str], str | None],
    show_progress: bool = False,
    stacklevel: int = 2,
) -> list[str]:
    """Each query with its reasoning trace (:func:`join_reasoning`), or alone when it gets none.

    ``reason`` runs once per distinct query. A ``None`` or blank trace (a generator's verdict that
    its trace failed validation, see ``train.reasoning``) leaves the query as it is, and one warning
    counts those queries (never quoting them: queries may quote CVs).

    Args:
        queries: JDs or recruiter questions.
        reason: Any callable ``query -> trace | None``, e.g. ``train.reasoning.TraceGenerator``.
        show_progress: A progress bar over the distinct queries (LLM backends take seconds each).
        stacklevel: Of the warning, as in :func:`warnings.warn` called here (2: this function's caller).

    Raises:
        InputTypeError: ``reason`` returned something else than a string or ``None``.

    Example:
        >>> expand_queries(["Senior nurse, ICU", "Chef"], lambda q: "Requires: ICU." if "ICU" in q else None)
        ['Senior nurse, ICU\\nReasoning: Requires: ICU.', 'Chef']
    """
    traces: dict[str, str | None] = {}
    distinct = list(dict.fromkeys(queries))
    for query in tqdm(distinct, desc="Reasoning", unit="query") if show_progress and tqdm else distinct:
        trace = reason(query)
        if trace is not None and not isinstance(trace, str):
            raise InputTypeError(f"reason must return a trace string or None, got {type(trace).__name__}")
        traces[query] = trace.strip() if trace and trace.strip() else None
    plain = sum(traces[query] is None for query in queries)
    if plain:
        warnings.warn(
            f"{plain} of {len(queries)} queries got no valid reasoning trace and were encoded without one.",
            stacklevel=stacklevel,
        )
    return [query if traces[query] is None else join_reasoning(query, traces[query]) for query in queries]


class CNNProjection(nn.Module):
    """Local n-gram features over token states, fused residually into the pooled embedding.

    Design: for each width ``w`` in ``kernel_sizes`` a ``Conv1d(hidden, channels, w, padding="same")``
    reads the token states (padding zeroed), followed by GELU and a masked max over time, so each
    channel fires on a local pattern (a skill phrase, a seniority marker, a tool name) wherever it
    occurs. The ``len(kernel_sizes)·channels`` features are concatenated with the pooled embedding
    ``e`` and a fusion layer projects them to the output: ``e' = e + W_f [e ; c]``. ``W_f`` starts at
    zero, so switching the module on leaves an untrained model's embeddings unchanged; training
    then learns how much local evidence to add.

    Args:
        hidden_size: Width of the token states and of the embedding.
        kernel_sizes: Convolution widths (tokens).
        channels: Filters per width.
    """

    def __init__(self, hidden_size: int, kernel_sizes: Sequence[int], channels: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(hidden_size, channels, w, padding="same") for w in kernel_sizes)
        self.fusion = nn.Linear(hidden_size + channels * len(kernel_sizes), hidden_size)
        # CREPreTrainedModel._init_weights zeroes a layer carrying this mark: a new projection is the identity.
        self.fusion.zero_init = True

    def forward(self, states: torch.Tensor, mask: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        keep = mask.bool().unsqueeze(1)  # (batch, 1, seq_len)
        tokens = (states.float() * mask.unsqueeze(-1)).transpose(1, 2)  # (batch, hidden, seq_len)
        features = [
            F.gelu(conv(tokens.to(conv.weight.dtype))).float().masked_fill(~keep, float("-inf")).amax(dim=-1)
            for conv in self.convs
        ]
        fused = torch.cat([pooled, *features], dim=-1)
        return pooled + self.fusion(fused.to(self.fusion.weight.dtype)).float()

    def make_identity(self) -> CNNProjection:
        """Zero the fusion layer, so that ``e' = e + W_f [e ; c]`` returns the pooled vector unchanged.

        Returns:
            The projection itself.

        Example:
            >>> cnn = CNNProjection(8, [1], 4).make_identity()
            >>> cnn.is_identity
            True
        """
        _zero_linear(self.fusion)
        return self

    @property
    def is_identity(self) -> bool:
        """True when the fusion layer is all zeros, i.e. the projection leaves every embedding unchanged."""
        return not torch.any(self.fusion.weight) and not torch.any(self.fusion.bias)


@torch.no_grad()
def _zero_linear(layer: nn.Linear) -> None:
    # Not inlined in CNNProjection.make_identity: transformers' weight init never visits a module without
    # parameters of its own in custom code, so the init reaches the fusion layer, not the projection.
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


class BoundaryHead(nn.Module):
    """Pair MLP scoring role-boundary mismatch between a query and a candidate embedding.

    ``[q, c, |q−c|, q⊙c] (4d) → Linear(4d, hidden) → ReLU → Dropout → Linear(hidden, 1)``; the
    sigmoid of the output is ``s_boundary``: higher means a stronger role-boundary near miss (same
    title, shallower ownership or scope). Inputs are unit-normalised embeddings.
    """

    def __init__(self, dim: int, hidden_size: int = 256, dropout: float = 0.1):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(4 * dim, hidden_size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_size, 1)
        )

    def forward(self, query: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        """Return logits (``sigmoid`` gives ``s_boundary``); inputs broadcast, e.g. ``(d,)`` with ``(n, d)``."""
        query, candidate = torch.broadcast_tensors(query, candidate)
        pair = torch.cat([query, candidate, (query - candidate).abs(), query * candidate], dim=-1)
        return self.mlp(pair.to(self.mlp[0].weight.dtype)).squeeze(-1).float()


class TaskAdapter(nn.Module):
    """One task's low-rank update of the backbone: ``W x + up·(down·x)`` on each adapted linear layer
    (LoRA factors, scale folded into ``up``), plus the task's own CNN projection when it has one.

    The update applies only while the task's inputs are encoded (:meth:`CREModel.forward` with
    ``task=``); the backbone's weights stay those of every other task. Built empty (zero update) from
    ``config.task_adapters[task]``; the training script fills it.

    Args:
        backbone: The backbone whose linear layers ``modules`` names.
        rank: ``r`` of the factors.
        modules: Names of the adapted ``nn.Linear`` modules inside the backbone.
        cnn: The task's CNN projection, or ``None`` to use the model's.
    """

    def __init__(
        self, backbone: nn.Module, rank: int, modules: Sequence[str], cnn: CNNProjection | None = None
    ):
        super().__init__()
        self.module_names = list(modules)
        self.down, self.up = nn.ParameterDict(), nn.ParameterDict()
        for name in self.module_names:
            linear = backbone.get_submodule(name)
            key = _parameter_key(name)
            self.down[key] = nn.Parameter(torch.zeros(rank, linear.in_features))
            self.up[key] = nn.Parameter(torch.zeros(linear.out_features, rank))
        self.cnn = cnn

    def factors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Adapted module name -> float32 copies of ``(down (r, in), up (out, r))``."""
        return {
            name: (
                self.down[_parameter_key(name)].float().clone(),
                self.up[_parameter_key(name)].float().clone(),
            )
            for name in self.module_names
        }

    @contextmanager
    def applied(self, backbone: nn.Module) -> Iterator[None]:
        """Add the update to the backbone's outputs inside the block (forward hooks, removed after)."""
        handles = [
            backbone.get_submodule(name).register_forward_hook(self._hook(_parameter_key(name)))
            for name in self.module_names
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, key: str):
        def add_update(
            module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
        ) -> torch.Tensor:
            down, up = self.down[key], self.up[key]
            return output + F.linear(F.linear(inputs[0].to(down.dtype), down), up).to(output.dtype)

        return add_update


def _parameter_key(module_name: str) -> str:
    return module_name.replace(".", "__")  # parameter names may not contain dots


class CREPreTrainedModel(PreTrainedModel):
    config_class = CREConfig
    base_model_prefix = "cre"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if getattr(module, "zero_init", False):
            _zero_linear(module)  # a CNN projection's fusion: see CNNProjection.make_identity


class CREModel(CREPreTrainedModel):
    """The CRE embedding model: backbone, pooling, optional CNN projection, RT and BoundaryHead.

    Loading a checkpoint also loads its tokenizer from the same folder (``model.tokenizer``).

    Example:
        >>> from transformers import AutoModel
        >>> model = AutoModel.from_pretrained("path/to/cre", trust_remote_code=True)  # doctest: +SKIP
        >>> jd = model.encode("Senior data engineer: Spark, Airflow, owns the lakehouse", kind="jd")  # doctest: +SKIP
        >>> cvs = model.encode(["Data engineer, 6 years of Spark ...", "Barista ..."], kind="cv")  # doctest: +SKIP
        >>> model.similarity(jd, cvs)  # doctest: +SKIP
    """

    def __init__(self, config: CREConfig):
        super().__init__(config)
        self.backbone = AutoModel.from_config(config.text_config)
        self.cnn = self._new_cnn() if config.cnn["enabled"] else None
        self.boundary_head = None
        if config.boundary["enabled"]:
            self.boundary_head = BoundaryHead(
                config.output_dim, config.boundary["hidden_size"], config.boundary["dropout"]
            )
        self.task_adapters = nn.ModuleDict(
            {task: self._empty_task_adapter(spec) for task, spec in config.task_adapters.items()}
        )
        self.tokenizer = None
        self.post_init()

    def _new_cnn(self) -> CNNProjection:
        width, options = self.config.text_config.hidden_size, self.config.cnn
        return CNNProjection(width, options["kernel_sizes"], options["channels"])

    def _empty_task_adapter(self, spec: dict[str, Any]) -> TaskAdapter:
        cnn = self._new_cnn() if spec.get("cnn") else None
        return TaskAdapter(self.backbone, spec["rank"], spec["modules"], cnn)

    def add_task_adapter(
        self,
        task: str,
        factors: dict[str, tuple[torch.Tensor, torch.Tensor]],
        cnn: CNNProjection | None = None,
    ) -> TaskAdapter:
        """Give ``task`` its own weights: a low-rank update of the backbone, and optionally a CNN projection.

        Args:
            task: One of ``configuration_cre.TASKS``.
            factors: Backbone ``nn.Linear`` name -> ``(down (r, in), up (out, r))``, the update being
                ``up @ down`` (a LoRA adapter's ``B·A`` with its scale folded into ``B``).
            cnn: The task's CNN projection (the model must have one), or ``None`` to share the model's.

        Example:
            >>> down, up = torch.zeros(4, 64), torch.zeros(64, 4)  # doctest: +SKIP
            >>> model.add_task_adapter("jd-cv", {"encoder.layer.0.attention.self.query": (down, up)})  # doctest: +SKIP
        """
        check_task(task)
        if cnn is not None and self.cnn is None:
            raise ValueError("a task CNN projection needs a model with a CNN projection")
        ranks = {down.shape[0] for down, _ in factors.values()}
        if len(ranks) != 1:
            raise ValueError(f"task adapter factors must share one rank, got ranks {sorted(ranks)}")
        spec = {"rank": ranks.pop(), "modules": sorted(factors), "cnn": cnn is not None}
        self.config.task_adapters = {**self.config.task_adapters, task: spec}
        adapter = self._empty_task_adapter(spec).to(self.device)
        with torch.no_grad():
            for name, (down, up) in factors.items():
                key = _parameter_key(name)
                adapter.down[key].copy_(down)
                adapter.up[key].copy_(up)
            if cnn is not None:
                adapter.cnn.load_state_dict(cnn.state_dict())
        self.task_adapters[task] = adapter
        return adapter

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs) -> CREModel:
        """Load weights and config as usual, plus the tokenizer saved beside them."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        hub_options = ("cache_dir", "revision", "token", "local_files_only", "subfolder")
        model.tokenizer = AutoTokenizer.from_pretrained(
            pretrained_model_name_or_path,
            # This checkpoint's code is already running; the tokenizer lookup reads the same config.
            trust_remote_code=True,
            **{k: kwargs[k] for k in hub_options if k in kwargs},
        )
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """Save weights, config, code files, tokenizer and the sentence-transformers files."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)
        self._save_sentence_transformers_files(save_directory)

    def _save_sentence_transformers_files(self, folder: str | os.PathLike) -> None:
        """Describe the folder as a sentence-transformers model: CRE's forward yields the embedding,
        prompts are CRE's instructions, so ``SentenceTransformer.encode(texts, prompt_name=kind, task=task)``
        equals ``CREModel.encode(texts, kind=kind, task=task)``."""
        # "kwargs": sentence-transformers passes encode(..., task=...) on to CRE's forward.
        modules = [{"idx": 0, "name": "0", "path": "", "type": ST_TRANSFORMER, "kwargs": ["task"]}]
        if self.config.normalize:
            modules.append({"idx": 1, "name": "1", "path": "1_Normalize", "type": ST_NORMALIZE})
            os.makedirs(os.path.join(folder, "1_Normalize"), exist_ok=True)
        transformer = {
            "transformer_task": "feature-extraction",
            "modality_config": {"text": {"method": "forward", "method_output_name": "sentence_embedding"}},
            "module_output_name": "sentence_embedding",
            "max_seq_length": self.config.max_length,
            "do_lower_case": False,
            "model_kwargs": {"trust_remote_code": True},
            "config_kwargs": {"trust_remote_code": True},
        }
        st_config = {
            "prompts": dict(self.config.instructions),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        }
        for name, content in [
            ("modules.json", modules),
            ("sentence_bert_config.json", transformer),
            ("config_sentence_transformers.json", st_config),
        ]:
            with open(os.path.join(folder, name), "w", encoding="utf-8") as file:
                json.dump(content, file, indent=2, ensure_ascii=False)

    # ------------------------------------------------------------------ forward

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        rt_iterations: int | None = None,
        rt_placement: RTPlacement | None = None,
        use_cache: bool = True,
        task: Task | None = None,
    ) -> CREModelOutput | tuple[torch.Tensor, ...]:
        """Embed a tokenised batch: backbone pass → pooling → RT → CNN projection → truncation.

        Args:
            input_ids: ``(batch, seq_len)`` token ids, padded on either side.
            attention_mask: ``(batch, seq_len)``; 1 for tokens, 0 for padding.
            token_type_ids: Optional segment ids (BERT-style encoders).
            rt_iterations: RT passes after the first (default: ``config.rt["iterations"]``).
            rt_placement: ``"prefix"`` or ``"suffix"`` (default: ``config.rt["placement"]``).
            use_cache: For decoders with suffix placement, reuse the text's key/value cache so that
                each RT iteration costs one token's forward pass. ``False`` re-encodes the text.
            task: ``"jd-jd"``, ``"jd-cv"`` or ``"title"``: what the embeddings will be compared with; a
                task with its own adapter (``config.task_adapters``) encodes with it. Default: ``config.default_task``.
            return_dict: As in every transformers model (keyword only): ``False`` returns the tuple
                ``(sentence_embedding, last_hidden_state, attention_mask)`` instead of a
                :class:`CREModelOutput`. Default: ``config.return_dict`` (True).

        Returns:
            :class:`CREModelOutput` with the float32 ``sentence_embedding`` (not normalised).

        Example:
            >>> embedding, states, mask = model(**batch, return_dict=False)  # doctest: +SKIP
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # An exported graph cannot raise on data; the tokenizer it ships with appends the token.
        if self.config.pooling == "embtoken" and not torch.compiler.is_compiling():
            self._check_embtoken(input_ids, attention_mask)
        iterations = (
            self.config.rt["iterations"]
            if rt_iterations is None
            else check_int(rt_iterations, "rt_iterations")
        )
        placement = rt_placement or self.config.rt["placement"]
        cached = use_cache and iterations > 0 and placement == "suffix" and self.config.is_decoder_backbone

        adapter = self._task_adapter(task)
        with adapter.applied(self.backbone) if adapter is not None else nullcontext():
            states, cache = self._backbone_pass(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=self._position_ids(attention_mask),
                token_type_ids=token_type_ids,
                use_cache=cached,
            )
            embedding = pool(states, attention_mask, self.config.pooling)
            if iterations > 0:
                states, embedding = self.refine_thought(
                    input_ids,
                    attention_mask,
                    token_type_ids,
                    states,
                    embedding,
                    iterations,
                    placement,
                    cache if cached else None,
                )

        cnn = adapter.cnn if adapter is not None and adapter.cnn is not None else self.cnn
        if cnn is not None:
            # Local features come from the text tokens of the last pass (the memory token is no n-gram).
            embedding = cnn(states, attention_mask, embedding)
        embedding = embedding[:, : self.config.output_dim]
        return CREModelOutput(
            sentence_embedding=embedding, last_hidden_state=states, attention_mask=attention_mask
        )

    def _check_embtoken(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        """Embtoken pooling reads the last token: refuse rows that do not end with ``<embtoken>``
        (ids from another tokenizer), which would otherwise embed silently from the wrong token."""
        token_id = self.config.embtoken_id
        if token_id is None:
            raise ValueError(
                "config.embtoken_id is not set: build embtoken models with train.init_model "
                "(--pooling embtoken), which adds <embtoken> to the tokenizer and the embeddings"
            )
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        wrong = (input_ids[rows, last_index(attention_mask)] != token_id).nonzero().flatten().tolist()
        if wrong:
            raise ValueError(
                f"rows {wrong[:10]} of the batch do not end with <embtoken> (id {token_id}): tokenize with "
                "this checkpoint's tokenizer (model.tokenize), which appends it after every text"
            )

    def _task_adapter(self, task: str | None) -> TaskAdapter | None:
        """``task``'s adapter (default: ``config.default_task``), or ``None`` when it has none."""
        task = check_task(task or self.config.default_task)
        return self.task_adapters[task] if task in self.task_adapters else None  # noqa: SIM401 (ModuleDict has no get)

    def _backbone_pass(
        self, use_cache: bool = False, **inputs: torch.Tensor | None
    ) -> tuple[torch.Tensor, Any]:
        inputs = {k: v for k, v in inputs.items() if v is not None}
        if self.config.is_decoder_backbone:
            inputs.pop("token_type_ids", None)
            inputs["use_cache"] = use_cache
        output = self.backbone(**inputs, return_dict=True)
        return output.last_hidden_state, getattr(output, "past_key_values", None)

    def _position_ids(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """Positions that count text tokens only, so left padding does not shift them.

        RoBERTa/MPNet-style embeddings number positions from ``padding_idx + 1`` and give padding
        ``padding_idx``; the others number from 0.
        """
        padding_idx = self._padding_idx()
        first = 0 if padding_idx is None else padding_idx + 1
        positions = attention_mask.long().cumsum(-1) - 1 + first
        return positions.masked_fill(~attention_mask.bool(), padding_idx or 0)

    def _padding_idx(self) -> int | None:
        return getattr(getattr(self.backbone, "embeddings", None), "padding_idx", None)

    # ------------------------------------------------------------------ RT (Refine Thought)

    def refine_thought(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
        states: torch.Tensor,
        embedding: torch.Tensor,
        iterations: int,
        placement: RTPlacement,
        cache: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RT: ``iterations`` more reads of the text, each with a memory token of the previous pass.

        Each iteration builds the memory token from the previous pass (:func:`memory_vector`) and
        reads the text again with it (:meth:`_memory_pass`), or, given the decoder's key/value
        ``cache`` of a suffix placement, runs the memory token alone against it
        (:meth:`_cached_memory_pass`).

        With embtoken pooling the embedding stays the state of ``<embtoken>``, always the last
        position: a prefix memory token goes before the text (``[memory] text <embtoken>``); a suffix
        memory token goes between the text and ``<embtoken>`` (``text [memory] <embtoken>``), the
        text's own ``<embtoken>`` being masked out of the RT passes (:meth:`_rt_layout`).

        Args:
            input_ids: ``(batch, seq_len)`` the text's token ids.
            attention_mask: ``(batch, seq_len)``; 1 for text tokens.
            token_type_ids: Optional segment ids (BERT-style encoders).
            states: ``(batch, seq_len, dim)`` last-layer states of the first pass.
            embedding: ``(batch, dim)`` the first pass's pooled embedding.
            iterations: Passes after the first (>= 1).
            placement: ``"prefix"`` or ``"suffix"``: where the memory token goes.
            cache: The first pass's key/value cache (decoder and suffix placement only), else ``None``.

        Returns:
            The text tokens' states of the last pass and its embedding.
        """
        text_mask, tail = self._rt_layout(attention_mask, placement)
        token_embeddings = self.backbone.get_input_embeddings()(input_ids)
        keep = text_mask.unsqueeze(-1).float()
        scale = (token_embeddings.float().norm(dim=-1, keepdim=True) * keep).sum(1) / keep.sum(1)
        for _ in range(iterations):
            memory = memory_vector(states, text_mask, embedding, scale.squeeze(-1))
            if cache is not None:
                embedding = self._cached_memory_pass(memory, text_mask, tail, cache)
            else:
                states, embedding = self._memory_pass(
                    token_embeddings, text_mask, token_type_ids, memory, placement, tail
                )
        return states, embedding

    def _rt_layout(
        self, attention_mask: torch.Tensor, placement: RTPlacement
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The text that RT passes read, and what follows a suffix memory token.

        Returns:
            The text's mask and ``None``, except for embtoken pooling with suffix placement: the mask
            without the text's ``<embtoken>`` and ``(batch, 1, dim)`` input embeddings of the
            ``<embtoken>`` that follows the memory token. A row that is nothing but ``<embtoken>``
            keeps it in its text, so that the memory token has something to attend to.
        """
        if self.config.pooling != "embtoken" or placement != "suffix":
            return attention_mask, None
        rows = torch.arange(attention_mask.shape[0], device=attention_mask.device)
        text_mask = attention_mask.clone()
        text_mask[rows, last_index(attention_mask)] = (attention_mask.sum(dim=1) == 1).to(text_mask.dtype)
        embtoken = self.backbone.get_input_embeddings().weight[self.config.embtoken_id]
        return text_mask, embtoken.expand(attention_mask.shape[0], 1, -1)

    def _memory_pass(
        self,
        token_embeddings: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
        memory: torch.Tensor,
        placement: str,
        tail: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-read the text with the memory token before (``prefix``) or after (``suffix``) it.

        The text keeps its own positions; the memory token takes the first text position as a
        prefix (shared with the first token) and one past the last text token as a suffix, followed
        by ``tail`` (``<embtoken>``, see :meth:`_rt_layout`) at the next positions. Appending at the
        physical end is right for either padding side: masks handle the padding, and in a decoder
        the memory token still comes after every text token.

        Returns:
            The text tokens' states and the pass's embedding (see :meth:`_pool_memory_pass`).
        """
        positions = self._position_ids(attention_mask)
        ones = attention_mask.new_ones((attention_mask.shape[0], 1))
        memory_token = memory.to(token_embeddings.dtype).unsqueeze(1)
        if placement == "prefix":
            first_position = positions.gather(1, attention_mask.long().argmax(dim=1, keepdim=True))
            embeds = torch.cat([memory_token, token_embeddings], dim=1)
            mask = torch.cat([ones, attention_mask], dim=1)
            positions = torch.cat([first_position, positions], dim=1)
        else:
            appended = (
                memory_token if tail is None else torch.cat([memory_token, tail.to(memory_token.dtype)], 1)
            )
            embeds = torch.cat([token_embeddings, appended], dim=1)
            mask = torch.cat([attention_mask, ones.expand(-1, appended.shape[1])], dim=1)
            positions = torch.cat(
                [positions, self._positions_after(attention_mask, appended.shape[1])], dim=1
            )
        if token_type_ids is not None:
            token_type_ids = torch.cat([token_type_ids, torch.zeros_like(ones)], dim=1)
        states, _ = self._backbone_pass(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, token_type_ids=token_type_ids
        )
        length = attention_mask.shape[1]
        text_states, last_state = (
            (states[:, 1:], states[:, 0]) if placement == "prefix" else (states[:, :length], states[:, -1])
        )
        return text_states, self._pool_memory_pass(text_states, attention_mask, last_state, placement)

    def _positions_after(self, attention_mask: torch.Tensor, count: int) -> torch.Tensor:
        """``(batch, count)`` the positions of ``count`` tokens appended after each row's last text token."""
        following = torch.arange(1, count + 1, device=attention_mask.device)
        return self._position_ids(attention_mask).max(dim=1, keepdim=True).values + following

    def _cached_memory_pass(
        self, memory: torch.Tensor, attention_mask: torch.Tensor, tail: torch.Tensor | None, cache: Any
    ) -> torch.Tensor:
        """Decoder + suffix: the text's states do not depend on a later token, so only the memory
        token (and ``tail``, see :meth:`_rt_layout`) runs, against the cached keys and values of the
        text. Returns the pass's embedding: the last position's state."""
        extra = cache.get_seq_length() - attention_mask.shape[1]
        if extra > 0:
            cache.crop(-extra)  # drop the previous iteration's memory token (and tail)
        dtype = self.backbone.get_input_embeddings().weight.dtype
        appended = memory.to(dtype).unsqueeze(1)
        if tail is not None:
            appended = torch.cat([appended, tail.to(dtype)], dim=1)
        ones = attention_mask.new_ones((attention_mask.shape[0], appended.shape[1]))
        output = self.backbone(
            inputs_embeds=appended,
            attention_mask=torch.cat([attention_mask, ones], dim=1),
            position_ids=self._positions_after(attention_mask, appended.shape[1]),
            past_key_values=cache,
            use_cache=True,
            return_dict=True,
        )
        return output.last_hidden_state[:, -1].float()

    def _pool_memory_pass(
        self,
        text_states: torch.Tensor,
        attention_mask: torch.Tensor,
        last_state: torch.Tensor,
        placement: str,
    ) -> torch.Tensor:
        """Embedding of an RT pass: the configured pooling over the text tokens, which have all read
        the memory token, except in a decoder with suffix placement, where only the positions from
        the memory token on see the memory: there the last one's state (the memory token's, or the
        ``<embtoken>`` after it) is the embedding."""
        if self.config.is_decoder_backbone and placement == "suffix":
            return last_state.float()
        return pool(text_states, attention_mask, self.config.pooling)

    # ------------------------------------------------------------------ encoding

    def prompt(self, texts: Sequence[str], kind: str | Sequence[str]) -> list[str]:
        """The texts the backbone reads: each text with its kind's instruction in front.

        Args:
            texts: Raw texts.
            kind: One input kind of ``config.instructions`` for every text, or one kind per text.

        Raises:
            ValueError: A kind is unknown, or there is not one kind per text.

        Example:
            >>> model.prompt(["Python developer", "Nurse"], ["jd", "cv"])  # doctest: +SKIP
            ['Python developer', 'Nurse']
        """
        if isinstance(kind, str):
            instruction = self._instruction(kind)
            return [instruction + text for text in texts]
        if len(kind) != len(texts):
            raise ValueError(
                f"kind must name one kind per text: got {len(kind)} kinds for {len(texts)} texts"
            )
        return [self._instruction(k) + text for k, text in zip(kind, texts, strict=True)]

    def tokenize(
        self, texts: Sequence[str], kind: str | Sequence[str] = "jd", max_length: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Prepend the kind's instruction (:meth:`prompt`), tokenise, truncate and pad (on the tokenizer's side).

        Args:
            texts: Raw texts.
            kind: An input kind of ``config.instructions`` (``jd``, ``cv``, ``query``, ``document``),
                or one kind per text (a training batch holding JDs and CVs).
            max_length: Token budget (default ``config.max_length``, see :meth:`token_budget`).

        Returns:
            ``input_ids`` and ``attention_mask`` tensors (and ``token_type_ids`` for BERT-style models).
        """
        tokenizer = self._require_tokenizer()
        return tokenizer(
            self.prompt(texts, kind),
            padding=True,
            truncation=True,
            max_length=self.token_budget(max_length),
            return_tensors="pt",
        )

    def token_budget(self, max_length: int | None = None) -> int:
        """``max_length`` (default ``config.max_length``) capped at the backbone's position table, so a
        long budget truncates instead of indexing past the table.

        Raises:
            ValueError: ``max_length`` leaves no room for the tokenizer's special tokens (a tokenizer
                cannot truncate below them, so the text would stay whole and overrun the table).
        """
        if max_length is None:
            budget = self.config.max_length
        else:
            special = self.tokenizer.num_special_tokens_to_add() if self.tokenizer is not None else 0
            hint = f" (room for the tokenizer's {special} special tokens)" if special > 1 else ""
            budget = check_int(max_length, "max_length", minimum=max(special, 1), hint=hint)
        limit = getattr(self.config.text_config, "max_position_embeddings", None)
        return min(budget, limit) if limit else budget

    @torch.inference_mode()
    def encode(
        self,
        texts: str | Sequence[str],
        kind: str = "jd",
        batch_size: int = 32,
        normalize: bool | None = None,
        convert_to: str = "numpy",
        show_progress: bool | None = None,
        rt_iterations: int | None = None,
        max_length: int | None = None,
        task: str | None = None,
        reason: Callable[[str], str | None] | None = None,
    ) -> Any:
        """Embed texts of one kind.

        Texts are sorted by token length so each batch pads little, then returned in input order.
        Texts longer than ``max_length`` tokens are truncated and counted in a warning.

        Empty strings are accepted: the model reads only the instruction and special tokens, which
        gives a valid (uninformative) vector at the text's index, so outputs stay aligned with inputs.
        Characters that cannot be encoded as UTF-8 (lone surrogates, which reading non-UTF-8 bytes with
        ``errors="surrogateescape"`` leaves) are replaced with U+FFFD, and one warning counts them.

        Args:
            texts: One string, or an ordered collection of strings: a list, a tuple, any other
                ``Sequence``, a generator or iterator (consumed once), a 1-D numpy array or a pandas
                Series. Row ``i`` of the output is ``texts[i]`` (iteration order). Unordered
                collections (``set``, ``dict`` and its views) are refused: their order is arbitrary.
            kind: ``jd``, ``cv``, ``query`` or ``document`` (any key of ``config.instructions``).
            batch_size: Texts per forward pass (an integer >= 1).
            normalize: Unit-length output (default ``config.normalize``).
            convert_to: ``"numpy"`` (float32 array) or ``"torch"`` (float32 CPU tensor).
            show_progress: Progress bar (default: when more than one batch).
            rt_iterations: Override ``config.rt["iterations"]`` for this call.
            max_length: Override ``config.max_length`` for this call (capped at the backbone's
                position limit, see :meth:`token_budget`).
            task: What the vectors will be compared with: ``"jd-cv"`` (JDs and CVs matched to each
                other; encode both sides with it), ``"jd-jd"`` (JDs searched against JDs) or
                ``"title"`` (job titles against job titles or occupation names). Matters for models with
                task adapters; a task without one encodes with the shared weights. Default:
                ``config.default_task``.
            reason: Reasoning before encoding (CRE-T1): a callable ``query -> trace | None`` (e.g.
                ``train.reasoning.TraceGenerator("rules")``). For the query-side kinds (``jd``,
                ``query``) each text is encoded as :func:`join_reasoning` ``(text, trace)``; a text
                whose trace is ``None`` or blank is encoded as it is, and one warning counts them
                (:func:`expand_queries`). Other kinds (CVs, passages) are never expanded.

        Returns:
            ``(n, output_dim)`` embeddings, or ``(output_dim,)`` for a single string.

        Raises:
            TypeError: ``texts`` is not a string or an ordered collection, holds a non-string (the
                message names the index), or an option has the wrong type (``batch_size="8"``,
                ``rt_iterations=True``). The exception is :class:`InputTypeError`, also a ValueError.
            ValueError: ``texts`` is empty, ``kind`` or ``task`` is unknown, ``convert_to`` is not
                supported, or a number is out of range (``batch_size`` < 1, ``max_length`` < 1,
                ``rt_iterations`` < 0).

        Example:
            >>> vectors = model.encode(["Python developer", "Nurse"], kind="cv")  # doctest: +SKIP
            >>> vectors.shape  # doctest: +SKIP
            (2, 384)
            >>> similar_jobs = model.encode(["Data engineer", "Nurse"], kind="jd", task="jd-jd")  # doctest: +SKIP
            >>> from train.reasoning import TraceGenerator  # doctest: +SKIP
            >>> thought = model.encode(["Senior data engineer: Spark"], kind="jd", reason=TraceGenerator("rules"))  # doctest: +SKIP
        """
        single = isinstance(texts, str)
        # stacklevel: past the helper and torch's inference_mode wrapper, to the caller.
        texts = _validate_texts([texts] if single else texts, stacklevel=4)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        check_int(rt_iterations, "rt_iterations", optional=True)
        if normalize is not None and not isinstance(normalize, bool):
            raise InputTypeError(f"normalize must be True, False or None, got {type(normalize).__name__}")
        if convert_to not in ("numpy", "torch"):
            raise ValueError(f"convert_to must be 'numpy' or 'torch', got {convert_to!r}")
        tokenizer = self._require_tokenizer()
        self._task_adapter(task)  # an unknown task fails before any work
        self._instruction(kind)  # so does an unknown kind, or a list of them: encode reads one kind
        limit = self.token_budget(max_length)
        if reason is not None and not callable(reason):
            raise InputTypeError(f"reason must be a callable query -> trace, got {type(reason).__name__}")
        if reason is not None and kind in REASONING_KINDS:
            progress = show_progress if show_progress is not None else len(texts) > batch_size
            texts = expand_queries(texts, reason, show_progress=progress, stacklevel=4)
        prompted = self.prompt(texts, kind)
        token_ids = tokenizer(prompted, add_special_tokens=True, verbose=False)["input_ids"]
        too_long = [i for i, ids in enumerate(token_ids) if len(ids) > limit]
        if too_long:
            shortened = tokenizer([prompted[i] for i in too_long], truncation=True, max_length=limit)[
                "input_ids"
            ]
            for i, ids in zip(too_long, shortened, strict=True):
                token_ids[i] = ids
            warnings.warn(
                f"{len(too_long)} of {len(texts)} texts were longer than {limit} tokens and were truncated.",
                stacklevel=3,  # past torch's inference_mode wrapper, to the caller
            )

        order = sorted(range(len(texts)), key=lambda i: -len(token_ids[i]))
        batches = range(0, len(order), batch_size)
        if show_progress is None:
            show_progress = len(batches) > 1
        if show_progress and tqdm is not None:
            batches = tqdm(batches, desc=f"Encoding {kind}", unit="batch")
        device = self.device
        chunks = []
        with _eval_mode(self):  # dropout off: the same text always gets the same vector
            for start in batches:
                batch = tokenizer.pad(
                    {"input_ids": [token_ids[i] for i in order[start : start + batch_size]]},
                    return_tensors="pt",
                )
                output = self(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    rt_iterations=rt_iterations,
                    task=task,
                )
                chunks.append(output.sentence_embedding.float().cpu())
        embeddings = torch.empty((len(texts), self.config.output_dim), dtype=torch.float32)
        embeddings[torch.tensor(order)] = torch.cat(chunks)
        if self.config.normalize if normalize is None else normalize:
            embeddings = F.normalize(embeddings, dim=-1)
        if single:
            embeddings = embeddings[0]
        return embeddings.numpy() if convert_to == "numpy" else embeddings

    @staticmethod
    def similarity(a: Any, b: Any) -> Any:
        """Cosine similarity matrix between two sets of embeddings.

        Args:
            a: ``(n, d)`` embeddings, or one ``(d,)`` embedding (a row): a numpy array, a torch tensor
                or nested lists of numbers.
            b: ``(m, d)`` or ``(d,)``, likewise, with the same width ``d``.

        Returns:
            The ``(n, m)`` cosines (``(1, m)`` for a single ``a``), float32: a torch tensor on ``a``'s
            device when ``a`` is a tensor, else a numpy array.

        Raises:
            TypeError: An argument is not numbers (:class:`InputTypeError`, also a ValueError).
            ValueError: An argument has more than 2 dimensions or width 0, the widths differ, or a row
                holds NaN or infinity (the message names the argument and the row).

        Example:
            >>> CREModel.similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
            tensor([[1., 0.]])
            >>> CREModel.similarity([1.0, 0.0], [[1.0, 1.0]]).round(3)
            array([[0.707]], dtype=float32)
        """
        as_numpy = not isinstance(a, torch.Tensor)
        left, right = _embedding_rows(a, "a"), _embedding_rows(b, "b")
        if left.shape[1] != right.shape[1]:
            raise ValueError(
                f"a and b must have the same width: a has {left.shape[1]} columns, b has {right.shape[1]}"
            )
        scores = _unit(left) @ _unit(right.to(left.device)).T
        return scores.detach().cpu().numpy() if as_numpy else scores

    # ------------------------------------------------------------------ reranking

    @property
    def has_boundary_head(self) -> bool:
        """True when the checkpoint carries a trained BoundaryHead."""
        return self.boundary_head is not None and bool(self.config.boundary["trained"])

    def boundary_scores(self, query: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """``s_boundary`` in [0, 1] for one query embedding ``(d,)`` against candidates ``(n, d)``."""
        if self.boundary_head is None:
            raise ValueError("This checkpoint has no BoundaryHead (config.boundary['enabled'] is False).")
        with _eval_mode(self.boundary_head), torch.inference_mode():  # inference scores: no dropout
            logits = self.boundary_head(
                F.normalize(query.float(), dim=-1), F.normalize(candidates.float(), dim=-1)
            )
        return torch.sigmoid(logits)

    def rerank(
        self,
        jd: str | Any,
        cvs: Sequence[str] | Any,
        top_k: int | None = None,
        boundary_weight: float | None = None,
        batch_size: int = 32,
        feedback_top_k: int | None = None,
        feedback_weight: float | None = None,
    ) -> list[dict[str, Any]]:
        """Order candidate CVs for one JD by ``s_final = cos + w·feedback − λ·s_boundary``.

        Args:
            jd: The JD text, or its precomputed embedding ``(d,)`` (``encode(..., task="jd-cv")``).
            cvs: A list or tuple of CV texts, or their precomputed embeddings ``(n, d)`` (e.g. cached
                by a service). Embeddings must be finite: a NaN row would get a NaN score, which sorts
                arbitrarily.
            top_k: Keep the best ``top_k``, an integer >= 0 (default ``None``: all).
            boundary_weight: λ, a finite number >= 0 (default ``config.boundary["weight"]``). Without
                a trained BoundaryHead the ranking has no boundary term and a warning says so.
            batch_size: Encoding batch size when texts are given (an integer >= 1).
            feedback_top_k: ``k`` of the candidate feedback (:func:`candidate_feedback`; default
                ``config.feedback["top_k"]``, 0 = off).
            feedback_weight: ``w`` of the candidate feedback (default ``config.feedback["weight"]``).

        Returns:
            Dicts sorted by ``score`` (best first) with ``corpus_id`` (index into ``cvs``), ``score``,
            ``cosine``, ``boundary`` (``None`` without a trained head) and ``feedback`` (``None`` when off).

        Raises:
            TypeError: ``jd`` or ``cvs`` is neither text nor numbers, ``cvs`` is a single string, or
                an option has the wrong type (``top_k=True``, ``boundary_weight="x"``). The exception
                is :class:`InputTypeError`, also a ValueError.
            ValueError: ``jd`` is not a ``(d,)`` embedding, ``cvs`` embeddings do not have shape
                ``(n, d)``, an embedding holds NaN or infinity (the message names the row), or an
                option is out of range (``top_k=-1``, ``feedback_weight=float("nan")``).

        Example:
            >>> model.rerank("Staff ML engineer owning the ranking platform", cvs, top_k=3)  # doctest: +SKIP
            [{'corpus_id': 4, 'score': 0.61, 'cosine': 0.72, 'boundary': 0.37}, ...]
        """
        # Every option is checked before any text is encoded.
        top_k = check_int(top_k, "top_k", optional=True)
        check_int(batch_size, "batch_size", minimum=1)
        boundary_weight = check_number(boundary_weight, "boundary_weight", optional=True)
        feedback_top_k = self.config.feedback["top_k"] if feedback_top_k is None else feedback_top_k
        feedback_weight = self.config.feedback["weight"] if feedback_weight is None else feedback_weight
        check_feedback(feedback_top_k, feedback_weight)
        query = self._query_embedding(jd)
        candidates = self._candidate_embeddings(cvs, batch_size)
        if len(candidates) == 0:
            return []
        candidates = _unit(candidates)
        cosine = candidates @ _unit(query)
        boundary = feedback = None
        if feedback_top_k > 0:
            feedback = candidate_feedback(candidates, cosine, feedback_top_k)
        if self.has_boundary_head:
            boundary = self.boundary_scores(query, candidates)
        else:
            warnings.warn(
                "This checkpoint has no trained BoundaryHead: candidates are ranked without s_boundary.",
                stacklevel=2,
            )
        boundary_weight = self.config.boundary["weight"] if boundary_weight is None else boundary_weight
        final = final_score(cosine, feedback, feedback_weight, boundary, boundary_weight)
        order = torch.argsort(final, descending=True)[:top_k]
        return [
            {
                "corpus_id": int(i),
                "score": float(final[i]),
                "cosine": float(cosine[i]),
                "boundary": None if boundary is None else float(boundary[i]),
                "feedback": None if feedback is None else float(feedback[i]),
            }
            for i in order
        ]

    def _query_embedding(self, jd: str | Any) -> torch.Tensor:
        if isinstance(jd, str):
            return self.encode(jd, kind="jd", convert_to="torch", task="jd-cv")
        return self._as_embeddings(jd, "jd", (self.config.output_dim,))

    def _candidate_embeddings(self, cvs: Sequence[str] | Any, batch_size: int) -> torch.Tensor:
        width = self.config.output_dim
        if isinstance(cvs, str):
            raise InputTypeError(
                f"cvs must be a list of CV texts or an embedding array of shape (n, {width}), "
                "got a single string: pass [cv]"
            )
        if isinstance(cvs, (list, tuple)):
            if not cvs:
                return torch.empty((0, width))
            if any(isinstance(cv, str) for cv in cvs):
                return self.encode(
                    list(cvs), kind="cv", batch_size=batch_size, convert_to="torch", task="jd-cv"
                )
        return self._as_embeddings(cvs, "cvs", (-1, width))

    @staticmethod
    def _as_embeddings(value: Any, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A finite float32 CPU tensor of ``shape`` (-1 = any size), or an error that says what is wrong."""
        expected = (
            "("
            + ", ".join("n" if size < 0 else str(size) for size in shape)
            + ("," if len(shape) == 1 else "")
            + ")"
        )
        tensor = _float_tensor(value, f"{name} must be text or an embedding array of shape {expected}")
        if tensor.ndim != len(shape) or any(
            size >= 0 and size != got for size, got in zip(shape, tensor.shape, strict=True)
        ):
            raise ValueError(f"{name} embeddings must have shape {expected}, got {tuple(tensor.shape)}")
        _check_finite(tensor, name)
        return tensor.cpu()

    # ------------------------------------------------------------------ helpers

    def _require_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError(
                "This CREModel has no tokenizer: load it with CREModel.from_pretrained / AutoModel.from_pretrained, "
                "or set model.tokenizer = AutoTokenizer.from_pretrained(...)."
            )
        return self.tokenizer

    def _instruction(self, kind: str) -> str:
        try:
            return self.config.instructions[kind]
        except (KeyError, TypeError):  # TypeError: an unhashable kind such as a list
            raise ValueError(
                f"Unknown kind {kind!r}; known kinds: {sorted(self.config.instructions)}"
            ) from None


# What decoding non-UTF-8 bytes with errors="surrogateescape" leaves in a str: no tokenizer encodes it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Unordered collections: the output rows could not be matched to their texts.
_UNORDERED = (Set, Mapping, MappingView)


def _validate_texts(texts: Any, name: str = "texts", stacklevel: int = 2) -> list[str]:
    r"""``texts`` as a list of plain ``str`` in iteration order, lone surrogates replaced, or a named error.

    Args:
        texts: An ordered iterable of strings (see :meth:`CREModel.encode` for what is accepted).
        name: The argument's name, for messages.
        stacklevel: Of the replacement warning (2: the line that called this helper).

    Example:
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _validate_texts(("caf\udce9", "tea")) == ["caf\ufffd", "tea"]
        True
        >>> str(caught[0].message)[:60]
        '1 character(s) in 1 of 2 texts could not be encoded as UTF-8'
    """
    if isinstance(texts, (bytes, bytearray, memoryview, *_UNORDERED)) or not isinstance(texts, Iterable):
        why = (
            ": its order is arbitrary, so outputs could not follow it"
            if isinstance(texts, _UNORDERED)
            else ""
        )
        raise InputTypeError(
            f"{name} must be a string or a list of strings (or a tuple, generator or 1-D array of them), "
            f"got {type(texts).__name__}{why}"
        )
    texts = list(texts)
    if not texts:
        raise ValueError(f"{name} is empty: pass at least one string")
    replaced = affected = 0
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputTypeError(f"{name}[{index}] is {type(text).__name__}, not a string")
        text = str(text)  # a plain str for the tokenizer (numpy.str_ and other subclasses)
        if not text.isascii():
            text, count = LONE_SURROGATE.subn("\ufffd", text)
            replaced, affected = replaced + count, affected + bool(count)
        texts[index] = text
    if replaced:
        # Counts only: the texts may be CVs, which are personal data.
        warnings.warn(
            f"{replaced} character(s) in {affected} of {len(texts)} {name} could not be encoded as UTF-8 "
            "(lone surrogates, e.g. from decoding non-UTF-8 bytes with errors='surrogateescape') "
            "and were replaced with U+FFFD",
            stacklevel=stacklevel,
        )
    return texts


def _float_tensor(value: Any, requirement: str) -> torch.Tensor:
    """``value`` as a float32 tensor (on its own device), or an InputTypeError: ``requirement``, got type."""
    try:
        if isinstance(value, (str, bytes, bytearray, memoryview)):  # torch reads a bytearray as numbers
            raise TypeError
        tensor = torch.as_tensor(value)
        if tensor.is_complex():  # casting would silently drop the imaginary part
            raise TypeError
        return tensor.to(torch.float32)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise InputTypeError(f"{requirement}, got {type(value).__name__}") from None


def _embedding_rows(value: Any, name: str) -> torch.Tensor:
    """``(n, d)`` finite float32 embeddings from ``(n, d)`` or one ``(d,)``, or an error naming ``name``."""
    tensor = _float_tensor(value, f"{name} must be an embedding (d,) or a matrix of embeddings (n, d)")
    if tensor.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be an embedding (d,) or a matrix of embeddings (n, d), got shape {tuple(tensor.shape)}"
        )
    if tensor.shape[-1] == 0:
        raise ValueError(f"{name} has width 0: embeddings need at least one dimension")
    _check_finite(tensor, name)
    return tensor.reshape(-1, tensor.shape[-1])


def _check_finite(tensor: torch.Tensor, name: str) -> None:
    """A ValueError naming the first row (and column) of ``tensor`` that holds NaN or infinity."""
    bad = ~torch.isfinite(tensor)
    if not bad.any():
        return
    position = [int(i) for i in bad.nonzero()[0]]
    where = (
        f"{name}[{position[0]}] holds NaN or infinity (column {position[1]})"
        if tensor.ndim == 2
        else (f"{name} holds NaN or infinity (index {position[0]})")
    )
    raise ValueError(f"{where}: embeddings must be finite (as float32)")


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Unit-length rows; scaling by each row's largest entry first keeps huge or tiny (finite) values
    from overflowing or underflowing the norm, which would zero the row."""
    peak = x.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    return F.normalize(x / peak, dim=-1)


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Run a block with ``module`` in eval mode, then give it back the mode it had."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


CREConfig.register_for_auto_class()
CREModel.register_for_auto_class("AutoModel")

__all__ = [
    "BoundaryHead",
    "CNNProjection",
    "CREModel",
    "CREModelOutput",
    "CREPreTrainedModel",
    "final_score",
    "memory_vector",
    "pool",
]
