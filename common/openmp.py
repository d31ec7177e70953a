"""How idle OpenMP threads wait in the main job and its round processes.

PyTorch's CPU wheels use GNU OpenMP (libgomp): between two parallel regions a thread spins
``GOMP_SPINCOUNT`` times before it sleeps (300,000 by default, none with ``OMP_WAIT_POLICY=PASSIVE``).
A LoRA training step is many small parallel regions. Sleeping at once makes it slower on idle cores;
spinning long makes two jobs sharing the cores several times slower each. A short spin keeps most of
the idle speed and the shared machine's (``python -m bench.openmp``, ``bench/results/openmp.json``).

The variables must be set before torch loads its OpenMP runtime, so an entry point applies them first::

    import os

    from common.openmp import thread_wait_environment

    os.environ.update(thread_wait_environment(os.environ))
"""

from __future__ import annotations

from collections.abc import Mapping

SHORT_SPIN = "1000"
"""Spins before an idle thread sleeps (``GOMP_SPINCOUNT``): chosen with ``python -m bench.openmp``."""


def thread_wait_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``environ``: a short spin, unless its owner already chose how threads wait.

    Example:
        >>> thread_wait_environment({})
        {'GOMP_SPINCOUNT': '1000'}
        >>> thread_wait_environment({"OMP_WAIT_POLICY": "PASSIVE"})
        {}
    """
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return {}
    return {"GOMP_SPINCOUNT": SHORT_SPIN}
