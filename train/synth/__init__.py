"""Synthetic supervision for CRE: seed JDs, the JD pipeline (the paper's five stages and three more, schema.PAPER_STAGES), the JD-CV corpus and CV queries.

Example:
    >>> from train.synth import load_seed_jds, run_pipeline
    >>> jds = load_seed_jds()  # the embedded seeds; pass a path for your own JSONL/CSV
    >>> manifest = run_pipeline(jds, backend="rules", out_dir="runs/synth")  # doctest: +SKIP
"""

from train.synth.loaders import load_esco_jds, load_onet_jds, load_seed_jds
from train.synth.pipeline import run_pipeline

__all__ = ["load_esco_jds", "load_onet_jds", "load_seed_jds", "run_pipeline"]
