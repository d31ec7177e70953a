"""Embed the text fields of a training batch in one differentiable forward pass.

Training reads several fields per example (a query, its positive, its negatives), possibly of
different input kinds (a JD query and CV candidates). :class:`BatchEncoder` puts each kind's
instruction in front and runs the model on chunks of texts of similar length, each padded only to its
own longest text: a batch of short recruiter questions and longer passages, or of job titles, then
costs what its texts cost rather than its longest text times the batch. Under distributed data
parallel training it runs the model once per backward pass instead (every text padded to the
batch's longest), as DDP's gradient reducer expects.

Example:
    >>> encoder = BatchEncoder.for_model(model, max_length=128)  # doctest: +SKIP
    >>> vectors = encoder(model, {"query": ("jd", jds), "positive": ("cv", cvs)})  # doctest: +SKIP
    >>> vectors["query"].shape  # doctest: +SKIP
    torch.Size([16, 384])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from cre.modeling_cre import CREModel

# field name -> (input kind, texts)
Fields = Mapping[str, tuple[str, Sequence[str]]]
# Texts per forward pass in one process: small enough that a chunk's longest text pads few others,
# large enough that the matrix products stay efficient on a CPU.
LENGTH_CHUNK = 16


def batch_fields(examples: Sequence[dict], kinds: dict[str, str]) -> Fields:
    """The batch's texts per field, with each field's input kind (``kinds``: field -> kind).

    Example:
        >>> batch_fields([{"query": "q1", "positive": "p1"}], {"query": "query", "positive": "cv"})
        {'query': ('query', ['q1']), 'positive': ('cv', ['p1'])}
    """
    return {name: (kind, [example[name] for example in examples]) for name, kind in kinds.items()}


@dataclass
class BatchEncoder:
    """Tokenises fields with their kind's instruction and splits the model's embeddings back per field.

    Attributes:
        model: The model whose :meth:`~modeling_cre.CREModel.tokenize` prompts and tokenises.
        max_length: Token budget per text (instruction included).
        chunk_size: Texts per forward pass, sorted by length (0: the whole batch in one pass).
    """

    model: CREModel
    max_length: int
    chunk_size: int = 0

    @classmethod
    def for_model(cls, model: CREModel, max_length: int | None = None, processes: int = 1) -> BatchEncoder:
        """The encoder of ``model`` for a run of ``processes`` processes (chunks by length in one
        process, one pass under DDP); ``max_length`` (default ``config.max_length``) is capped at the
        backbone's position limit, so that a long budget never indexes past its position table."""
        return cls(model, model.token_budget(max_length), LENGTH_CHUNK if processes == 1 else 0)

    def __call__(self, model: torch.nn.Module, fields: Fields, device: torch.device | None = None) -> dict:
        """Embed every field; returns ``{field: (n, output_dim) float32 tensor}`` (not normalised)."""
        texts = [(kind, text) for kind, values in fields.values() for text in values]
        if self.chunk_size:
            order = sorted(range(len(texts)), key=lambda index: len(texts[index][1]))
            chunks = [
                order[start : start + self.chunk_size] for start in range(0, len(order), self.chunk_size)
            ]
            parts = [self._embed(model, [texts[index] for index in chunk], device) for chunk in chunks]
            inverse = torch.as_tensor(order).argsort().to(parts[0].device)  # back to field order
            embeddings = torch.cat(parts)[inverse]
        else:
            embeddings = self._embed(model, texts, device)
        sizes = [len(values) for _, values in fields.values()]
        return dict(zip(fields, torch.split(embeddings, sizes), strict=True))

    def _embed(
        self, model: torch.nn.Module, texts: Sequence[tuple[str, str]], device: torch.device | None
    ) -> torch.Tensor:
        batch = self.model.tokenize([text for _, text in texts], [kind for kind, _ in texts], self.max_length)
        if device is not None:
            batch = {name: tensor.to(device) for name, tensor in batch.items()}
        return model(**batch).sentence_embedding
