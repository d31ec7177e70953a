"""Make the repository importable when a training round is run by its file path.

``accelerate launch train/r2.py`` (and ``python train/r2.py``) runs the file as ``__main__`` with the
file's folder, ``train/``, first on ``sys.path`` instead of the repository root: ``import cre`` and
``import train`` then fail, and ``train/``'s own modules (``data``, ``losses``, ``hub``...) would
shadow any installed package of the same name. A script cannot import its own package before that is
fixed, so each round script carries a two-line guard that imports this module by its bare name, only
when it runs without a package::

    if not __package__:  # run by path: put the repository root on sys.path (train/_run_by_path.py)
        import _run_by_path  # noqa: F401

Importing it replaces ``train/`` on ``sys.path`` with the repository root, so the script's imports
resolve exactly as under ``python -m train.r2``. It is idempotent: imported again, or as
``train._run_by_path`` (where the root is already importable), it only keeps the root first.

Example:
    >>> import sys
    >>> import train._run_by_path as bootstrap
    >>> sys.path[0] == str(bootstrap.REPO_ROOT)
    True
"""

from __future__ import annotations

import sys
from pathlib import Path

TRAIN_DIR = Path(__file__).resolve().parent
REPO_ROOT = TRAIN_DIR.parent


def _is_train_dir(entry: str) -> bool:
    # "" is the current directory; a script's folder may also be listed relative or via a symlink.
    return Path(entry or ".").resolve() == TRAIN_DIR


sys.path[:] = [str(REPO_ROOT)] + [
    entry for entry in sys.path if not _is_train_dir(entry) and entry != str(REPO_ROOT)
]
