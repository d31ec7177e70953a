"""The tasks users run, trained beside the JD→CV triplets: recruiter questions and job titles.

Their data (the rules backend's questions, the shipped title pairs) and Round 2's pair-task steps, end to
end on a tiny backbone.
"""

from __future__ import annotations

import csv
import json
import random
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

from common.windows import cut_windows, default_stride, window_spans
from tests.train_support import TINY_R2, make_synth_run
from train import r2, title_holdout
from train.checkpoint import SUMMARY_FILE
from train.data import TrainingDataError
from train.loop import LoopSettings, cycle_grouped_batches
from train.lora import LoraSettings
from train.pipeline import RECIPES
from train.question_windows import answered_by, question_windows, window_keys
from train.synth.loaders import (
    DERIVED_DATA_DIR,
    load_esco_jds,
    load_onet_jds,
    read_esco,
    read_tsv,
    training_data_dir,
)
from train.synth.rules import _COMPANY, _SCHOOL, recruiter_queries
from train.synth.titles import title_pairs
from train.title_holdout import split_occupations

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    folder = make_synth_run(tmp_path_factory.mktemp("synth"))
    pairs = title_pairs(per_occupation=1, seed=0)
    rows = random.Random(0).sample(pairs, 40)
    (folder / "titles.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


# ---- the shipped training-only data ----------------------------------------------------------------------


def test_shipped_data_holds_only_train_split_occupations_and_no_evaluation_labels():
    onet = DERIVED_DATA_DIR / "onet"
    splits = read_tsv(onet / "splits.tsv")  # read from its shipped .gz
    train = {row["onet_soc_code"] for row in splits}
    assert {row["split"] for row in splits} == {"train"} and len(train) > 500
    for path in onet.glob("*.tsv.gz"):
        codes = {row.get("O*NET-SOC Code") or row["onet_soc_code"] for row in read_tsv(path.with_suffix(""))}
        assert codes <= train, path.name
    assert not list(DERIVED_DATA_DIR.rglob("related_occupations*"))  # the JD–JD benchmark's labels
    esco = read_esco(DERIVED_DATA_DIR)
    assert len(esco) > 2900 and "iscoGroup" not in esco[0]  # the ESCO benchmark's labels
    if (SHARED / "onet" / "splits.tsv").is_file():  # and the split is the data README's
        held_out = {
            row["onet_soc_code"]
            for row in read_tsv(SHARED / "onet" / "splits.tsv")
            if row["split"] != "train"
        }
        assert held_out and not held_out & train


@pytest.mark.skipif(not (SHARED / "onet").is_dir(), reason="needs ../shared/data")
def test_the_script_rewrites_the_shipped_data_byte_for_byte(tmp_path):
    from scripts.derive_training_data import derive

    counts = derive(SHARED, tmp_path)
    for name in counts:
        assert (tmp_path / name).read_bytes() == (DERIVED_DATA_DIR / name).read_bytes(), name


def test_the_script_names_a_missing_folder_or_file_in_one_line(tmp_path, capsys):
    from scripts.derive_training_data import main

    assert main(["--data-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 2
    assert "development data folder not found" in capsys.readouterr().err
    (tmp_path / "onet").mkdir()
    assert main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "missing O*NET file:" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_training_reads_the_shipped_copy_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("CRE_DATA_DIR", raising=False)
    assert training_data_dir() == DERIVED_DATA_DIR
    assert training_data_dir(tmp_path) == tmp_path
    jds = load_onet_jds()
    assert jds and all(jd.id.startswith("onet:") and jd.text for jd in jds)


# ---- title pairs -----------------------------------------------------------------------------------------


def test_title_pairs_pair_each_variant_with_its_own_occupation():
    pairs = title_pairs(per_occupation=3, seed=1)
    per_source = Counter(pair["source_id"] for pair in pairs)
    assert max(per_source.values()) == 3 and len(per_source) > 3000
    names = {jd.id: jd.title for jd in load_onet_jds(stack_variants=False) + load_esco_jds()}
    for pair in pairs:
        assert pair["split"] == "train" and pair["query"].strip()
        assert pair["positive"] == names[pair["source_id"]]  # title↔title: its own occupation's name
        assert pair["query"].casefold() != pair["positive"].casefold()  # never the name itself
    assert title_pairs(per_occupation=3, seed=1) == pairs


def test_vacancy_share_dresses_that_share_of_the_same_variants_as_a_job_board_would():
    plain = title_pairs(per_occupation=2, seed=1)
    dressed = title_pairs(per_occupation=2, seed=1, vacancy_share=1.0)
    assert [pair["id"] for pair in dressed] == [pair["id"] for pair in plain]
    for before, after in zip(plain, dressed, strict=True):
        assert before["query"] in after["query"] and after["query"] != before["query"]
        assert after["positive"] == before["positive"]
    half = title_pairs(per_occupation=2, seed=1, vacancy_share=0.5)
    share = sum(a["query"] != b["query"] for a, b in zip(plain, half, strict=True)) / len(plain)
    assert 0.45 < share < 0.55
    with pytest.raises(ValueError, match="vacancy_share"):
        title_pairs(vacancy_share=1.5)


# ---- recruiter questions ---------------------------------------------------------------------------------


def test_each_question_names_something_of_its_own_passage(synth_dir):
    rows = [json.loads(line) for line in (synth_dir / "jdcv.jsonl").read_text().splitlines()]
    rng, kinds = random.Random(0), Counter()
    for row in rows[:60]:
        questions = recruiter_queries(row["positive"], row["title"], 3, rng)
        assert len({item["chunk"] for item in questions}) == len(questions)  # one question per passage
        for item in questions:
            query, chunk = item["query"], item["chunk"]
            assert chunk in row["positive"]
            names = _COMPANY.findall(chunk) + _SCHOOL.findall(chunk)
            named = [name for name in names if name in query]
            items = {item.strip() for item in re.split(r"[,•·\n]", chunk) if len(item.strip()) > 1}
            skills = [item for item in items if item in query]
            assert named or len(skills) >= 2, "a question must name its passage's employer, school or skills"
            kinds[
                "employer" if _COMPANY.search(query) else "school" if _SCHOOL.search(query) else "skills"
            ] += 1
    assert min(kinds.values()) > 5 and len(kinds) == 3


# ---- Round 2's pair tasks --------------------------------------------------------------------------------


def test_grouped_batches_keep_one_cvs_questions_together_and_one_variant_per_occupation():
    rows = [{"source_id": f"s{group}", "n": n} for group in range(6) for n in range(3)]
    together = cycle_grouped_batches(rows, 3, 6, seed=0, per_group=None)
    assert all(len({row["source_id"] for row in batch}) == 2 for batch in together)
    one_each = cycle_grouped_batches(rows, 1, 6, seed=0, per_group=1)[0]
    assert len({row["source_id"] for row in one_each}) == 6


def test_neighbour_batches_fill_each_batch_with_groups_the_vectors_call_alike():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 16)
    vectors = {}
    for cluster in range(4):
        for member in range(8):
            vector = centres[cluster] + 0.05 * rng.standard_normal(16)
            vectors[f"c{cluster}m{member}"] = vector / np.linalg.norm(vector)
    rows = [{"source_id": name, "n": n} for name in vectors for n in range(2)]
    batches = cycle_grouped_batches(rows, 8, 8, seed=1, per_group=1, neighbours=vectors)
    assert [len({row["source_id"][:2] for row in batch}) for batch in batches] == [1] * 8
    assert all(len({row["source_id"] for row in batch}) == 8 for batch in batches)  # one variant each
    random_batches = cycle_grouped_batches(rows, 8, 8, seed=1, per_group=1)
    assert max(len({row["source_id"][:2] for row in batch}) for batch in random_batches) > 1
    with pytest.raises(ValueError, match="no neighbour vector for 1 group"):
        cycle_grouped_batches(rows, 1, 8, seed=1, per_group=1, neighbours=dict(list(vectors.items())[1:]))


def test_round2_fills_title_batches_with_neighbours_only_when_it_trains_titles(
    synth_dir, tiny_backbone_dir, tmp_path, capsys
):
    base = tiny_backbone_dir("encoder")
    argv = ["--data", str(synth_dir), "--base", str(base), "--out", str(tmp_path / "r2")]  # fmt: skip
    options = ["--steps", "0", "--title-steps", "2", "--pair-batch-size", "4", "--title-neighbours"]
    assert r2.main([*argv, *TINY_R2, *options]) == 0
    assert json.loads((tmp_path / "r2" / SUMMARY_FILE).read_text())["recipe"]["title_neighbours"] is True
    with pytest.raises(SystemExit):
        r2.main([*argv, *TINY_R2, "--title-neighbours"])
    assert "--title-neighbours changes the title steps: it needs --title-steps > 0" in capsys.readouterr().err


def test_round2_interleaves_question_and_title_steps_and_trains_on_them(
    synth_dir, tiny_backbone_dir, tiny_cre, tmp_path
):
    base = tiny_backbone_dir("encoder")
    argv = ["--data", str(synth_dir), "--base", str(base), "--out", str(tmp_path / "r2")]  # fmt: skip
    tasks = ["--question-steps", "2", "--title-steps", "1", "--pair-batch-size", "4", "--lr", "1e-2"]
    assert r2.main([*argv, *TINY_R2, *tasks]) == 0
    with (tmp_path / "r2" / "logs" / "train_log.csv").open() as stream:
        stages = [row["stage"] for row in csv.DictReader(stream)]
    assert Counter(stages) == {"jdcv": 2, "questions": 2, "titles": 1}
    assert stages[0] != stages[1]  # spread out, not one task after another
    summary = json.loads((tmp_path / "r2" / SUMMARY_FILE).read_text())
    assert summary["examples"]["titles"] == 40 and summary["examples"]["questions"] > 0
    assert set(summary["metrics"]) >= {"loss_jdcv", "loss_questions", "loss_titles"}
    trained = AutoModel.from_pretrained(tmp_path / "r2", trust_remote_code=True)
    texts = ["Which tools did the analyst use at Northwind Labs?", "payroll clerk"]
    assert not torch.allclose(
        torch.as_tensor(trained.encode(texts)), torch.as_tensor(tiny_cre("encoder").encode(texts)), atol=1e-4
    )


def test_a_title_only_round_is_the_title_tasks_adapter_and_leaves_the_other_tasks_alone(
    synth_dir, tiny_backbone_dir, tiny_cre, tmp_path
):
    base = tiny_backbone_dir("encoder")
    argv = ["--data", str(synth_dir), "--base", str(base), "--out", str(tmp_path / "r2")]  # fmt: skip
    options = ["--steps", "0", "--title-steps", "2", "--pair-batch-size", "4", "--lr", "1e-2"]
    assert r2.main([*argv, *TINY_R2, *options, "--task-adapter", "title"]) == 0
    with (tmp_path / "r2" / "logs" / "train_log.csv").open() as stream:
        assert [row["stage"] for row in csv.DictReader(stream)] == ["titles", "titles"]
    summary = json.loads((tmp_path / "r2" / SUMMARY_FILE).read_text())
    assert set(summary["examples"]) == {"titles"}  # no JD–CV triplet was read
    trained = AutoModel.from_pretrained(tmp_path / "r2", trust_remote_code=True)
    titles = ["Sr. Java Dev", "payroll clerk"]
    before = torch.as_tensor(tiny_cre("encoder").encode(titles, kind="jd"))
    for task in ("jd-jd", "jd-cv"):
        assert torch.allclose(
            torch.as_tensor(trained.encode(titles, kind="jd", task=task)), before, atol=1e-5
        )
    assert not torch.allclose(
        torch.as_tensor(trained.encode(titles, kind="jd", task="title")), before, atol=1e-4
    )


def test_a_round_without_jd_cv_steps_needs_a_pair_task():
    with pytest.raises(ValueError, match="steps 0 leaves no JD–CV steps"):
        r2.R2Recipe(steps=0)
    with pytest.raises(ValueError, match="steps must be ≥ 0"):
        r2.R2Recipe(steps=-1, title_steps=1)


def test_a_pair_task_without_data_fails_before_training(synth_dir, tiny_backbone_dir, tmp_path):
    data = tmp_path / "synth"
    shutil.copytree(synth_dir, data)
    (data / "titles.jsonl").write_text("")
    with pytest.raises(TrainingDataError, match=r"titles\.jsonl: holds no records"):
        r2.train_r2(
            str(tiny_backbone_dir("encoder")),
            data,
            LoopSettings(output_dir=str(tmp_path / "r2")),
            r2.R2Recipe(steps=1, title_steps=1),
            LoraSettings(),
        )


# ---- recruiter questions trained on the windows search reads ---------------------------------------------


def _overlap(span: tuple[int, int], other: tuple[int, int]) -> int:
    return min(span[1], other[1]) - max(span[0], other[0])


def test_each_question_trains_on_the_window_search_cuts_that_holds_most_of_its_passage(synth_dir, tiny_cre):
    records = r2.load_pair_data(synth_dir, "questions", ["cv"])
    tokenizer, size = tiny_cre("encoder").tokenizer, 24
    windowed = question_windows(records, tokenizer, size, seed=0)
    long_cvs = 0
    for record, item in zip(records, windowed, strict=True):
        cv, block = record["cv"], record["positive"]
        offsets = tokenizer(cv, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        offsets = [tuple(span) for span in offsets]
        assert item["positive"] in cut_windows(cv, offsets, size, default_stride(size))  # as search cuts
        answer, window = (
            (item["answer_start"], item["answer_end"]),
            (item["window_start"], item["window_end"]),
        )
        assert cv[slice(*answer)] == block and cv[slice(*window)] == item["positive"]
        spans = window_spans(offsets, size, default_stride(size), len(cv))
        assert _overlap(answer, window) == max(_overlap(answer, span) for span in spans) > 0
        long_cvs += len(spans) > 1
    assert long_cvs > len(records) // 2  # the check above compared real choices
    whole = question_windows(records, tokenizer, 10_000, seed=0)
    assert [item["positive"] for item in whole] == [record["cv"] for record in records]


def test_a_window_of_the_same_cv_that_holds_a_questions_passage_is_no_negative_of_it(synth_dir, tiny_cre):
    records = r2.load_pair_data(synth_dir, "questions", ["cv"])
    windowed = question_windows(records, tiny_cre("encoder").tokenizer, 24, seed=0)
    keys = window_keys(windowed)
    excluded = answered_by(keys, keys)
    assert excluded.diagonal().all()
    holds = [
        [item["cv"] == other["cv"] and item["positive"] in other["positive"] for other in windowed]
        for item in windowed
    ]
    assert excluded[torch.tensor(holds)].all()  # a window holding the whole passage answers it
    assert excluded.sum() > len(windowed)  # overlapping windows of one CV exist in this data
    different_cv = keys[:, None, 0] != keys[None, :, 0]
    assert not excluded[different_cv].any()


def test_round2_trains_questions_in_windows_and_names_a_passage_missing_from_its_cv(
    synth_dir, tiny_backbone_dir, tmp_path, capsys
):
    base = tiny_backbone_dir("encoder")
    argv = ["--data", str(synth_dir), "--base", str(base), "--out", str(tmp_path / "r2")]  # fmt: skip
    tasks = ["--question-steps", "2", "--pair-batch-size", "4", "--question-windows"]
    assert r2.main([*argv, *TINY_R2, *tasks]) == 0
    summary = json.loads((tmp_path / "r2" / SUMMARY_FILE).read_text())
    assert summary["recipe"]["question_windows"] is True and "loss_questions" in summary["metrics"]
    data = tmp_path / "synth"
    shutil.copytree(synth_dir, data)
    lines = (data / "cv_queries.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    row["positive"] = "A passage written elsewhere."
    lines[2] = json.dumps(row)
    (data / "cv_queries.jsonl").write_text("\n".join(lines) + "\n")
    argv[1], argv[5] = str(data), str(tmp_path / "again")
    assert r2.main([*argv, *TINY_R2, *tasks]) == 2
    assert "cv_queries.jsonl:3: field 'positive' is not a passage of field 'cv'" in capsys.readouterr().err
    for bad, message in (
        (["--question-steps", "0"], "needs --question-steps > 0"),
        (["--symmetric"], "--symmetric"),
    ):
        with pytest.raises(SystemExit):
            r2.main([*argv, *TINY_R2, *tasks, *bad])
        assert message in capsys.readouterr().err


# ---- title round options chosen on held-out occupations ---------------------------------------------------


def test_held_out_occupations_keep_all_their_variants_and_leave_the_training_pairs():
    pairs = title_pairs(per_occupation=2, seed=0)
    kept, held = split_occupations(pairs, 0.1, seed=3)
    held_ids, kept_ids = {p["source_id"] for p in held}, {p["source_id"] for p in kept}
    assert not held_ids & kept_ids and len(kept) + len(held) == len(pairs)
    assert abs(len(held_ids) / len(held_ids | kept_ids) - 0.1) < 0.01
    assert split_occupations(pairs, 0.1, seed=3) == (kept, held)  # seeded
    assert split_occupations(pairs, 0.1, seed=4)[1] != held
    for fraction in (0, 1, 1e-9):
        with pytest.raises(ValueError, match="fraction|no occupation"):
            split_occupations(pairs, fraction, seed=0)


def test_title_holdout_scores_each_candidate_on_occupations_it_never_trained_on(
    tiny_backbone_dir, tmp_path, capsys
):
    base, out = tiny_backbone_dir("encoder"), tmp_path / "holdout"
    first = "--title-steps 1 --pair-batch-size 8 --lr 1e-2 --warmup-ratio 0"  # one step, at full lr
    second = "--title-steps 2 --pair-batch-size 8"
    argv = ["--base", str(base), "--out", str(out), "--per-occupation", "1", "--fraction", "0.05"]
    assert title_holdout.main([*argv, f"--candidate={first}", f"--candidate={second}"]) == 0
    report = json.loads((out / "title_holdout.json").read_text())
    rows = {label: entry["title-holdout"]["metrics"] for label, entry in report["models"].items()}
    assert set(rows) == {title_holdout.BASE_ROW, first, second}
    assert all(0 < metrics["mrr@100"] <= 1 for metrics in rows.values())
    assert rows[first] != rows[title_holdout.BASE_ROW]  # the adapter moved the title vectors
    trained = [json.loads(line) for line in (out / "pairs" / "titles.jsonl").read_text().splitlines()]
    queries = report["benchmarks"]["title-holdout"]["queries"]
    recipe_pairs = title_pairs(per_occupation=1, seed=0, vacancy_share=RECIPES["minilm"].vacancy_titles)
    assert len(trained) + queries == len(recipe_pairs)
    dressed = {pair["id"]: pair["query"] for pair in recipe_pairs}
    assert all(pair["query"] == dressed[pair["id"]] for pair in trained)  # the recipe's vacancy titles too
    compared = {(c["model"], c["metric"]) for c in report["comparisons"]}
    assert (first, "mrr@100") in compared and (second, "mrr@100") in compared
    summary = json.loads((Path(report["settings"]["candidates"][first]) / SUMMARY_FILE).read_text())
    assert summary["recipe"]["title_steps"] == 1 and summary["recipe"]["task_adapter"] == "title"

    # A rerun reuses the finished candidates; a new candidate alone trains.
    weights = Path(report["settings"]["candidates"][first]) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    capsys.readouterr()
    assert title_holdout.main([*argv, f"--candidate={first}", "--candidate=--title-steps 3"]) == 0
    assert "reused" in capsys.readouterr().out and weights.stat().st_mtime_ns == stamp


def test_title_holdout_names_a_missing_base_or_data_folder_without_a_traceback(tmp_path, capsys):
    out = ["--out", str(tmp_path / "holdout"), "--candidate="]
    assert title_holdout.main(["--base", str(tmp_path / "no-model"), *out]) == 2
    assert "no checkpoint or backbone at" in capsys.readouterr().err
    assert title_holdout.main(["--base", "minilm", *out, "--data-dir", str(tmp_path / "no-data")]) == 2
    assert f"data folder not found: {tmp_path / 'no-data'}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        title_holdout.main(["--base", "minilm", *out, "--fraction", "1"])
    assert "invalid held_out_fraction value: '1'" in capsys.readouterr().err
