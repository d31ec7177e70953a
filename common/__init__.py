"""What synthesis, training and evaluation share, importing none of them.

The one layer every other project layer may import (besides the checkpoint code, ``cre.*``), so that
dependencies run one way: synthesis → training → evaluation never needs an import back.

* :mod:`common.paths`: ``$CRE_CACHE``, the root of every CRE cache.
* :mod:`common.backbones`: backbone aliases, their Hub ids, offline resolution, model-source checks.
* :mod:`common.models`: build a CRE model on a backbone, load a CRE checkpoint.
* :mod:`common.chat`: the OpenAI-compatible and local chat clients (synthesis and the LLM judge).
* :mod:`common.answer_cache`: their on-disk answer cache.
* :mod:`common.lines`: the one reader of line-based files (JSON lines, text lines) with file:line errors.
* :mod:`common.openmp`: how idle OpenMP threads wait in training processes (set before torch loads).
"""
