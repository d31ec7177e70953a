"""Publish a checkpoint folder to a Hugging Face Hub repo.

:func:`push_folder` uploads what a model repo needs from a folder (a CRE checkpoint, or any
``save_pretrained`` output) as ONE commit, so the repo never shows a half-published model: the
config, the weights, the tokenizer files, the custom code, the sentence-transformers files
(``modules.json``, ``1_Pooling/`` ...) and the model card (:data:`UPLOAD_PATTERNS`). What a training
round leaves beside them stays home (:data:`LOCAL_PATTERNS`): ``logs/``, the accelerate training
state in ``state/`` (optimizer and RNG states, several times the model's size) and
``training_summary.json`` (local paths of the run). The patterns are
applied by ``huggingface_hub.utils.filter_repo_objects``, the filter behind ``upload_folder``'s
``allow_patterns``/``ignore_patterns``; the files then go up through ``create_repo`` +
``create_commit``. ``upload_folder`` itself is not used because, with ``hf_xet`` installed, it
switches to a pipelined upload that may split a folder into several commits and retries on its own,
which would break the one-commit guarantee and the retry policy below. Never through transformers'
``push_to_hub`` either, which would regenerate the model card.

Transient failures (connection errors, HTTP 408/429/5xx) are retried with exponential backoff; a
rejected token (401/403) or any other client error fails at once. Every failure surfaces as a
:class:`HubPublishError` that names the repo, the endpoint and the cause. The local folder is only
ever read, so a failed push leaves it exactly as it was.

A retried push is idempotent: files the Hub already holds with the same content are not sent
again, and a push whose commit landed but whose answer was lost ends with "no change".

Example:
    >>> from train.hub import push_folder
    >>> push_folder("runs/cre-minilm", "my-org/cre-minilm", private=True)  # doctest: +SKIP
    'https://huggingface.co/my-org/cre-minilm/commit/4f1c...'

Command line (the token comes from ``HF_TOKEN`` or ``hf auth login``, the endpoint from
``HF_ENDPOINT``)::

    python -m train.hub runs/cre-minilm my-org/cre-minilm --private --message "CRE v0.1"
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import httpx2
from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

logger = logging.getLogger(__name__)

DEFAULT_COMMIT_MESSAGE = "Upload CRE checkpoint"
# What a model repo needs (``fnmatch`` patterns on paths relative to the folder; ``*`` crosses
# folders, so ``*.json`` also takes ``1_Pooling/config.json``).
UPLOAD_PATTERNS = (
    "README.md",
    "*.json",  # config, generation and tokenizer configs, sentence-transformers' modules and settings
    "*.safetensors",  # weights
    "*.py",  # the custom code of a trust_remote_code checkpoint
    "vocab.txt",  # WordPiece vocabulary (BERT)
    "merges.txt",  # BPE merges (GPT-2 style tokenizers)
    "*.model",  # SentencePiece vocabularies
)
# What never leaves the machine even where it matches UPLOAD_PATTERNS: training logs, the accelerate
# training state (its own model.safetensors and JSON files), the run record with its local paths, and
# caches (``.git`` is always skipped by huggingface_hub).
LOCAL_PATTERNS = ("logs/*", "state/*", "training_summary.json", ".cache/*", "*__pycache__/*")
# Statuses that say "try again later" rather than "this request is wrong".
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class HubPublishError(RuntimeError):
    """A push to the Hub that failed; names the repo, the endpoint and the cause.

    Attributes:
        repo_id: The target repo.
        endpoint: The Hub endpoint that was used.
        attempts: How many times the push was tried.
    """

    def __init__(self, repo_id: str, endpoint: str, cause: str, attempts: int = 1):
        tries = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"Could not push to {repo_id!r} on {endpoint}: {cause}{tries}")
        self.repo_id = repo_id
        self.endpoint = endpoint
        self.attempts = attempts


def checkpoint_files(folder: str | os.PathLike) -> dict[str, Path]:
    """Map each file :func:`push_folder` uploads to its path in the repo: the files matching
    :data:`UPLOAD_PATTERNS` and none of :data:`LOCAL_PATTERNS` (nor ``.git``).

    Args:
        folder: A checkpoint folder.

    Returns:
        ``{path_in_repo: local_path}``, sorted by path.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        ValueError: ``folder`` holds no file to upload.

    Example:
        >>> sorted(checkpoint_files("runs/cre"))  # doctest: +SKIP
        ['1_Pooling/config.json', 'config.json', 'model.safetensors', 'modules.json', ...]
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"Checkpoint folder not found (or not a directory): {root}")
    local = {path.relative_to(root).as_posix(): path for path in sorted(root.rglob("*")) if path.is_file()}
    # upload_folder's filter, with huggingface_hub's own ignore list (.git) added as upload_folder does
    kept = filter_repo_objects(
        local, allow_patterns=UPLOAD_PATTERNS, ignore_patterns=[*LOCAL_PATTERNS, *DEFAULT_IGNORE_PATTERNS]
    )
    files = {name: local[name] for name in kept}
    if not files:
        raise ValueError(
            f"Checkpoint folder {root} holds no file to upload (looked for {', '.join(UPLOAD_PATTERNS)})"
        )
    return files


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    endpoint: str | None = None,
    max_retries: int = 3,
    retry_wait: float = 1.0,
) -> CommitInfo:
    """Upload a folder to a Hub model repo as one commit, creating the repo and branch if needed.

    Args:
        folder: The checkpoint folder; only read, never changed.
        repo_id: ``namespace/name`` of the target model repo (a bare ``name`` lands in the token's user
            namespace).
        token: A Hub token with write access; defaults to ``HF_TOKEN`` or the ``hf auth login`` token.
        private: Create the repo private. An existing repo keeps its visibility.
        revision: Branch to commit to (created from ``main`` if missing); defaults to ``main``.
        commit_message: Summary of the commit.
        endpoint: Hub URL; defaults to ``HF_ENDPOINT`` or https://huggingface.co.
        max_retries: How many times a transient failure is retried after the first attempt.
        retry_wait: Seconds before the first retry; doubled after each further one.

    Returns:
        The commit: a ``str`` holding the commit URL, with the commit hash in ``.oid``.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        ValueError: ``folder`` is empty.
        HubPublishError: No token, the Hub is unreachable, rejected the token, or kept failing.

    Example:
        >>> commit = push_folder("runs/cre", "me/cre", revision="v0.1")  # doctest: +SKIP
        >>> commit.oid  # doctest: +SKIP
        '4f1c9e0b...'
    """
    files = checkpoint_files(folder)
    api = HfApi(endpoint=endpoint)
    token = token or get_token()
    if not token:
        raise HubPublishError(
            repo_id, api.endpoint, "no Hub token: pass token=, set HF_TOKEN, or run `hf auth login`"
        )
    attempt = 0
    while True:
        try:
            return _push_once(api, files, repo_id, token, private, revision, commit_message)
        except (httpx2.TransportError, HfHubHTTPError) as error:
            attempt += 1
            cause = _describe(error)
            if not _is_transient(error) or attempt > max_retries:
                raise HubPublishError(repo_id, api.endpoint, cause, attempts=attempt) from error
            wait = retry_wait * 2 ** (attempt - 1)
            logger.warning(
                "Push to %s failed (%s); retrying in %.1f s [%d/%d]",
                repo_id,
                cause,
                wait,
                attempt,
                max_retries,
            )
            time.sleep(wait)


