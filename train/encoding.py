"""Embed the text fields of a training batch in one differentiable forward pass.

Training reads several fields per example (a query, its positive, its negatives), possibly of
different input kinds (a JD query and CV candidates). :class:`BatchEncoder` puts each kind's
instruction in front, tokenises all texts together and runs the model once: one forward pass per
backward pass, as distributed data parallel training expects, at the cost of padding every field to
the batch's longest text.

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
    """

    model: CREModel
    max_length: int

    @classmethod
    def for_model(cls, model: CREModel, max_length: int | None = None) -> BatchEncoder:
        """The encoder of ``model``; ``max_length`` (default ``config.max_length``) is capped at the
        backbone's position limit, so that a long budget never indexes past its position table."""
        return cls(model, model.token_budget(max_length))

    def tokenize(self, fields: Fields) -> dict[str, torch.Tensor]:
        """One padded batch holding every field's texts, in field order."""
        kinds = [kind for kind, values in fields.values() for _ in values]
        texts = [text for _, values in fields.values() for text in values]
        return self.model.tokenize(texts, kinds, self.max_length)

    def __call__(self, model: torch.nn.Module, fields: Fields, device: torch.device | None = None) -> dict:
        """Embed every field; returns ``{field: (n, output_dim) float32 tensor}`` (not normalised)."""
        batch = self.tokenize(fields)
        if device is not None:
            batch = {name: tensor.to(device) for name, tensor in batch.items()}
        embeddings = model(**batch).sentence_embedding
        sizes = [len(values) for _, values in fields.values()]
        return dict(zip(fields, torch.split(embeddings, sizes), strict=True))
