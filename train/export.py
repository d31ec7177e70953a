"""Export a CRE checkpoint for serving stacks that cannot run custom code.

text-embeddings-inference, Infinity, ONNX Runtime and vector-database plugins load a plain
sentence-transformers folder or an ONNX graph, never ``modeling_cre.py``. This module writes either,
with the same vectors as :meth:`CREModel.encode`:

* ``sentence-transformers``: Transformer → Pooling → [Dense: the identity slice to ``output_dim``]
  → [Normalize], CRE's instructions as prompts, ``max_seq_length`` = CRE's token budget. Loads with
  ``SentenceTransformer(folder)``, no ``trust_remote_code``.
* ``onnx``: ``model.onnx`` with pooling, truncation and normalisation inside the graph (inputs
  ``input_ids``, ``attention_mask`` [, ``token_type_ids``], output ``sentence_embedding``; dynamic
  batch and sequence axes), the tokenizer beside it, and with ``--quantize int8`` also
  ``model_int8.onnx`` (ONNX Runtime dynamic quantisation).

A checkpoint with task adapters gets one folder per adapted task (``OUT/<task>/``, the adapter's
low-rank update merged into a copy of the backbone) plus ``OUT/shared/`` for the tasks without one;
``--task`` exports one task's weights straight into ``OUT``. Only what is exactly linear is carried:
an enabled CNN projection (unless its fusion is all zeros, i.e. the identity) and RT iterations are
refused. The BoundaryHead and candidate feedback are rerank-time features outside the embedding:
they are not carried, and the export says so.

Command line::

    python -m train.export outputs/cre outputs/cre-st --format sentence-transformers
    python -m train.export outputs/cre outputs/cre-onnx --format onnx --quantize int8 --task jd-cv

Example:
    >>> from train.export import export_checkpoint
    >>> folders = export_checkpoint("outputs/cre", "outputs/cre-st")  # doctest: +SKIP
    >>> [(f.name, f.tasks) for f in folders]  # doctest: +SKIP
    [('jd-cv', ['jd-cv']), ('shared', ['jd-jd'])]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from common.backbones import is_cre_checkpoint
from cre.configuration_cre import TASKS, check_task
from cre.modeling_cre import CREModel

FORMATS = ("sentence-transformers", "onnx")
QUANTIZATIONS = ("int8",)
SHARED = "shared"
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model_int8.onnx"
EXPORT_CONFIG = "cre_export.json"
# A protobuf holds at most 2 GiB; larger graphs keep their weights in a side file.
ONNX_SINGLE_FILE_LIMIT = 1_800_000_000
# Texts the export is checked on before it is declared done: short, long, and of different lengths,
# so padding and truncation are exercised.
CHECK_TEXTS = [
    "Senior data engineer: Spark, Airflow and dbt on AWS; owns the lakehouse.",
    "ICU nurse",
    "Accountant with eight years of audit experience, team lead, CPA. " * 40,
]
# Fidelity floors of the self-check (cosine to CREModel's vector, per text).
MIN_COSINE = {"fp32": 0.9999, "int8": 0.99}


class ExportError(ValueError):
    """The checkpoint (or the request) cannot be exported exactly; the message says why, on one line."""


@dataclass
class ExportedFolder:
    """One exported model folder.

    Attributes:
        name: ``"model"`` (a single folder), a task name, or ``"shared"``.
        path: The folder.
        tasks: The tasks whose vectors it reproduces (``CREModel.encode(..., task=t)``).
        files: The model files written (``model.onnx`` …; empty for sentence-transformers).
    """

    name: str
    path: Path
    tasks: list[str]
    files: list[str]


@dataclass
class _Plan:
    """What one folder holds: the weights of ``adapter`` (``None``: the shared weights)."""

    name: str
    path: Path
    adapter: str | None
    tasks: list[str]


def export_checkpoint(
    checkpoint: str | os.PathLike | CREModel,
    out: str | os.PathLike,
    format: str = "sentence-transformers",
    task: str | None = None,
    quantize: str | None = None,
    overwrite: bool = False,
) -> list[ExportedFolder]:
    """Export a CRE checkpoint as plain sentence-transformers or ONNX folder(s).

    Args:
        checkpoint: A CRE checkpoint folder, or a loaded :class:`CREModel` (with its tokenizer).
        out: Output folder (created). Without ``task`` and with task adapters, one subfolder per
            adapted task plus ``shared``; otherwise the model itself.
        format: ``"sentence-transformers"`` or ``"onnx"``.
        task: Export only the weights that ``CREModel.encode(..., task=task)`` uses, into ``out``.
        quantize: ``"int8"`` adds ``model_int8.onnx`` (``format="onnx"`` only).
        overwrite: Replace a non-empty ``out`` (otherwise refused, so nothing is lost by mistake).

    Returns:
        The folders written, with the tasks each one serves.

    Raises:
        ExportError: The checkpoint holds something that is not exactly linear (an enabled CNN
            projection that is not the identity, RT iterations), the options do not fit, or the
            exported model does not reproduce CRE's vectors.
        FileNotFoundError: ``checkpoint`` is not a CRE checkpoint folder.

    Example:
        >>> export_checkpoint("outputs/cre", "outputs/cre-onnx", format="onnx", quantize="int8")  # doctest: +SKIP
        [ExportedFolder(name='model', path=PosixPath('outputs/cre-onnx'), tasks=['jd-jd', 'jd-cv', 'title'], ...)]
    """
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}; choose one of {FORMATS}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantisation {quantize!r}; choose one of {QUANTIZATIONS}")
    if quantize is not None and format != "onnx":
        raise ExportError("--quantize applies to --format onnx only")
    if task is not None:
        try:
            check_task(task)
        except ValueError as error:
            raise ExportError(str(error)) from None
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} exists and is not empty; pass overwrite=True (--overwrite) to replace it")
    model = _load(checkpoint)
    plans = _plan(model, out, task)
    for plan in plans:
        check_exportable(model, plan.adapter, plan.tasks)
    _warn_not_carried(model)
    if out.exists():
        shutil.rmtree(out)
    written = []
    for plan in tqdm(plans, desc=f"Exporting ({format})", unit="folder", disable=len(plans) < 2):
        plain = plain_model(model, plan.adapter)
        plan.path.mkdir(parents=True, exist_ok=True)
        reference = _Reference(model, plan.tasks[0])
        if format == "sentence-transformers":
            files = _write_sentence_transformers(plain, plan.path, reference)
        else:
            files = _write_onnx(plain, plan.path, quantize, reference)
        _write_folder_readme(plain, plan, format, files, model)
        written.append(ExportedFolder(plan.name, plan.path, plan.tasks, files))
    if len(plans) > 1:
        _write_index_readme(out, written, format)
    return written


def check_exportable(model: CREModel, adapter: str | None, tasks: list[str]) -> None:
    """Raise :class:`ExportError` unless the weights of ``adapter`` (``None``: shared) encode exactly
    as a plain transformer with linear pooling for ``tasks``.

    Example:
        >>> check_exportable(model, None, ["jd-jd"])  # doctest: +SKIP
    """
    served = ", ".join(tasks)
    if model.config.rt["iterations"] > 0:
        raise ExportError(
            f"RT is on (config.rt.iterations = {model.config.rt['iterations']}): a second, memory-fed "
            "pass is not a standard module; export a checkpoint with rt.iterations 0"
        )
    cnn = model.task_adapters[adapter].cnn if adapter is not None else None
    cnn = model.cnn if cnn is None else cnn
    if cnn is not None and not cnn.is_identity:
        raise ExportError(
            f"the CNN projection used by task(s) {served} is enabled and not the identity (its fusion "
            "weights are non-zero): n-gram max-pooling cannot be expressed in a plain model"
            + ("" if len(TASKS) == len(tasks) else "; export another task with --task")
        )


@torch.no_grad()
def plain_model(model: CREModel, adapter: str | None) -> CREModel:
    """A CRE model without extras that encodes like ``model`` does with ``adapter``'s weights: the
    adapter's update ``up @ down`` merged into a copy of the backbone, no task adapters, no CNN
    projection (checked to be the identity by :func:`check_exportable`), no BoundaryHead, no RT.

    Example:
        >>> plain = plain_model(model, "jd-cv")  # doctest: +SKIP
        >>> plain.encode(["Nurse"], kind="cv")  # == model.encode(["Nurse"], kind="cv", task="jd-cv")  # doctest: +SKIP
    """
    config = copy.deepcopy(model.config)
    config.task_adapters = {}
    config.cnn = {**config.cnn, "enabled": False}
    config.boundary = {**config.boundary, "enabled": False, "trained": False}
    config.feedback = {**config.feedback, "top_k": 0}
    config.rt = {**config.rt, "iterations": 0}
    plain = CREModel(config)
    plain.backbone = copy.deepcopy(model.backbone).float()
    if adapter is not None:
        for name, (down, up) in model.task_adapters[adapter].factors().items():
            plain.backbone.get_submodule(name).weight.add_(up @ down)
    plain.tokenizer = copy.deepcopy(model.tokenizer)
    # Positions count text tokens from the first one (CREModel._position_ids); serving stacks number
    # them 0, 1, … from the left edge, which is the same only with padding on the right.
    plain.tokenizer.padding_side = "right"
    return plain.eval()


# ---------------------------------------------------------------------------- planning


def _load(checkpoint: str | os.PathLike | CREModel) -> CREModel:
    if isinstance(checkpoint, CREModel):
        if checkpoint.tokenizer is None:
            raise ExportError("the model has no tokenizer; load it with CREModel.from_pretrained")
        return checkpoint
    if not is_cre_checkpoint(checkpoint):
        raise FileNotFoundError(
            f"{checkpoint} is not a CRE checkpoint folder (no config.json with model_type 'cre')"
        )
    return CREModel.from_pretrained(str(checkpoint)).eval()


def _plan(model: CREModel, out: Path, task: str | None) -> list[_Plan]:
    """The folders to write: one for ``task``; else one per task adapter plus the shared weights."""
    adapted = [t for t in TASKS if t in model.task_adapters]
    if task is not None:
        return [_Plan("model", out, task if task in adapted else None, [task])]
    if not adapted:
        return [_Plan("model", out, None, list(TASKS))]
    plans = [_Plan(t, out / t, t, [t]) for t in adapted]
    # The shared weights matter only for the tasks without an adapter of their own.
    shared = [t for t in TASKS if t not in adapted]
    if shared:
        plans.append(_Plan(SHARED, out / SHARED, None, shared))
    return plans


def _warn_not_carried(model: CREModel) -> None:
    extras = []
    if model.has_boundary_head:
        extras.append("the BoundaryHead (s = cos − λ·s_boundary)")
    if model.config.feedback["top_k"] > 0:
        extras.append(f"candidate feedback (top_k {model.config.feedback['top_k']})")
    if extras:
        warnings.warn(
            f"The export carries the embedding only; {' and '.join(extras)} are rerank-time features of "
            "CREModel.rerank and are not carried: rank exported vectors by cosine.",
            stacklevel=3,
        )


# ---------------------------------------------------------------------------- sentence-transformers


def _write_sentence_transformers(plain: CREModel, folder: Path, reference: _Reference) -> list[str]:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    config = plain.config
    width = config.text_config.hidden_size
    with tempfile.TemporaryDirectory(prefix="cre-export-") as scratch:
        plain.backbone.save_pretrained(scratch)
        plain.tokenizer.save_pretrained(scratch)
        modules: list[nn.Module] = [
            Transformer(scratch, max_seq_length=plain.token_budget()),
            # The tokenizer ends every text with <embtoken>: its state is the last token's.
            Pooling(
                width,
                pooling_mode={"last_token": "lasttoken", "embtoken": "lasttoken"}.get(
                    config.pooling, config.pooling
                ),
            ),
        ]
        if config.output_dim < width:
            # CRE keeps the first output_dim dimensions: an identity slice, linear without bias.
            slice_ = torch.eye(width)[: config.output_dim].clone()  # a view would share eye's storage
            modules.append(
                Dense(width, config.output_dim, bias=False, activation_function=None, init_weight=slice_)
            )
        if config.normalize:
            modules.append(Normalize())
        st = SentenceTransformer(
            modules=modules, prompts=dict(config.instructions), similarity_fn_name="cosine", device="cpu"
        )
        st.save(str(folder), create_model_card=False)
    reference.check(lambda texts, kind: st.encode(texts, prompt_name=kind, convert_to_numpy=True), "fp32")
    return []


# ---------------------------------------------------------------------------- ONNX


class _EmbeddingGraph(nn.Module):
    """What the ONNX graph computes: CRE's forward (pooling, truncation) and its normalisation."""

    def __init__(self, model: CREModel):
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        embedding = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).sentence_embedding
        return F.normalize(embedding, dim=-1) if self.model.config.normalize else embedding