def _push_once(
    api: HfApi,
    files: dict[str, Path],
    repo_id: str,
    token: str,
    private: bool,
    revision: str | None,
    commit_message: str,
) -> CommitInfo:
    repo_url = api.create_repo(repo_id, token=token, private=private, exist_ok=True)
    if revision not in (None, constants.DEFAULT_REVISION):
        api.create_branch(repo_url.repo_id, branch=revision, token=token, exist_ok=True)
    # Operations are rebuilt on every attempt: huggingface_hub marks them as used once sent.
    operations = [CommitOperationAdd(path_in_repo, local_path) for path_in_repo, local_path in files.items()]
    return api.create_commit(
        repo_url.repo_id, operations, commit_message=commit_message, token=token, revision=revision
    )


def _is_transient(error: Exception) -> bool:
    if isinstance(error, HfHubHTTPError):
        return error.response.status_code in RETRYABLE_STATUSES
    return True  # a transport error: refused, reset or timed-out connection


def _describe(error: Exception) -> str:
    if isinstance(error, httpx2.ConnectError):
        return f"cannot connect to the Hub ({error}); is the server up and HF_ENDPOINT right?"
    if isinstance(error, httpx2.TransportError):
        return f"the connection to the Hub failed ({type(error).__name__}: {error})"
    status = error.response.status_code
    detail = error.server_message or error.response.reason_phrase
    if status == 401:
        return f"the Hub rejected the token (HTTP 401: {detail}); check HF_TOKEN or the token= argument"
    if status == 403:
        return f"the token may not write to this repo (HTTP 403: {detail})"
    return f"HTTP {status} from {error.response.request.url.path} ({detail})"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m train.hub FOLDER REPO_ID [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m train.hub",
        description="Upload a checkpoint folder to a Hugging Face Hub model repo as one commit. "
        "The token comes from HF_TOKEN (or `hf auth login`), the endpoint from HF_ENDPOINT.",
    )
    parser.add_argument("folder", help="checkpoint folder to upload")
    parser.add_argument("repo_id", help="target model repo, namespace/name")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to commit to (created if missing; default main)")
    parser.add_argument("--message", default=DEFAULT_COMMIT_MESSAGE, help="commit message")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        commit = push_folder(
            args.folder,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.message,
        )
    except (HubPublishError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(commit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
