"""The RT sweep loads a backbone or a trained CRE checkpoint and hands out one encoder per RT setting."""

from __future__ import annotations

import numpy as np

from eval.rt_sweep import VariantLoader, variants

TEXTS = ["Senior data engineer: Spark, Airflow, dbt.", "Ward nurse, night shifts, patient care."]


def test_variants_of_a_saved_checkpoint_differ_only_in_rt(tiny_cre, tmp_path):
    folder = tmp_path / "checkpoint"
    tiny_cre("encoder").save_pretrained(folder)
    loader = VariantLoader(str(folder), max_length=48, cache_dir=None)
    # The variants share one model, so each is used as soon as it is handed out (as run_models does).
    embeddings = [loader(spec).encode(TEXTS, kind="jd") for spec in variants("ckpt", [1], ["prefix"])]
    assert type(loader.model).__name__ == "CREModel"
    first, second = embeddings
    assert first.shape == second.shape == (2, loader.model.config.output_dim)
    assert not np.allclose(first, second, atol=1e-5)  # the memory token changes the embedding
    again = loader(variants("ckpt", [1], ["prefix"])[0]).encode(TEXTS, kind="jd")
    np.testing.assert_allclose(again, first, atol=1e-6)  # back to k = 0: the checkpoint's own embedding