def _onnx_inputs(plain: CREModel) -> list[str]:
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in plain.tokenizer.model_input_names and not plain.config.is_decoder_backbone:
        names.append("token_type_ids")
    return names


def _write_onnx(plain: CREModel, folder: Path, quantize: str | None, reference: _Reference) -> list[str]:
    names = _onnx_inputs(plain)
    sample = plain.tokenizer(CHECK_TEXTS, padding=True, truncation=True, max_length=48, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    size = sum(p.numel() * p.element_size() for p in plain.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the exporter's axis-naming chatter
        torch.onnx.export(
            _EmbeddingGraph(plain),
            tuple(sample[name] for name in names),
            str(folder / ONNX_FILE),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            dynamo=True,
            external_data=size > ONNX_SINGLE_FILE_LIMIT,
        )
    files = [ONNX_FILE]
    plain.tokenizer.save_pretrained(folder)
    prompts, budget = dict(plain.config.instructions), plain.token_budget()
    reference.check(OnnxEmbedder(folder / ONNX_FILE, plain.tokenizer, prompts, budget).encode, "fp32")
    if quantize == "int8":
        _quantize_int8(plain, folder / ONNX_FILE, folder / ONNX_INT8_FILE)
        reference.check(
            OnnxEmbedder(folder / ONNX_INT8_FILE, plain.tokenizer, prompts, budget).encode, "int8"
        )
        files.append(ONNX_INT8_FILE)
    return files


def _quantize_int8(plain: CREModel, source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weight MatMuls (per output channel) and embedding tables.

    ONNX Runtime quantises each MatMul's activations per tensor at run time; the input of the
    feed-forward down-projection (after GELU/SiLU) is heavy-tailed, so 8 bits lose the most there:
    those MatMuls stay float32, every other weight MatMul becomes int8.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    down_projections = _feed_forward_down_projections(plain.backbone)
    excluded = []
    for node in onnx.load(str(source), load_external_data=False).graph.node:
        scopes = {p.key: p.value for p in node.metadata_props}.get("pkg.torch.onnx.name_scopes")
        # The exporter records the module path of each node: ['', 'model', 'model.backbone', ...].
        if node.op_type == "MatMul" and scopes:
            module = json.loads(scopes.replace("'", '"'))[-2]
            if module.removeprefix("model.backbone.") in down_projections:
                excluded.append(node.name)
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gather"],
        nodes_to_exclude=excluded,
    )


def _feed_forward_down_projections(backbone: nn.Module) -> set[str]:
    """Names of the linear layers that map the feed-forward width back to the model width."""
    config = backbone.config
    inner = getattr(config, "intermediate_size", None)
    return {
        name
        for name, module in backbone.named_modules()
        if isinstance(module, nn.Linear)
        and module.in_features == inner
        and module.out_features == config.hidden_size
    }


class OnnxEmbedder:
    """Embed texts with an exported ONNX graph through ONNX Runtime, as a serving stack would: the
    kind's prompt in front, truncation to the token budget, right padding, length-sorted batches.

    Args:
        path: The ``.onnx`` file.
        tokenizer: Its tokenizer (padding on the right).
        prompts: Kind -> prompt (CRE's instructions).
        max_length: Token budget.
        threads: ONNX Runtime intra-op threads (default: its own choice).

    Example:
        >>> embedder = OnnxEmbedder.from_folder("outputs/cre-onnx", "model_int8.onnx")  # doctest: +SKIP
        >>> embedder.encode(["ICU nurse, 4 years"], kind="cv").shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self, path: str | os.PathLike, tokenizer, prompts: dict[str, str], max_length: int, threads: int = 0
    ):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [node.name for node in self.session.get_inputs()]
        self.tokenizer, self.prompts, self.max_length = tokenizer, prompts, max_length

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, file: str = ONNX_FILE, threads: int = 0) -> OnnxEmbedder:
        """The embedder of an ONNX export folder (its tokenizer and ``cre_export.json``)."""
        from transformers import AutoTokenizer

        settings = json.loads((Path(folder) / EXPORT_CONFIG).read_text(encoding="utf-8"))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        return cls(Path(folder) / file, tokenizer, settings["prompts"], settings["max_length"], threads)

    def encode(self, texts: list[str], kind: str = "jd", batch_size: int = 32, show_progress: bool = False):
        """``(len(texts), dim)`` float32 vectors (unit length when the export normalises), in input order."""
        import numpy as np

        if kind not in self.prompts:
            raise ValueError(f"Unknown kind {kind!r}; known kinds: {sorted(self.prompts)}")
        prompted = [self.prompts[kind] + text for text in texts]
        ids = self.tokenizer(prompted, truncation=True, max_length=self.max_length)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))  # batches pad little
        chunks = []
        for start in tqdm(range(0, len(order), batch_size), disable=not show_progress, desc=f"ONNX {kind}"):
            batch = [prompted[i] for i in order[start : start + batch_size]]
            tokens = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
            )
            chunks.append(self.session.run(["sentence_embedding"], {n: tokens[n] for n in self.inputs})[0])
        vectors = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(chunks)
        return vectors


class _Reference:
    """CREModel's own vectors of :data:`CHECK_TEXTS` for one task, to hold an export against."""

    def __init__(self, model: CREModel, task: str):
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # CRE's truncation notice: the long text is on purpose
            self.vectors = model.encode(
                CHECK_TEXTS, kind="cv", task=task, normalize=True, convert_to="torch", show_progress=False
            )

    def check(self, encode, precision: str) -> None:
        """Refuse an export whose vectors differ (batched, so padding counts), rather than hand out a
        model that ranks differently."""
        got = torch.as_tensor(encode(CHECK_TEXTS, "cv"), dtype=torch.float32)
        cosine = F.cosine_similarity(got, self.vectors, dim=-1)
        if not bool((cosine >= MIN_COSINE[precision]).all()):
            raise ExportError(
                f"the exported {precision} model does not reproduce CRE's vectors (cosine {cosine.min():.5f} "
                f"< {MIN_COSINE[precision]}); please report this checkpoint"
            )


# ---------------------------------------------------------------------------- READMEs


def _write_folder_readme(
    plain: CREModel, plan: _Plan, format: str, files: list[str], model: CREModel
) -> None:
    config = plain.config
    prompts = "\n".join(
        f"| `{kind}` | `{json.dumps(text, ensure_ascii=False)}` |"
        for kind, text in config.instructions.items()
    )
    record = {
        "format": format,
        "tasks": plan.tasks,
        "weights": plan.adapter or SHARED,
        "prompts": dict(config.instructions),
        "max_length": plain.token_budget(),
        "pooling": config.pooling,
        "dimension": config.output_dim,
        "normalized": config.normalize,
        "padding_side": "right",
        "files": files,
        "not_carried": _not_carried(model),
    }
    (plan.path / EXPORT_CONFIG).write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    if format == "sentence-transformers":
        usage = (
            "```python\nfrom sentence_transformers import SentenceTransformer\n\n"
            f'model = SentenceTransformer("{plan.path.name}")  # no trust_remote_code\n'
            'jd = model.encode(["Senior data engineer ..."], prompt_name="jd")\n'
            'cvs = model.encode(["Data engineer, 7 years ..."], prompt_name="cv")\n'
            "scores = model.similarity(jd, cvs)\n```"
        )
    else:
        usage = (
            "```python\nimport onnxruntime\nfrom transformers import AutoTokenizer\n\n"
            f'tokenizer = AutoTokenizer.from_pretrained("{plan.path.name}")\n'
            f'session = onnxruntime.InferenceSession("{plan.path.name}/{files[-1]}")\n'
            f'tokens = tokenizer([PROMPTS["cv"] + text for text in cvs], padding=True, truncation=True,\n'
            f'                   max_length={plain.token_budget()}, return_tensors="np")\n'
            "names = [i.name for i in session.get_inputs()]\n"
            'vectors = session.run(["sentence_embedding"], {n: tokens[n] for n in names})[0]\n```'
        )
    not_carried = "".join(f"\n- {item}" for item in record["not_carried"]) or "\n- nothing"
    text = f"""# CRE export ({format}) — task(s): {", ".join(plan.tasks)}

Plain export of a CRE checkpoint ({"weights of the `" + plan.adapter + "` task adapter, merged" if plan.adapter else "shared weights"}).
Its vectors equal `CREModel.encode(texts, kind=KIND, task=TASK)` for TASK in: **{", ".join(plan.tasks)}**.
Encode both sides of a comparison with a folder that serves that comparison's task.

- dimension {config.output_dim}, {config.pooling} pooling, {"unit-length (compare by dot product or cosine)" if config.normalize else "not normalised (compare by cosine)"}
- token budget {plain.token_budget()} (longer texts are truncated), padding on the right
- files: {", ".join(files) if files else "sentence-transformers modules"}, tokenizer, `{EXPORT_CONFIG}` (these settings as JSON)

Put the kind's prompt in front of each text (sentence-transformers: `prompt_name=KIND`):

| kind | prompt |
|---|---|
{prompts}

{usage}

Not carried (CREModel.rerank features; rank exported vectors by cosine):{not_carried}
"""
    (plan.path / "README.md").write_text(text, encoding="utf-8")


def _not_carried(model: CREModel) -> list[str]:
    items = []
    if model.has_boundary_head:
        items.append(f"BoundaryHead (s = cos − {model.config.boundary['weight']:g}·s_boundary)")
    if model.config.feedback["top_k"] > 0:
        items.append(
            f"candidate feedback (top_k {model.config.feedback['top_k']}, weight {model.config.feedback['weight']:g})"
        )
    return items


def _write_index_readme(out: Path, folders: list[ExportedFolder], format: str) -> None:
    rows = "\n".join(f"| `{f.path.name}/` | {', '.join(f.tasks)} |" for f in folders)
    text = f"""# CRE export ({format})

One folder per task weights; encode both sides of a comparison with the folder of its task
(`jd-cv`: JDs and CVs matched to each other; `jd-jd`: JDs searched against JDs; `title`: job titles
against job titles and occupation names).

| folder | tasks |
|---|---|
{rows}
"""
    (out / "README.md").write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m train.export CHECKPOINT OUT --format ...``; returns the exit status.

    Example:
        >>> main(["outputs/cre", "outputs/cre-onnx", "--format", "onnx", "--quantize", "int8"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="CRE checkpoint folder")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--format", choices=FORMATS, default="sentence-transformers")
    parser.add_argument(
        "--task", choices=TASKS, help="export only this task's weights, into OUT (default: every task)"
    )
    parser.add_argument("--quantize", choices=QUANTIZATIONS, help="also write model_int8.onnx (onnx only)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    args = parser.parse_args(argv)
    try:
        folders = export_checkpoint(
            args.checkpoint, args.out, args.format, args.task, args.quantize, overwrite=args.overwrite
        )
    except (ExportError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for folder in folders:
        print(f"{folder.path}: {args.format} for task(s) {', '.join(folder.tasks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
