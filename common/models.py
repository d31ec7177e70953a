"""Build a CRE model on a pretrained backbone, or load a CRE checkpoint: what training, evaluation,
benchmarks and cvsearch all start from.

The backbone's weights are copied unchanged into :class:`~modeling_cre.CREModel`, and the pooling,
length and normalisation of a sentence-transformers backbone folder are carried over, so the new
model embeds exactly like the original until it is trained. Decoder backbones get last-token
pooling, left padding and an EOS token appended by the tokenizer itself (so CRE's ``encode`` and
sentence-transformers read the same tokens); with ``pooling="embtoken"`` the tokenizer appends an added
``<embtoken>`` instead, whose input embedding starts as EOS's (CRE-T1).

Example:
    >>> from common.models import build_cre_model
    >>> model = build_cre_model("minilm")  # doctest: +SKIP
    >>> model.encode("Registered nurse, ICU, 5 years", kind="cv").shape  # doctest: +SKIP
    (384,)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from tokenizers import processors
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from common.backbones import is_cre_checkpoint, resolve_backbone
from cre.configuration_cre import EMBTOKEN, CREConfig
from cre.modeling_cre import CREModel

logger = logging.getLogger(__name__)

# Token budget for decoders when the backbone folder does not say (SmolLM2 reads 8k, CVs rarely need it).
DEFAULT_MAX_LENGTH = 256


def build_cre_model(backbone: str, cache_dir: str | None = None, **config_overrides: Any) -> CREModel:
    """Build a CRE model holding a pretrained backbone's weights, in eval mode, with its tokenizer.

    Args:
        backbone: An alias (``minilm``, ``smollm2-135m``, ``mpnet``), a local folder or a Hub id.
        cache_dir: Where converted backbones are cached (see :mod:`common.backbones`).
        **config_overrides: :class:`CREConfig` fields (``pooling``, ``max_length``, ``cnn``, ``rt``, ...).

    Returns:
        A :class:`CREModel` that embeds like the backbone (for sentence-transformers folders, like the
        original sentence-transformers pipeline).
    """
    folder = resolve_backbone(backbone, cache_dir)
    text_config = AutoConfig.from_pretrained(folder)
    options = {**_sentence_transformers_options(folder), **config_overrides}
    config = CREConfig(text_config=text_config.to_dict(), **options)
    model = CREModel(config)
    pretrained = AutoModel.from_pretrained(folder)
    missing, unexpected = model.backbone.load_state_dict(pretrained.state_dict(), strict=False)
    if missing:
        raise RuntimeError(f"Backbone {backbone!r} lacks weights for {missing[:5]}")
    model.tokenizer = _load_tokenizer(folder, config)
    if config.pooling == "embtoken":
        add_embtoken(model)
    model.config.name_or_path = str(backbone)
    return model.eval()


def _sentence_transformers_options(folder: str) -> dict[str, Any]:
    """Pooling, length and normalisation of a sentence-transformers folder (empty for other folders)."""
    path = Path(folder)
    if not (path / "modules.json").exists():
        return {}
    modules = json.loads((path / "modules.json").read_text())
    options: dict[str, Any] = {"normalize": any(m["type"].endswith("Normalize") for m in modules)}
    bert_config = path / "sentence_bert_config.json"
    if bert_config.exists():
        options["max_length"] = json.loads(bert_config.read_text()).get("max_seq_length", DEFAULT_MAX_LENGTH)
    for module in modules:
        if module["type"].endswith("Pooling"):
            pooling = json.loads((path / module["path"] / "config.json").read_text())
            # sentence-transformers >= 5 writes "pooling_mode"; older folders one boolean per mode.
            legacy = {
                "pooling_mode_mean_tokens": "mean",
                "pooling_mode_cls_token": "cls",
                "pooling_mode_lasttoken": "lasttoken",
            }
            modes = (
                [pooling["pooling_mode"]]
                if "pooling_mode" in pooling
                else [m for k, m in legacy.items() if pooling.get(k)]
            )
            chosen = [{"lasttoken": "last_token"}.get(mode, mode) for mode in modes]
            if len(chosen) != 1 or chosen[0] not in ("mean", "cls", "last_token"):
                raise ValueError(f"{folder}: unsupported sentence-transformers pooling {pooling}")
            options["pooling"] = chosen[0]
    return options


def _load_tokenizer(folder: str, config: CREConfig) -> PreTrainedTokenizerBase:
    """The backbone's tokenizer; decoders pad on the left and the tokenizer appends the token that
    pooling reads: EOS for last-token pooling, ``<embtoken>`` for embtoken pooling. Options given at
    load time are the ones ``save_pretrained`` keeps."""
    options: dict[str, Any] = {"model_max_length": config.max_length}
    if config.is_decoder_backbone:
        options["padding_side"] = "left"
    tokenizer = AutoTokenizer.from_pretrained(folder, **options)
    if not config.is_decoder_backbone:
        return tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.pooling == "embtoken":
        tokenizer.add_special_tokens({"additional_special_tokens": [EMBTOKEN]})
        _append_token(tokenizer, EMBTOKEN)
    elif tokenizer("x")["input_ids"][-1] != tokenizer.eos_token_id:
        _append_token(tokenizer, tokenizer.eos_token)
    return tokenizer


def _append_token(tokenizer: PreTrainedTokenizerBase, token: str) -> None:
    """Make the tokenizer itself end every text with ``token``, so CRE's ``encode``, sentence-transformers
    and the training code read the same tokens, and truncation keeps its place (a post-processor's
    tokens are reserved before the text is cut)."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    append = processors.TemplateProcessing(
        single=f"$A:0 {token}:0", pair=f"$A:0 {token}:0 $B:1 {token}:1", special_tokens=[(token, token_id)]
    )
    backend = tokenizer.backend_tokenizer
    existing = backend.post_processor
    backend.post_processor = append if existing is None else processors.Sequence([existing, append])


