"""The local backend on the real SmolLM2-135M-Instruct weights (integration: ~2 JDs, short answers)."""

import pytest

from train.synth import load_seed_jds, run_pipeline
from train.synth.generators import get_generator


@pytest.mark.integration
def test_local_smollm2_runs_the_pipeline_and_caches_answers(tmp_path):
    generator = get_generator("local", model="smollm2-135m", max_new_tokens=48, cache_dir=tmp_path / "cache")
    answer = generator.complete(
        [{"role": "user", "content": "Name one programming language."}], max_tokens=16
    )
    assert isinstance(answer, str) and answer.strip()
    assert (
        generator.complete([{"role": "user", "content": "Name one programming language."}], max_tokens=16)
        == answer
    )

    jds = load_seed_jds()[:2]
    manifest = run_pipeline(jds, out_dir=tmp_path / "run", generator=generator, progress=False)
    extraction = manifest["stages"]["extraction"]
    assert manifest["complete"] and manifest["generator"] == "local:smollm2-135m"
    assert extraction["generated"] == 2 and extraction["kept"] + sum(extraction["reasons"].values()) == 2
    # A 135M model rarely writes a valid grounded anchor in 48 tokens: whatever it wrote is judged, not crashed on.
    assert all(reason for reason in extraction["reasons"])
    cached = len(generator.cache)
    run_pipeline(jds, out_dir=tmp_path / "run", generator=generator, progress=False)
    assert len(generator.cache) == cached
