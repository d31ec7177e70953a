"""Load anything we evaluate as an :class:`Encoder`: CRE checkpoints, sentence-transformers, aliases.

The evaluation code needs one method, ``encode(texts, kind, batch_size=32, show_progress=False)``
returning float32 L2-normalised rows; ``kind`` is ``"jd"``, ``"cv"``, ``"query"`` or ``"document"``
(CRE puts a per-kind instruction in front, sentence-transformers models ignore it). Encoders whose
model has a trained BoundaryHead also answer :meth:`Encoder.boundary_scores`, which the local-pool
protocol uses to rerank by ``cosine − λ·s_boundary``.

:func:`load_encoder` understands:

* ``minilm``, ``mpnet``: the offline sentence-transformers backbones of :mod:`common.backbones`;
* ``smollm2-135m``: a CRE model built on SmolLM2-135M-Instruct with last-token pooling (zero-shot);
* a folder whose ``config.json`` says ``"model_type": "cre"``: a CRE checkpoint;
* any other folder or Hub id: loaded with ``SentenceTransformer``.

Vectors are cached on disk per (model fingerprint, kind, text), see :mod:`eval.cache`.

Example:
    >>> encoder = load_encoder("minilm", max_length=256)  # doctest: +SKIP
    >>> encoder.encode(["Senior Python developer"], kind="jd").shape  # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from common.backbones import is_cre_checkpoint, resolve_backbone
from common.windows import cut_windows, default_stride, text_room, token_spans
from cre.configuration_cre import INPUT_KINDS
from eval.cache import EmbeddingCache, default_embedding_cache_dir, readable_name

DECODER_ALIASES = {"smollm2-135m": {"pooling": "last_token"}}


@runtime_checkable
class SupportsEncode(Protocol):
    """What the protocols need from a model."""

    def encode(
        self, texts: list[str], kind: str, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray: ...


class Encoder:
    """Base class: checks the kind, goes through the embedding cache, counts what it really encoded.

    Subclasses implement :meth:`_encode`.

    Attributes:
        name: Display name (the spec it was loaded from).
        fingerprint: Identifies the weights and settings; names the cache folder.
        texts_encoded: Texts actually run through the model (cache misses), for timing reports.
    """

    has_boundary_head = False

    def __init__(self, name: str, fingerprint: str, cache_dir: str | os.PathLike | None = None):
        self.name = name
        self.fingerprint = fingerprint
        self.cache_dir = cache_dir
        self.cache = EmbeddingCache(cache_dir, fingerprint) if cache_dir is not None else None
        self.texts_encoded = 0

    def for_task(self, task: str) -> Encoder:
        """The encoder for ``task`` (``jd-jd``, ``jd-cv`` or ``title``); itself unless the model has task
        weights."""
        return self

    def encode(
        self, texts: list[str], kind: str, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Embed ``texts`` as ``kind`` inputs into float32, L2-normalised rows."""
        if kind not in INPUT_KINDS:
            raise ValueError(f"kind must be one of {INPUT_KINDS}, got {kind!r}")

        def run(batch: list[str]) -> np.ndarray:
            self.texts_encoded += len(batch)
            return np.asarray(self._encode(batch, kind, batch_size, show_progress), dtype=np.float32)

        if self.cache is None:
            return run(list(texts))
        return self.cache.fetch(list(texts), kind, run)

    def _encode(self, texts: list[str], kind: str, batch_size: int, show_progress: bool) -> np.ndarray:
        raise NotImplementedError

    def boundary_scores(self, query_vector: np.ndarray, doc_vectors: np.ndarray) -> np.ndarray:
        """``s_boundary`` of one query against each document (only when :attr:`has_boundary_head`)."""
        raise NotImplementedError(f"{self.name} has no BoundaryHead")

    def windows(self, texts: list[str], kind: str) -> list[list[str]]:
        """Each text cut into the windows this model reads whole (:func:`common.windows.cut_windows`:
        as many tokens as the model reads after its instruction, a new window every three quarters of
        that), as the search tool cuts them; a short text is one window, itself."""
        tokenizer, size = self._reader(kind)
        return [
            cut_windows(text, spans, size, default_stride(size))
            for text, spans in zip(texts, token_spans(tokenizer, texts), strict=True)
        ]

    def _reader(self, kind: str) -> tuple[Any, int]:
        """The model's tokenizer, and how many tokens of a ``kind`` text the model reads."""
        raise NotImplementedError(f"{self.name} cannot read texts in windows")


class SentenceTransformerEncoder(Encoder):
    """A ``SentenceTransformer``; ``kind`` is ignored (such models take no instructions)."""

    def __init__(self, model: Any, name: str, fingerprint: str, cache_dir: str | os.PathLike | None = None):
        super().__init__(name, fingerprint, cache_dir)
        self.model = model

    def _encode(self, texts: list[str], kind: str, batch_size: int, show_progress: bool) -> np.ndarray:
        return self.model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )

    def _reader(self, kind: str) -> tuple[Any, int]:
        tokenizer = self.model.tokenizer
        return tokenizer, self.model.max_seq_length - tokenizer.num_special_tokens_to_add()


