"""The main job on a tiny backbone: every step runs, the final checkpoint is complete, a rerun reuses it."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModel

from cre.configuration_cre import TASKS
from tests.train_support import SEED_JDS, TINY_R1, TINY_R2, run_python
from train.pipeline import RECIPES
from train.synth.titles import title_pairs

# The default recipe's steps, in order.
STEPS = ["synth", "r1", "r2", "r2-title", "boundary", "lambda", "evaluate"]


@pytest.mark.slow
def test_pipeline_runs_every_step_then_reuses_them(tiny_backbone_dir, tmp_path):
    out = tmp_path / "job"
    command = [
        "-m", "train.pipeline", "--backbone", str(tiny_backbone_dir("encoder")), "--out", str(out),
        "--seed-jds", str(SEED_JDS), "--jds", "default", "--max-length", "48",
        "--r1-args", " ".join(TINY_R1),
        "--r2-args", " ".join([*TINY_R2, "--question-steps", "1", "--pair-batch-size", "4"]),
        "--title-args", "--title-steps 2 --pair-batch-size 4",
    ]  # fmt: skip
    first = run_python(*command)
    for number, step in enumerate(STEPS, start=1):
        assert f"[{number}/7] {step}: finished" in first.stdout
    # Synthesis wrote the title pairs with the recipe's share of vacancy-style variants.
    titles = [json.loads(line) for line in (out / "synth" / "titles.jsonl").read_text().splitlines()]
    assert RECIPES["minilm"].vacancy_titles > 0
    assert titles == title_pairs(seed=0, vacancy_share=RECIPES["minilm"].vacancy_titles)

    final = AutoModel.from_pretrained(out / "final", trust_remote_code=True)
    assert final.has_boundary_head  # trained, but off: the default recipe's λ is 0
    assert final.config.boundary["weight"] == 0.0
    assert final.config.feedback["top_k"] == 0  # nor candidate feedback
    assert not final.config.cnn["enabled"]  # and trains no CNN projection
    # JD–JD search encodes with Round 1's weights, JD→CV and questions with Round 2's adapter, job titles
    # with the title round's.
    rounds = {name: AutoModel.from_pretrained(out / name, trust_remote_code=True) for name in ("r1", "r2")}
    rounds["r2-title"] = AutoModel.from_pretrained(out / "r2-title", trust_remote_code=True)
    assert set(final.config.task_adapters) == {"jd-cv", "title"} and not rounds["r1"].config.task_adapters
    texts = ["Senior data engineer, Spark", "Which projects used Kafka?"]
    for kind in ("jd", "query"):
        vectors = {task: final.encode(texts, kind=kind, task=task, convert_to="torch") for task in TASKS}
        torch.testing.assert_close(
            vectors["jd-jd"], rounds["r1"].encode(texts, kind=kind, convert_to="torch")
        )
        for task, name in {"jd-cv": "r2", "title": "r2-title"}.items():
            expected = rounds[name].encode(texts, kind=kind, task=task, convert_to="torch")
            torch.testing.assert_close(vectors[task], expected)
        assert not torch.equal(vectors["jd-jd"], vectors["jd-cv"])
        assert not torch.equal(vectors["jd-jd"], vectors["title"])
    r2_summary = json.loads((out / "r2" / "training_summary.json").read_text())
    assert set(r2_summary["examples"]) == {"jdcv", "questions"}  # the question task, from the recipe
    title_summary = json.loads((out / "r2-title" / "training_summary.json").read_text())
    assert set(title_summary["examples"]) == {"titles"} and title_summary["training"]["steps"] == 2
    results = json.loads((out / "eval" / "results.json").read_text())
    assert {"baseline", "r1", "r2", "r2-title", "full"} <= {name.split(" ")[0] for name in results["models"]}
    assert set(results["benchmarks"]) == {"synth-jd-jd", "synth-jd-cv", "synth-boundary"}
    for round_dir in ("r1", "r2", "r2-title"):  # finished rounds keep no training state
        assert not (out / round_dir / "state").exists()
    assert "model-index" in (out / "final" / "README.md").read_text()

    again = run_python(*command)
    assert again.stdout.count("reused") == 7
    assert json.loads((out / "pipeline_summary.json").read_text())["seconds"] == dict.fromkeys(STEPS, 0.0)

    searched = run_python(*command, "--lambda-grid", "0", "0.3", "1")  # λ chosen on the tune half instead
    assert "[6/7] lambda: settings changed" in searched.stdout and searched.stdout.count("reused") == 5
    search = json.loads((out / "steps" / "lambda.json").read_text())["result"]
    final = AutoModel.from_pretrained(out / "final", trust_remote_code=True)
    assert final.config.boundary["weight"] == search["best_lambda"]
    assert {row["lambda"] for row in search["recall_guard"]["grid"]} == {0.0, 0.3, 1.0}
    assert {row["lambda"] for row in search["grid"]} == set(search["recall_guard"]["qualified"])


def write_onet(folder):
    """A two-occupation O*NET folder in the published column layout (one train, one dev)."""
    onet = folder / "onet"
    onet.mkdir(parents=True)
    tables = {
        "splits.tsv": [["onet_soc_code", "split"], ["15-1252.00", "train"], ["29-1141.00", "dev"]],
        "occupation_data.tsv": [
            ["O*NET-SOC Code", "Title", "Description"],
            ["15-1252.00", "Software Developers", "Research, design, and develop computer software."],
            ["29-1141.00", "Registered Nurses", "Assess patient health problems and needs."],
        ],
        "task_statements.tsv": [
            ["O*NET-SOC Code", "Title", "Task ID", "Task", "Task Type"],
            ["15-1252.00", "Software Developers", "1", "Modify existing software to correct errors.", "Core"],
            ["29-1141.00", "Registered Nurses", "2", "Record patients' medical information.", "Core"],
        ],
        "technology_skills.tsv": [
            ["O*NET-SOC Code", "Title", "Example", "Hot Technology"],
            ["15-1252.00", "Software Developers", "Python", "Y"],
            ["29-1141.00", "Registered Nurses", "Epic Systems", "Y"],
        ],
        "alternate_titles.tsv": [
            ["O*NET-SOC Code", "Title", "Alternate Title", "Short Title", "Source(s)"],
            ["15-1252.00", "Software Developers", "Java Architect", "", "08"],
            ["15-1252.00", "Software Developers", "Java Developer", "", "08"],
            ["15-1252.00", "Software Developers", "Python Developer (Py Dev)", "", "08"],
            ["15-1252.00", "Software Developers", "JavaScript Engineer", "", "08"],
            ["15-1252.00", "Software Developers", "Application Developer", "", "08"],
            ["29-1141.00", "Registered Nurses", "Java Nurse", "", "08"],
        ],
    }
    for name, rows in tables.items():
        (onet / name).write_text("\n".join("\t".join(row) for row in rows) + "\n", encoding="utf-8")


def write_esco(folder):
    """One ESCO occupation in the published CSV layout (its ISCO group is never read for training)."""
    (folder / "esco").mkdir(parents=True)
    (folder / "esco" / "occupations_en.csv").write_text(
        "conceptUri,iscoGroup,preferredLabel,altLabels,description\n"
        'http://data.europa.eu/esco/occupation/abc,2512,software developer,"coder\nprogrammer",'
        "Software developers implement software systems.\n",
        encoding="utf-8",
    )


ONET_SEEDS = {
    "onet:15-1252.00",
    "onet:15-1252.00~java",
    "onet:15-1252.00~javascript",
    "onet:15-1252.00~python",
}


@pytest.mark.parametrize(("jds", "profile_only"), [("onet", set()), ("onet+esco", {"esco:abc"})])
def test_occupation_seeds_join_the_embedded_ones_and_only_train_split_onet(jds, profile_only, tmp_path):
    from train.pipeline import Pipeline, build_parser

    write_onet(tmp_path / "data")
    write_esco(tmp_path / "data")
    argv = [
        "--out",
        str(tmp_path / "job"),
        "--seed-jds",
        "2",
        "--jds",
        jds,
        "--data-dir",
        str(tmp_path / "data"),
    ]
    result = Pipeline(build_parser().parse_args([*argv, "--recipe", "minilm-onet"])).synth()
    synth = tmp_path / "job" / "synth"

    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (synth / name).read_text().splitlines()]

    sources = {row["source_id"] for row in rows("anchors.jsonl")}
    assert sources - {"seed-0001", "seed-0002"} == ONET_SEEDS  # the dev occupation never
    titles = {row["title"] for row in rows("anchors.jsonl") if "~" in row["source_id"]}
    assert titles == {"Java Developer", "Python Developer", "JavaScript Engineer"}
    assert sum(result["splits"].values()) == 2 + len(ONET_SEEDS)
    assert {row["source_id"] for row in rows("profiles.jsonl")} == sources | profile_only
    # ESCO anchors the profile stage only: no generated sample comes from it.
    for name in ("pairs.jsonl", "ranking.jsonl", "jdcv.jsonl", "role_negatives.jsonl"):
        assert not any(row["source_id"].startswith("esco:") for row in rows(name))
    triplets = rows("jdcv.jsonl")
    fitting = {}  # each JD's first fitting CV
    for row in triplets:
        fitting.setdefault(row["source_id"], row["positive"])
    siblings = [row for row in triplets if row["negative_type"] == "sibling_stack"]
    assert len(siblings) == 6  # every ordered pair of the three stacks
    for row in siblings:
        other = row["provenance"]["negative_from"]
        assert other != row["source_id"] and other.startswith("onet:15-1252.00~")
        assert row["negative"] == fitting[other]
    assert len({row["split"] for row in triplets if "~" in row["source_id"]}) == 1  # siblings share a split


def test_domain_preset_grafts_round_2_from_the_backbone_and_turns_feedback_on(tmp_path):
    from train.pipeline import Pipeline, build_parser

    pipeline = Pipeline(build_parser().parse_args(["--out", str(tmp_path), "--recipe", "minilm-onet"]))
    r2_args = pipeline.round_args("r2")
    assert r2_args[r2_args.index("--base") + 1] == "minilm"
    assert r2_args[r2_args.index("--graft-onto") + 1] == str(tmp_path / "r1")
    assert "--task-adapter" in r2_args
    assert pipeline.feedback == {"top_k": 3, "weight": 1.0}
    default = Pipeline(build_parser().parse_args(["--out", str(tmp_path)]))
    assert "--cnn" not in default.round_args("r1")
    default_r2 = default.round_args("r2")  # the default's Round 2: questions too, kept as the jd-cv adapter,
    assert default_r2[default_r2.index("--base") + 1] == "minilm"  # learnt from the backbone
    assert default_r2[default_r2.index("--graft-onto") + 1] == str(tmp_path / "r1")  # and grafted onto R1
    assert default_r2[default_r2.index("--task-adapter") + 1] == "jd-cv"
    assert int(default_r2[default_r2.index("--question-steps") + 1]) > 0
    title_args = default.round_args("r2-title")  # from the JD–JD weights (r1/), onto r2/, titles alone
    assert title_args[title_args.index("--base") + 1] == str(tmp_path / "r1")
    assert title_args[title_args.index("--graft-onto") + 1] == str(tmp_path / "r2")
    assert title_args[title_args.index("--task-adapter") + 1] == "title"
    assert title_args[title_args.index("--steps") + 1] == "0"
    assert int(title_args[title_args.index("--title-steps") + 1]) > 0
    assert float(title_args[title_args.index("--lr") + 1]) == default.recipe.title_lr  # its own learning rate
    assert float(default_r2[default_r2.index("--lr") + 1]) == default.recipe.r2_lr  # each round its own
    assert "r2-title" not in pipeline.rounds
    assert "--cnn" in pipeline.round_args("r1")  # the preset keeps its CNN projection


# The recipes as argv strings before they became typed (commit e59fc89): the typed ones must reproduce them.
ARGV_RECIPES = {
    "minilm": {
        "r1": "--card-steps 10 --semantic-steps 20 --profile-steps 0 --ranking-steps 30 --batch-size 16 "
        "--max-length 128 --weight-distill 0.5",
        # Round 2 has trained recruiter questions as the jd-cv adapter since session 21, mostly them since 22,
        # at 1.5e-4 since 23, 75 question steps since 24, learnt from the backbone and grafted onto R1 since 25,
        # at 256 tokens since 27.
        "r2": "--steps 15 --batch-size 16 --max-length 256 --question-steps 75 --pair-batch-size 32 "
        "--task-adapter jd-cv --lr 1.5e-4",
    },
    "minilm-onet": {
        "r1": "--card-steps 10 --semantic-steps 20 --profile-steps 250 --ranking-steps 30 --batch-size 16 "
        "--profile-batch-size 32 --profile-teacher-rt 1 --max-length 128 --weight-distill 0.5 --lr 3e-4",
        "r2": "--steps 75 --batch-size 32 --max-length 128 --lr 2e-4 --task-adapter jd-cv --anchor-weight 1 "
        "--anchor-openings --symmetric --skip-negative-types title_inflation,contractor_intern_confusion",
    },
    "smollm2-135m": {
        "r1": "--card-steps 5 --semantic-steps 10 --profile-steps 0 --ranking-steps 15 --batch-size 8 "
        "--max-length 128 --weight-distill 0.5",
        "r2": "--steps 15 --batch-size 8 --max-length 160",
    },
}


def argv_step_settings(out, name: str, recipe: str) -> dict:
    """A round step's settings as the pre-typed pipeline wrote them."""
    grafts = name == "r2" and recipe in ("minilm", "minilm-onet")  # Round 2 from the backbone, onto r1/
    base = "minilm" if name == "r1" or grafts else str(out / "r1")
    argv = ["--data", str(out / "synth"), "--base", base, "--out", str(out / name)]
    # The minilm recipe trains no CNN projection now: its old record is the one `--no-cnn` wrote.
    argv += ["--seed", "0", "--save-every", "20"] + (["--cnn"] if name == "r1" and recipe != "minilm" else [])
    if grafts:
        argv += ["--graft-onto", str(out / "r1")]
    return {"backbone": "minilm", "args": argv + ARGV_RECIPES[recipe][name].split(), "processes": 1}