def add_embtoken(model: CREModel) -> int:
    """Give an embtoken model's backbone an input embedding for ``<embtoken>`` (already in the tokenizer).

    The row starts as a copy of the EOS token's embedding: the token a decoder has learnt to read as
    "the text ends here", which is what the embedding token marks. Until training moves it, embtoken
    pooling therefore embeds exactly like last-token pooling over an EOS-terminated text.

    Returns:
        The token's id, also stored as ``config.embtoken_id``.

    Example:
        >>> model = build_cre_model("smollm2-135m", pooling="embtoken")  # calls add_embtoken  # doctest: +SKIP
        >>> model.tokenizer.convert_ids_to_tokens(model.config.embtoken_id)  # doctest: +SKIP
        '<embtoken>'
    """
    tokenizer = model.tokenizer
    token_id = tokenizer.convert_tokens_to_ids(EMBTOKEN)
    embeddings = model.backbone.get_input_embeddings()
    if token_id >= embeddings.num_embeddings:
        embeddings = model.backbone.resize_token_embeddings(token_id + 1, mean_resizing=False)
    with torch.no_grad():
        embeddings.weight[token_id] = embeddings.weight[tokenizer.eos_token_id]
    model.config.text_config.vocab_size = embeddings.num_embeddings
    model.config.embtoken_id = token_id
    return token_id
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = tokenizer.eos_token
    if tokenizer("x")["input_ids"][-1] != tokenizer.eos_token_id:
        append_eos = processors.TemplateProcessing(
            single=f"$A:0 {eos}:0",
            pair=f"$A:0 {eos}:0 $B:1 {eos}:1",
            special_tokens=[(eos, tokenizer.eos_token_id)],
        )
        backend = tokenizer.backend_tokenizer
        existing = backend.post_processor
        backend.post_processor = (
            append_eos if existing is None else processors.Sequence([existing, append_eos])
        )
    return tokenizer


def load_model(spec: str | os.PathLike, **config_overrides: Any) -> CREModel:
    """A CRE model to train: a CRE checkpoint folder as saved, else a fresh model on the backbone ``spec``.

    Args:
        spec: A CRE checkpoint folder, or a backbone alias / folder / Hub id for :func:`build_cre_model`.
        **config_overrides: :class:`CREConfig` fields for a fresh model (e.g. ``cnn={"enabled": True}``);
            ignored, with a warning, for a checkpoint, whose config is already fixed.
    """
    if is_cre_checkpoint(spec):
        if config_overrides:
            logger.warning("%s is a CRE checkpoint: ignoring options %s", spec, sorted(config_overrides))
        return CREModel.from_pretrained(str(spec))
    return build_cre_model(str(spec), **config_overrides)
