"""Typed recipes: the flags generated from them, their argv, their cache key and their checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from train import boundary, r1, r2
from train.losses import RankingWeights
from train.pipeline import RECIPES, JobRecipe
from train.recipes import canonical_json, recipe_argv, recipe_from_args, recipe_key

PATHS = ["--data", "d", "--base", "b", "--out", "o"]


@pytest.mark.parametrize("job", sorted(RECIPES))
def test_a_recipes_argv_parses_back_to_the_same_recipe(job):
    recipe = RECIPES[job]
    for module, typed, cls in ((r1, recipe.r1, r1.R1Recipe), (r2, recipe.r2, r2.R2Recipe)):
        args = module.build_parser().parse_args([*PATHS, *recipe_argv(typed)])
        assert recipe_from_args(cls, args) == typed


def test_defaults_and_flags_come_from_the_recipe_fields():
    args = r2.build_parser().parse_args(PATHS)
    assert recipe_from_args(r2.R2Recipe, args) == r2.R2Recipe()
    args = r2.build_parser().parse_args([*PATHS, "--no-gather", "--task-adapter", "jd-cv", "--steps", "3"])
    assert recipe_from_args(r2.R2Recipe, args) == r2.R2Recipe(steps=3, gather=False, task_adapter="jd-cv")
    args = r1.build_parser().parse_args([*PATHS, "--weight-distill", "0.5", "--role-margin", "0.2"])
    parsed = recipe_from_args(r1.R1Recipe, args)
    assert parsed.weights == RankingWeights(distill=0.5, role_margin=0.2)
    assert parsed.steps("card") is None
    assert recipe_from_args(
        boundary.HeadRecipe, boundary.build_parser().parse_args([*PATHS, "--lr", "0.5"])
    ) == (boundary.HeadRecipe(learning_rate=0.5))
    with pytest.raises(SystemExit):  # the choices of a field reach the flag
        r2.build_parser().parse_args([*PATHS, "--task-adapter", "nope"])


def test_recipe_argv_leaves_defaults_out_and_refuses_fields_without_a_flag():
    assert recipe_argv(r2.R2Recipe()) == []
    assert recipe_argv(r2.R2Recipe(symmetric=True, skip_negative_types=("a", "b"))) == [
        "--symmetric",
        "--skip-negative-types",
        "a,b",
    ]
    with pytest.raises(ValueError, match="HeadRecipe.dropout has no flag"):
        recipe_argv(boundary.HeadRecipe(dropout=0.3))


def test_the_cache_key_is_the_hash_of_the_canonical_json():
    first, second = RankingWeights(distill=0.5), RankingWeights(distill=0.5)
    assert canonical_json(first) == canonical_json(second)
    assert canonical_json({"b": 1, "a": (1, 2)}) == '{"a":[1,2],"b":1}'
    assert recipe_key(first) == recipe_key(second) != recipe_key(replace(first, distill=0.05))
    assert len(recipe_key(first)) == 64


def test_r2_option_checks_apply_to_code_and_command_line_alike():
    from train.lora import LoraSettings

    with pytest.raises(ValueError, match="--graft-onto moves a task adapter"):
        r2.check_options(r2.R2Recipe(graft_onto="r1"), LoraSettings())
    with pytest.raises(ValueError, match="needs --lora-rank > 0"):
        r2.check_options(r2.R2Recipe(task_adapter="jd-cv"), LoraSettings(rank=0))
    r2.check_options(r2.R2Recipe(task_adapter="jd-cv", graft_onto="r1"), LoraSettings())


def test_job_recipes_are_validated():
    rounds = {"r1": r1.R1Recipe(), "r2": r2.R2Recipe()}
    with pytest.raises(ValueError, match="r2 needs task_adapter"):
        JobRecipe(**rounds, r2_from_backbone=True)
    with pytest.raises(ValueError, match="unknown feedback options \\['topk'\\]"):
        JobRecipe(**rounds, feedback={"topk": 3})
    with pytest.raises(ValueError, match="vacancy_titles must be between 0 and 1, got 1.5"):
        JobRecipe(**rounds, vacancy_titles=1.5)
    with pytest.raises(ValueError, match="graft_onto is the job's to set"):
        JobRecipe(r1=r1.R1Recipe(), r2=r2.R2Recipe(task_adapter="jd-cv", graft_onto="x"))
    with pytest.raises(ValueError, match="title_adapter needs task_adapter"):
        JobRecipe(**rounds, title_adapter=r2.R2Recipe(steps=0, title_steps=5))
    with pytest.raises(ValueError, match="both train the 'jd-cv' adapter"):
        JobRecipe(
            r1=r1.R1Recipe(),
            r2=r2.R2Recipe(task_adapter="jd-cv"),
            title_adapter=r2.R2Recipe(steps=0, title_steps=5, task_adapter="jd-cv"),
        )


def test_generated_help_lists_every_recipe_flag():
    text = r1.build_parser().format_help()
    for flag in ("--card-steps", "--profile-teacher-rt", "--weight-distill", "--structure-temperature"):
        assert flag in text


def test_a_round_refuses_an_invalid_recipe_like_a_bad_flag(capsys):
    for flags, message in (
        (["--pair-temperature", "-1"], "error: pair_temperature must be > 0"),
        (["--question-steps", "-2"], "error: question_steps must be ≥ 0, got -2"),
    ):
        with pytest.raises(SystemExit) as stop:
            r2.main([*PATHS, *flags])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and err.startswith("usage:")