class CREEncoder(Encoder):
    """A CRE model (``modeling_cre.CREModel``): per-kind instructions and an optional BoundaryHead."""

    def __init__(
        self,
        model: Any,
        name: str,
        fingerprint: str,
        cache_dir: str | os.PathLike | None = None,
        max_length: int | None = None,
    ):
        super().__init__(name, fingerprint, cache_dir)
        self.model = model
        self.max_length = max_length
        self.has_boundary_head = bool(getattr(model, "has_boundary_head", False))
        self.task: str | None = None  # None: the model's default task

    def for_task(self, task: str) -> CREEncoder:
        """A view that encodes for ``task``, with its own embedding cache, when the model has task
        adapters (``config.task_adapters``); otherwise ``self``, since every task encodes alike.

        The tasks without an adapter share the base weights, so their views share one task name and one
        cache: the first such task the checkpoint's code knows (a checkpoint written before a task
        existed would reject the new name, and encodes it with those same weights).
        """
        adapters = self.model.config.task_adapters
        if not adapters:
            return self
        if task not in adapters:
            known = inspect.getmodule(type(self.model.config)).TASKS
            task = next((name for name in known if name not in adapters), task)
        view = copy.copy(self)
        view.task, view.fingerprint = task, f"{self.fingerprint}-{task}"
        view.cache = EmbeddingCache(self.cache_dir, view.fingerprint) if self.cache_dir is not None else None
        return view

    def _encode(self, texts: list[str], kind: str, batch_size: int, show_progress: bool) -> np.ndarray:
        return self.model.encode(
            texts,
            kind=kind,
            batch_size=batch_size,
            show_progress=show_progress,
            convert_to="numpy",
            normalize=True,
            max_length=self.max_length,
            task=self.task,
        )

    def _reader(self, kind: str) -> tuple[Any, int]:
        return self.model.tokenizer, text_room(self.model, kind, self.max_length)

    def boundary_scores(self, query_vector: np.ndarray, doc_vectors: np.ndarray) -> np.ndarray:
        if not self.has_boundary_head:
            return super().boundary_scores(query_vector, doc_vectors)
        import torch

        scores = self.model.boundary_scores(torch.as_tensor(query_vector), torch.as_tensor(doc_vectors))
        return scores.float().cpu().numpy()


def fingerprint(spec: str, location: str, max_length: int, extra: str = "") -> str:
    """A short id for the cache: the spec, the resolved location, the size and mtime of the weight,
    config and code files, and ``extra`` (e.g. a CRE config built in memory).

    Retraining a checkpoint in place changes the mtime, so stale vectors are never reused.
    """
    parts: list[Any] = [spec, location, max_length, extra]
    folder = Path(location)
    if folder.is_dir():
        for weights in sorted(folder.rglob("*")):
            if weights.suffix in {".safetensors", ".bin", ".pt", ".json", ".py"} and weights.is_file():
                stat = weights.stat()
                parts.append((str(weights.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]
    return f"{readable_name(spec)}-{digest}"


def load_encoder(
    spec: str,
    max_length: int = 256,
    cache_dir: str | os.PathLike | None | bool = True,
    device: str = "cpu",
    pooling: str | None = None,
) -> Encoder:
    """Load a model as an :class:`Encoder`.

    Args:
        spec: An alias (``minilm``, ``mpnet``, ``smollm2-135m``), a CRE checkpoint folder, a
            sentence-transformers folder, or a Hub id.
        max_length: Token budget per text (longer texts are truncated; 256 suits CVs on a CPU).
        cache_dir: Embedding cache root; ``True`` for :func:`~eval.cache.default_embedding_cache_dir`,
            ``False``/``None`` to disable caching.
        device: Torch device.
        pooling: For a decoder alias (built in memory), the pooling instead of its default, e.g.
            ``"embtoken"`` (CRE-T1's added token, untrained: it starts as a copy of EOS).

    Raises:
        ValueError: ``pooling`` is given for a spec that is not a decoder alias.
        FileNotFoundError: ``spec`` is not an alias, a model folder or a Hub id
            (:class:`common.backbones.ModelNotFoundError`, raised by ``resolve_backbone``).
    """
    cache_root = default_embedding_cache_dir() if cache_dir is True else (cache_dir or None)
    if pooling is not None and spec not in DECODER_ALIASES:
        raise ValueError(
            f"pooling={pooling!r} applies to a decoder alias built in memory ({', '.join(DECODER_ALIASES)}); "
            f"{spec!r} is loaded with the pooling it was saved with"
        )
    if spec in DECODER_ALIASES:
        from common.models import build_cre_model  # here: importing transformers takes seconds

        location = resolve_backbone(spec)
        options = {**DECODER_ALIASES[spec], **({"pooling": pooling} if pooling else {})}
        model = build_cre_model(spec, **options).to(device).eval()
        # Built in memory: the config and the modeling code decide the vectors, not files on disk.
        code = Path(inspect.getfile(type(model))).read_bytes()
        extra = model.config.to_json_string() + hashlib.sha256(code).hexdigest()
        return CREEncoder(model, spec, fingerprint(spec, location, max_length, extra), cache_root, max_length)
    location = resolve_backbone(spec)
    if Path(location).is_dir() and is_cre_checkpoint(location):
        from transformers import AutoModel

        model = AutoModel.from_pretrained(location, trust_remote_code=True).to(device).eval()
        return CREEncoder(model, spec, fingerprint(spec, location, max_length), cache_root, max_length)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(location, device=device)
    model.max_seq_length = max_length
    return SentenceTransformerEncoder(model, spec, fingerprint(spec, location, max_length), cache_root)