@pytest.mark.parametrize("recipe", sorted(ARGV_RECIPES))
def test_typed_recipes_give_the_rounds_the_options_of_the_argv_recipes(recipe, tmp_path):
    from train.pipeline import Pipeline, build_parser

    pipeline = Pipeline(build_parser().parse_args(["--out", str(tmp_path), "--recipe", recipe]))
    for name in ("r1", "r2"):
        current = {"backbone": "minilm", **pipeline.round_settings(name)}
        assert pipeline.upgrade_settings(name, argv_step_settings(tmp_path, name, recipe)) == current
    # Any option that differs gives another key.
    pipeline.args.r2_args = "--temperature 0.07"
    assert pipeline.round_settings("r2") != {k: v for k, v in current.items() if k != "backbone"}


def test_a_round_finished_under_the_argv_cache_key_is_reused(tmp_path):
    from train.pipeline import Pipeline, build_parser

    pipeline = Pipeline(build_parser().parse_args(["--out", str(tmp_path)]))
    marker = tmp_path / "steps" / "r1.json"
    marker.parent.mkdir()
    old = argv_step_settings(tmp_path, "r1", "minilm")
    marker.write_text(json.dumps({"settings": old, "seconds": 1.0, "result": {"metrics": "kept"}}))

    def retrain() -> dict:
        raise AssertionError("a finished round with the same options must not rerun")

    settings = {"backbone": "minilm", **pipeline.round_settings("r1")}
    assert pipeline.step("[2/7] r1", "r1", settings, retrain) == {"metrics": "kept"}
    # Other options under the old key: the step reruns.
    old["args"] = [*old["args"], "--lr", "1e-3"]
    marker.write_text(json.dumps({"settings": old, "seconds": 1.0, "result": {"metrics": "old"}}))
    rerun = Pipeline(build_parser().parse_args(["--out", str(tmp_path)]))
    assert rerun.step("[2/7] r1", "r1", settings, lambda: {"metrics": "new"}) == {"metrics": "new"}
    assert rerun.stale


def test_a_missing_data_folder_ends_the_job_with_its_name_not_a_traceback(tmp_path, capsys):
    from train.pipeline import main

    assert main(["--out", str(tmp_path / "job"), "--data-dir", str(tmp_path / "no-data")]) == 2
    assert f"data folder not found: {tmp_path / 'no-data'}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "chosen, expected",
    [
        ({}, "1000 None"),
        ({"OMP_WAIT_POLICY": "PASSIVE"}, "None PASSIVE"),
        ({"GOMP_SPINCOUNT": "7"}, "7 None"),
    ],
)
def test_the_job_sets_a_short_openmp_spin_unless_the_user_chose_one(chosen, expected):
    from tests.train_support import subprocess_env

    env = {k: v for k, v in subprocess_env().items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    # Set in the job's own process before torch loads, and inherited by the rounds' processes.
    probe = "import os, train.pipeline; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    assert run_python("-c", probe, env={**env, **chosen}).stdout.split()[-2:] == expected.split()
