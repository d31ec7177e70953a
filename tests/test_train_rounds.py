"""R1, R2 and the BoundaryHead end to end on a tiny backbone and a small real synthesis run."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from tests.hub_server import HubServer
from tests.train_support import TINY_R1, TINY_R2, assert_jd_cv_vectors_equal, make_synth_run, run_python
from train import boundary, r1, r2
from train.boundary import build_pairs, split_pairs, titles_match
from train.checkpoint import ADAPTER_FILES, SUMMARY_FILE
from train.encoding import BatchEncoder, batch_fields

TEXTS = ["senior data engineer, spark and airflow", "nurse on the ward with patients"]
CHECKPOINT_FILES = {
    "config.json",
    "model.safetensors",
    "configuration_cre.py",
    "modeling_cre.py",
    "tokenizer.json",
    "modules.json",
    "sentence_bert_config.json",
    "README.md",
    SUMMARY_FILE,
}


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    return make_synth_run(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def r1_dir(synth_dir, tiny_backbone_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("r1")
    # A high learning rate so that two steps visibly move the tiny model.
    argv = ["--data", str(synth_dir), "--base", str(tiny_backbone_dir("encoder")), "--out", str(out)]
    options = ["--cnn", "--lr", "1e-2", "--warmup-ratio", "0", "--log-with", "tensorboard"]
    assert r1.main([*argv, *TINY_R1, *options]) == 0
    return out


@pytest.fixture(scope="module")
def r2_dir(synth_dir, r1_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("r2")
    argv = [
        "--data",
        str(synth_dir),
        "--base",
        str(r1_dir),
        "--out",
        str(out),
        "--cache-chunk",
        "3",
        "--lr",
        "1e-2",
    ]
    assert r2.main([*argv, *TINY_R2]) == 0
    return out


@pytest.fixture(scope="module")
def r2_half_dir(synth_dir, r1_dir, tmp_path_factory) -> Path:
    """Round 2 as ``r2_dir`` (same seed and options), keeping half of the weight update."""
    out = tmp_path_factory.mktemp("r2-half")
    argv = ["--data", str(synth_dir), "--base", str(r1_dir), "--out", str(out), "--cache-chunk", "3"]
    assert r2.main([*argv, "--lr", "1e-2", "--update-weight", "0.5", *TINY_R2]) == 0
    return out


def load(folder: Path):
    return AutoModel.from_pretrained(folder, trust_remote_code=True)


def test_r1_writes_a_complete_merged_checkpoint_that_moved(r1_dir, tiny_cre):
    names = {path.name for path in r1_dir.iterdir()}
    assert names >= CHECKPOINT_FILES
    assert not names & set(ADAPTER_FILES)
    model = load(r1_dir)
    assert model.cnn is not None and model.cnn.fusion.weight.abs().sum() > 0  # the CNN trained jointly
    base = tiny_cre("encoder", cnn={"enabled": True})
    assert not torch.allclose(
        torch.as_tensor(model.encode(TEXTS)), torch.as_tensor(base.encode(TEXTS)), atol=1e-4
    )
    summary = json.loads((r1_dir / SUMMARY_FILE).read_text())
    assert summary["round"] == "r1" and summary["training"]["steps"] == 5
    assert set(summary["metrics"]) == {
        "final_loss",
        "loss_card",
        "loss_semantic",
        "loss_profile",
        "loss_ranking",
    }


def test_profile_targets_are_the_frozen_models_embeddings_of_each_distinct_whole_jd(tiny_cre):
    teacher = tiny_cre("encoder").eval()
    examples = [
        {"query": "Nurse", "positive": TEXTS[1]},
        {"query": "Ward nurse", "positive": TEXTS[1]},
        {"query": "Data engineer", "positive": TEXTS[0]},
    ]
    targets = r1.embed_profiles(teacher, examples, batch_size=1)
    assert list(targets) == [TEXTS[1], TEXTS[0]]
    expected = torch.as_tensor(teacher.encode([TEXTS[1], TEXTS[0]], kind="jd"))
    cosines = torch.nn.functional.cosine_similarity(torch.stack(list(targets.values())), expected)
    assert torch.all(cosines > 0.9999)


def test_teacher_targets_are_computed_once_per_text_and_equal_embedding_each_batch(synth_dir, tiny_cre):
    teacher = tiny_cre("encoder").eval()
    recipe = r1.R1Recipe(card_steps=2, semantic_steps=2, profile_steps=2, ranking_steps=2, batch_size=4)
    schedule = r1.build_schedule(r1.load_r1_data(synth_dir), recipe, 1, 1, seed=0)
    encoder = BatchEncoder.for_model(teacher, max_length=48)
    targets = r1.embed_teacher_targets(teacher, encoder, schedule)
    batches = [batch for batch in schedule if batch.stage != "profile"]
    read = [ex[name] for batch in batches for ex in batch.examples for name in r1.stage_fields(batch.stage)]
    assert set(targets) == set(read) and len(targets) < len(read)  # texts recur across steps
    for batch in batches:
        fields = batch_fields(batch.examples, dict.fromkeys(r1.stage_fields(batch.stage), "jd"))
        with torch.no_grad():
            expected = encoder(teacher, fields)
        for name, (_, texts) in fields.items():
            cached = torch.stack([targets[text] for text in texts])
            torch.testing.assert_close(cached, expected[name], atol=1e-5, rtol=1e-4)


def test_profile_targets_with_rt_are_the_frozen_models_refined_embeddings(tiny_cre):
    teacher = tiny_cre("encoder").eval()
    examples = [{"query": "Nurse", "positive": TEXTS[1]}, {"query": "Data engineer", "positive": TEXTS[0]}]
    plain = r1.embed_profiles(teacher, examples)
    refined = r1.embed_profiles(teacher, examples, rt_iterations=1)
    expected = torch.as_tensor(teacher.encode([TEXTS[1], TEXTS[0]], kind="jd", rt_iterations=1))
    refined_rows = torch.stack(list(refined.values()))
    assert torch.all(torch.nn.functional.cosine_similarity(refined_rows, expected) > 0.9999)
    assert not torch.allclose(refined_rows, torch.stack(list(plain.values())), atol=1e-4)


def test_r1_logs_loss_learning_rate_and_throughput_per_step(r1_dir):
    assert list((r1_dir / "logs").rglob("events.out.tfevents.*"))  # TensorBoard, beside the CSV
    with (r1_dir / "logs" / "train_log.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [row["stage"] for row in rows] == ["card", "semantic", "profile", "ranking", "ranking"]
    assert float(rows[2]["structure"]) > 0 and float(rows[3]["structure"]) == 0
    assert all(float(row["pairs_per_s"]) > 0 and float(row["loss"]) >= 0 for row in rows)
    assert float(rows[-1]["role"]) >= 0 and float(rows[0]["role"]) == 0  # ranking parts only in ranking
    assert [float(row["lr"]) for row in rows] == sorted((float(row["lr"]) for row in rows), reverse=True)


def test_r2_update_weight_keeps_the_midpoint_between_base_and_trained_weights(r2_half_dir, r2_dir, r1_dir):
    base, full, half = (load(folder).state_dict() for folder in (r1_dir, r2_dir, r2_half_dir))
    moved = [
        name for name in full if full[name].is_floating_point() and not torch.equal(full[name], base[name])
    ]
    assert moved
    for name in moved:
        torch.testing.assert_close(half[name], (base[name] + full[name]) / 2, atol=1e-6, rtol=1e-5)


def test_r2_jd_anchor_adds_the_profile_loss_towards_the_base_jds(synth_dir, r1_dir, tmp_path):
    from accelerate import Accelerator

    from train.losses import JD_ANCHOR, multiple_negatives_ranking_loss, profile_loss

    torch.manual_seed(0)
    embeddings = {name: torch.randn(4, 8) for name in ("query", "positive", "negative")}
    anchors = torch.randn(4, 8)
    objective = r2.R2Objective(None, r2.R2Recipe(anchor_weight=0.5), base=torch.nn.Identity())
    plain = multiple_negatives_ranking_loss(
        embeddings["query"], embeddings["positive"], embeddings["negative"]
    )
    anchor = profile_loss(embeddings["query"], anchors, JD_ANCHOR)["loss"]
    assert anchor > 0
    torch.testing.assert_close(
        objective.loss(embeddings, Accelerator(cpu=True), {"query": anchors}), plain + 0.5 * anchor
    )
    # Openings are anchored as a field of their own, with the same weight.
    embeddings["opening"], opening_anchors = torch.randn(4, 8), torch.randn(4, 8)
    both = {"query": anchors, "opening": opening_anchors}
    opening = profile_loss(embeddings["opening"], opening_anchors, JD_ANCHOR)["loss"]
    torch.testing.assert_close(
        objective.loss(embeddings, Accelerator(cpu=True), both), plain + 0.5 * (anchor + opening)
    )
    torch.testing.assert_close(objective.loss(embeddings, Accelerator(cpu=True)), plain)
    with pytest.raises(ValueError, match="frozen base"):
        r2.R2Objective(None, r2.R2Recipe(anchor_weight=1.0))
    # End to end with the cached loss: the anchor's targets come from the frozen R1 copy.
    out = tmp_path / "r2-anchored"
    argv = ["--data", str(synth_dir), "--base", str(r1_dir), "--out", str(out), "--cache-chunk", "3"]
    anchored = ["--anchor-weight", "1", "--anchor-openings", "--update-weight", "0.5"]
    assert r2.main([*argv, *anchored, *TINY_R2]) == 0
    recipe = json.loads((out / SUMMARY_FILE).read_text())["recipe"]
    assert recipe["anchor_weight"] == 1 and recipe["anchor_openings"] is True


def test_r2_leaves_out_triplets_of_skipped_negative_types_and_rejects_unknown_ones(synth_dir):
    everything = r2.load_r2_data(synth_dir)
    types = {row["negative_type"] for row in everything}
    assert {"screening", "title_inflation"} <= types
    kept = r2.load_r2_data(synth_dir, ("title_inflation", "contractor_intern_confusion"))
    assert 0 < len(kept) < len(everything)
    assert [row for row in everything if row not in kept] == [
        row
        for row in everything
        if row["negative_type"] in ("title_inflation", "contractor_intern_confusion")
    ]
    assert r2.build_parser().parse_args(
        ["--data", "d", "--base", "b", "--out", "o", "--skip-negative-types", "title_inflation"]
    ).skip_negative_types == ("title_inflation",)
    with pytest.raises(SystemExit):
        r2.build_parser().parse_args(
            ["--data", "d", "--base", "b", "--out", "o", "--skip-negative-types", "typo"]
        )


def test_r2_from_r1_with_the_cached_loss(r2_dir, r1_dir):
    summary = json.loads((r2_dir / SUMMARY_FILE).read_text())
    assert summary["base_model"] == str(r1_dir) and summary["recipe"]["cache_chunk"] == 3
    before, after = load(r1_dir).encode(TEXTS, kind="cv"), load(r2_dir).encode(TEXTS, kind="cv")
    assert not torch.allclose(torch.as_tensor(before), torch.as_tensor(after), atol=1e-4)


def test_title_matching_rules():
    assert titles_match("Data Engineer", "data engineer")  # exact after normalising
    assert titles_match("Senior Data Engineer", "Data Engineer")  # contains
    assert titles_match("Backend Software Engineer Payments", "Software Engineer Payments Backend Team")
    assert not titles_match("Data Engineer", "Data Analyst")


def test_boundary_pairs_are_balanced_and_validated_on_held_out_jds(synth_dir):
    pairs, report = build_pairs(synth_dir)
    labels = [pair.label for pair in pairs]
    assert labels.count(0) == labels.count(1) == report["per_label"] > 0
    assert report["responsibility_threshold"] in (0.5, 0.2)
    train, validation, _ = split_pairs(pairs)
    assert {p.label for p in validation} == {0, 1}
    assert not {p.group for p in train} & {p.group for p in validation}


def test_r2_task_adapter_matches_the_merged_round_for_jd_cv_and_r1_for_jd_jd(
    synth_dir, r1_dir, r2_dir, tmp_path
):
    out = tmp_path / "r2-task"
    argv = ["--data", str(synth_dir), "--base", str(r1_dir), "--out", str(out), "--cache-chunk", "3"]
    assert r2.main([*argv, "--lr", "1e-2", "--task-adapter", "jd-cv", *TINY_R2]) == 0
    model = load(out)
    assert set(model.config.task_adapters) == {"jd-cv"} and model.config.default_task == "jd-cv"
    for kind in ("jd", "cv"):
        merged = load(r2_dir).encode(TEXTS, kind=kind)
        torch.testing.assert_close(model.encode(TEXTS, kind=kind, task="jd-cv"), merged, rtol=1e-4, atol=1e-5)
        r1_vectors = load(r1_dir).encode(TEXTS, kind=kind)
        torch.testing.assert_close(
            model.encode(TEXTS, kind=kind, task="jd-jd"), r1_vectors, rtol=1e-4, atol=1e-5
        )

    # The BoundaryHead trains on (and keeps) the jd-cv weights.
    full = tmp_path / "full"
    assert (
        boundary.main(
            [
                "--data",
                str(synth_dir),
                "--base",
                str(out),
                "--out",
                str(full),
                "--max-length",
                "48",
                "--max-epochs",
                "1",
            ]
        )
        == 0
    )
    final = load(full)
    assert final.has_boundary_head and set(final.config.task_adapters) == {"jd-cv"}
    for task in ("jd-jd", "jd-cv"):
        torch.testing.assert_close(final.encode(TEXTS, task=task), model.encode(TEXTS, task=task))
    with pytest.raises(SystemExit):
        r2.main([*argv, "--task-adapter", "jd-cv", "--lora-rank", "0", *TINY_R2])


def test_r2_grafted_onto_r1_encodes_jd_cv_like_the_round_from_the_backbone(
    synth_dir, r1_dir, tiny_backbone_dir, tmp_path
):
    backbone = str(tiny_backbone_dir("encoder"))
    options = ["--data", str(synth_dir), "--base", backbone, "--lr", "1e-2", "--task-adapter", "jd-cv"]
    assert r2.main([*options, "--out", str(tmp_path / "alone"), *TINY_R2]) == 0
    grafted_dir = tmp_path / "grafted"
    assert r2.main([*options, "--out", str(grafted_dir), "--graft-onto", str(r1_dir), *TINY_R2]) == 0

    grafted, alone, round1 = load(grafted_dir), load(tmp_path / "alone"), load(r1_dir)
    assert grafted.cnn is not None and set(grafted.config.task_adapters) == {"jd-cv"}
    assert_jd_cv_vectors_equal(grafted, alone, TEXTS)
    for kind in ("jd", "cv"):
        torch.testing.assert_close(
            grafted.encode(TEXTS, kind=kind, task="jd-jd"), round1.encode(TEXTS, kind=kind)
        )
    with pytest.raises(SystemExit):
        r2.main([*options[:4], "--out", str(tmp_path / "bad"), "--graft-onto", str(r1_dir), *TINY_R2])


def test_boundary_head_checkpoint_reranks_with_its_head(synth_dir, r2_dir, tmp_path):
    out = tmp_path / "full"
    argv = ["--data", str(synth_dir), "--base", str(r2_dir), "--out", str(out), "--max-length", "48"]
    assert boundary.main([*argv, "--max-epochs", "3"]) == 0
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert 1 <= summary["metrics"]["best_epoch"] <= 3 and len(summary["history"]) <= 3
    model = load(out)
    assert model.has_boundary_head and model.config.boundary["trained"]
    ranked = model.rerank(TEXTS[0], TEXTS)
    assert all(0.0 <= item["boundary"] <= 1.0 for item in ranked)
    # The encoder is frozen: the head was added, the embeddings are Round 2's.
    torch.testing.assert_close(model.encode(TEXTS), load(r2_dir).encode(TEXTS))


def test_push_to_hub_uploads_the_checkpoint_with_its_round_and_metrics(
    synth_dir, r1_dir, tmp_path, monkeypatch
):
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", hub.token)
        out = tmp_path / "r2"
        argv = ["--data", str(synth_dir), "--base", str(r1_dir), "--out", str(out), *TINY_R2]
        assert r2.main([*argv, "--push-to-hub", f"{hub.user}/cre-r2", "--private"]) == 0
        files = hub.files(f"{hub.user}/cre-r2")
        assert files["model.safetensors"] == (out / "model.safetensors").read_bytes()
        assert set(files) >= CHECKPOINT_FILES - {SUMMARY_FILE}
        assert (out / "logs").is_dir() and (out / "training_summary.json").exists()
        assert not [name for name in files if name.startswith(("logs/", "state/"))]
        assert SUMMARY_FILE not in files  # the run record names local paths
        repo = hub.repos[f"{hub.user}/cre-r2"]
        assert repo.private
        message = repo.commits[repo.branches["main"]].message
        assert message.startswith("CRE r2: final_loss=")


def test_failed_push_keeps_the_local_checkpoint(synth_dir, r1_dir, tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    out = tmp_path / "r2"
    argv = ["--data", str(synth_dir), "--base", str(r1_dir), "--out", str(out), *TINY_R2]
    monkeypatch.setattr("train.hub.time.sleep", lambda seconds: None)  # retries without waiting
    assert r2.main([*argv, "--push-to-hub", "cre-tester/cre-r2"]) == 1
    assert {path.name for path in out.iterdir()} >= CHECKPOINT_FILES
    load(out).encode(TEXTS)


def test_a_decoder_backbone_trains_through_both_rounds(synth_dir, tiny_backbone_dir, tiny_cre, tmp_path):
    data = ["--data", str(synth_dir), "--lr", "1e-2"]
    base = str(tiny_backbone_dir("decoder"))
    assert r1.main([*data, "--base", base, "--out", str(tmp_path / "r1"), *TINY_R1]) == 0
    assert (
        r2.main(
            [
                *data,
                "--base",
                str(tmp_path / "r1"),
                "--out",
                str(tmp_path / "r2"),
                *TINY_R2,
                "--cache-chunk",
                "3",
            ]
        )
        == 0
    )
    model = load(tmp_path / "r2")
    assert model.config.is_decoder_backbone and model.tokenizer.padding_side == "left"
    before = torch.as_tensor(tiny_cre("decoder").encode(TEXTS, kind="cv"))
    assert not torch.allclose(torch.as_tensor(model.encode(TEXTS, kind="cv")), before, atol=1e-4)


def test_bf16_mixed_precision_trains_and_saves_float32_weights(synth_dir, tiny_backbone_dir, tmp_path):
    out = tmp_path / "r1-bf16"
    argv = [
        "--data",
        str(synth_dir),
        "--base",
        str(tiny_backbone_dir("encoder")),
        "--out",
        str(out),
        *TINY_R1,
    ]
    # A process of its own: Accelerate fixes the precision once per process.
    run_python("-m", "train.r1", *argv, "--mixed-precision", "bf16")
    model = load(out)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert json.loads((out / SUMMARY_FILE).read_text())["loop"]["mixed_precision"] == "bf16"
