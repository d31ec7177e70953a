"""CRE-T1 training: the GRPO stage (train.grpo) and reasoning-expanded Round 2 data (train.t1).

The reward tests use a bag-of-words encoder over the tiny vocabulary: a real encoder whose ranking
can be worked out by hand, so a trace that names the fitting CV's skills must rank it first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from cre.modeling_cre import join_reasoning
from tests.conftest import WORDS, build_backbone, build_tokenizer
from tests.train_support import TINY_R2, make_synth_run
from train import grpo, r2, t1
from train.data import TrainingDataError
from train.grpo import GRPORecipe, RankReward, build_dataset, fitting_rank, make_trainer, step_rewards

VOCABULARY = {word: index for index, word in enumerate(WORDS)}
POOL = ["python sql spark", "nurse ward patients", "teacher students", "ledger audit excel", "figma designer"]


def bag_of_words(texts: list[str], kind: str) -> torch.Tensor:
    """Word counts over the tiny vocabulary, L2-normalised (a text without known words is all zeros)."""
    rows = torch.zeros(len(texts), len(WORDS))
    for row, text in enumerate(texts):
        for word in text.lower().split():
            if word in VOCABULARY:
                rows[row, VOCABULARY[word]] += 1
    return F.normalize(rows, dim=-1)


# A chat template as plain as the tiny vocabulary allows (its words are unknown tokens, which is fine).
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} ; {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)


def tiny_policy(seed: int = 0) -> tuple[LlamaForCausalLM, object]:
    """A tiny random chat LM over the test vocabulary and its tokenizer (left padding).

    It reads 512 positions: the ``reasoning`` prompt alone is longer than the tiny backbone's 128.
    """
    backbone = build_backbone(decoder=True, seed=seed)
    backbone.config.max_position_embeddings = 512  # rotary positions: no weights depend on it
    policy = LlamaForCausalLM(backbone.config)
    policy.model.load_state_dict(backbone.state_dict())
    tokenizer = build_tokenizer(decoder=True)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side, tokenizer.pad_token = "left", tokenizer.eos_token
    return policy, tokenizer


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("policy")
    for part in tiny_policy():
        part.save_pretrained(folder)
    return folder


def test_rank_reward_ranks_the_fitting_cv_higher_with_a_trace_that_names_its_skills():
    reward = RankReward(bag_of_words, {"jdcv": POOL})
    columns = {"query": ["data engineer"] * 4, "positive": [POOL[0]] * 4, "source": ["jdcv"] * 4}
    # The plain query shares no word with any CV: every rival ties with the fitting CV, and a tie is
    # no win. An empty trace, or one that shares no word with the query, leaves the query plain.
    traces = ["", "data engineer with python and spark", "python spark", "data engineer on the ward"]
    assert reward.ranks(traces, **columns) == [(5, 5), (1, 5), (5, 5), (5, 5)]
    assert reward.scores(traces, **columns) == [0.2, 1.0, 0.2, 0.2]
    normalised = RankReward(bag_of_words, {"jdcv": POOL}, reward="normalised-rank")
    assert normalised.scores(traces[:2], **{k: v[:2] for k, v in columns.items()}) == [0.0, 1.0]
    # TRL's completions (chat messages) are read as the local backend reads its answers.
    completion = [{"role": "assistant", "content": 'Sure. {"trace": "data engineer, sql"}'}]
    assert reward(completions=[completion], **{k: v[:1] for k, v in columns.items()}) == [1.0]


def test_rank_reward_ranks_a_fitting_cv_outside_the_pool_against_the_whole_pool():
    reward = RankReward(bag_of_words, {"cv_queries": POOL[1:]})
    columns = {"query": ["data"] * 2, "positive": [POOL[0]] * 2, "source": ["cv_queries"] * 2}
    assert reward.ranks(["data python", "data nurse"], **columns) == [(1, 5), (5, 5)]


def test_non_finite_similarity_ranks_last_never_first():
    def broken(texts: list[str], kind: str) -> torch.Tensor:
        vectors = bag_of_words(texts, kind)
        return torch.full_like(vectors, float("nan")) if kind == "jd" else vectors

    reward = RankReward(broken, {"jdcv": POOL})
    assert reward.scores(["data python"], query=["data"], positive=[POOL[0]], source=["jdcv"]) == [0.2]
    ties = torch.tensor([[0.5, 0.5, 0.1], [0.5, 0.4, float("nan")]])
    assert fitting_rank(ties, torch.tensor([0, 0])).tolist() == [2, 1]


def test_rank_reward_needs_a_rival_for_every_fitting_cv():
    with pytest.raises(TrainingDataError, match="jdcv: 1 distinct fitting CVs, need at least 2"):
        RankReward(bag_of_words, {"jdcv": [POOL[0], POOL[0]]})


def test_grpo_raises_the_mean_reward_on_a_toy_ranking_task(tmp_path):
    # Each query's fitting CV is found only by a trace that names one of its skills.
    torch.manual_seed(0)
    policy, tokenizer = tiny_policy()
    examples = [
        {"query": "senior data engineer team platform", "positive": POOL[0], "source": "jdcv"},
        {"query": "nurse clinic budget students", "positive": POOL[1], "source": "jdcv"},
    ]
    reward = RankReward(bag_of_words, {"jdcv": POOL})
    recipe = GRPORecipe(
        steps=40, queries_per_step=2, generations=8, max_trace_tokens=10, learning_rate=1e-2, save_steps=1000
    )
    trainer = make_trainer(policy, tokenizer, build_dataset(examples), reward, recipe, tmp_path)
    trainer.train()
    rewards = step_rewards(trainer)
    assert len(rewards) == 40
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.15, (first, last)


@pytest.fixture(scope="module")
def query_data(tmp_path_factory) -> Path:
    """A synthesis run of short texts in the tiny vocabulary (the tiny policy has 128 positions)."""
    folder = tmp_path_factory.mktemp("t1-data")
    cvs = [
        "python sql spark engineer",
        "nurse ward patients clinic",
        "teacher students degree",
        "ledger audit excel",
    ]
    jds = ["senior data engineer", "nurse in london", "teacher in berlin", "accountant with audit"]
    triplets = [
        {"query": jd, "positive": cv, "negative": cvs[(i + 1) % 4], "negative_type": "screening"}
        for i, (jd, cv) in enumerate(zip(jds, cvs, strict=True))
    ]
    triplets.append({**triplets[0], "split": "validation"})
    questions = [{"query": f"candidate with {cv.split()[0]}", "positive": cv} for cv in cvs]
    for name, rows in (("jdcv.jsonl", triplets), ("cv_queries.jsonl", questions)):
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "pairs.jsonl").write_text(json.dumps({"query": "a", "positive": "b", "stage": "card"}) + "\n")
    return folder


@pytest.fixture(scope="module")
def encoder_dir(tiny_backbone_dir, tmp_path_factory) -> Path:
    from common.models import build_cre_model

    folder = tmp_path_factory.mktemp("encoder")
    build_cre_model(str(tiny_backbone_dir("encoder"))).save_pretrained(folder)
    return folder


def test_grpo_command_trains_the_policy_and_changes_its_weights(
    query_data, encoder_dir, policy_dir, tmp_path
):
    out = tmp_path / "grpo"
    argv = ["--data", str(query_data), "--policy", str(policy_dir), "--encoder", str(encoder_dir)]
    common = ["--out", str(out), "--generations", "4", "--max-trace-tokens", "8", "--max-length", "48"]
    options = "--steps 2 --queries-per-step 4 --lr 1e-2 --save-steps 1 --eval-examples 3".split()
    assert grpo.main([*argv, *common, *options]) == 0
    summary = json.loads((out / "grpo_summary.json").read_text())
    greedy = summary["greedy_reward"]
    assert greedy["examples"] == 3 and 0 < greedy["before"] <= 1 and 0 < greedy["after"] <= 1
    assert summary["examples"] == 8 and summary["pool"] == {"jdcv": 4, "cv_queries": 4}
    assert len(summary["step_rewards"]) == 2 and all(0 < r <= 1 for r in summary["step_rewards"])
    before = load_file(policy_dir / "model.safetensors")
    after = load_file(out / "final" / "model.safetensors")
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, "two GRPO steps left every weight of the policy unchanged"
    # --resume continues from the last checkpoint (step 2) to step 3.
    assert grpo.main([*argv, *common, "--steps", "3", "--queries-per-step", "4", "--resume"]) == 0
    resumed = json.loads((out / "grpo_summary.json").read_text())
    assert resumed["resumed_from"].endswith("checkpoint-2") and len(resumed["step_rewards"]) == 3


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--data": "missing"}, "jdcv.jsonl: training data file not found"),
        ({"--encoder": "/nonexistent"}, "no checkpoint or backbone at /nonexistent"),
        ({"--sources": "cv_queries", "--data": "empty"}, "cv_queries.jsonl, split train: 0 records"),
        ({"--policy": "no-chat"}, "the tokenizer has no chat template; the policy must be a chat model"),
    ],
)
def test_grpo_command_fails_with_one_line_naming_the_problem(
    change, message, query_data, encoder_dir, policy_dir, tiny_backbone_dir, tmp_path, capsys
):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "cv_queries.jsonl").write_text(
        json.dumps({"query": "q", "positive": "p", "split": "validation"}) + "\n"
    )
    named = {"missing": tmp_path / "missing", "empty": empty, "no-chat": tiny_backbone_dir("decoder")}
    args = {"--data": str(query_data), "--policy": str(policy_dir), "--encoder": str(encoder_dir)}
    args |= {key: str(named.get(value, value)) for key, value in change.items()}
    capsys.readouterr()  # the fixtures' own output
    assert grpo.main([*sum(args.items(), ()), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    # Progress bars of what loaded before the problem came to light may precede the one-line error.
    assert "Traceback" not in error and error.strip().splitlines()[-1].startswith("error: ")
    assert message in error.strip().splitlines()[-1]


def test_grpo_recipe_rejects_a_group_of_one(capsys):
    with pytest.raises(SystemExit) as stopped:
        grpo.main(["--data", "d", "--policy", "p", "--encoder", "e", "--out", "o", "--generations", "1"])
    assert stopped.value.code == 2
    assert "--generations must be at least 2" in capsys.readouterr().err


class CountingGenerator:
    """A deterministic trace generator (the query's words, sorted; none for some) that records its calls."""

    def __init__(self):
        self.sent: list[str] = []

    def __call__(self, query: str) -> str | None:
        self.sent.append(query)
        return None if query.startswith("candidate with ledger") else " ".join(sorted(query.split()))


def test_expand_data_dir_writes_reasoning_expanded_queries_and_copies_the_rest(query_data, tmp_path):
    reason = CountingGenerator()
    counts = t1.expand_data_dir(query_data, tmp_path / "reasoned", reason)
    assert counts == {
        "jdcv.jsonl": {"records": 5, "queries": 4, "plain": 0},
        "cv_queries.jsonl": {"records": 4, "queries": 4, "plain": 1},
    }
    assert len(reason.sent) == 8  # the JD repeated in the validation split was sent once
    original = [json.loads(line) for line in (query_data / "jdcv.jsonl").read_text().splitlines()]
    copied = [json.loads(line) for line in (tmp_path / "reasoned" / "jdcv.jsonl").read_text().splitlines()]
    for before, after in zip(original, copied, strict=True):
        trace = " ".join(sorted(before["query"].split()))
        assert after == {**before, "query": join_reasoning(before["query"], trace)}
    lines = (tmp_path / "reasoned" / "cv_queries.jsonl").read_text().splitlines()
    assert json.loads(lines[3])["query"] == "candidate with ledger"  # no valid trace: the plain query
    assert (tmp_path / "reasoned" / "pairs.jsonl").read_bytes() == (query_data / "pairs.jsonl").read_bytes()
    with pytest.raises(TrainingDataError, match="already exists"):
        t1.expand_data_dir(query_data, tmp_path / "reasoned", reason)


def test_round_2_trains_unchanged_on_a_synthesis_run_expanded_by_rules_traces(
    tiny_backbone_dir, tmp_path, capsys
):
    synth = make_synth_run(tmp_path / "synth")
    assert t1.main(["--data", str(synth), "--out", str(tmp_path / "reasoned"), "--generator", "rules"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["jdcv.jsonl"]["plain"] < counts["jdcv.jsonl"]["queries"]
    triplets = r2.load_r2_data(tmp_path / "reasoned")
    expanded = [triplet for triplet in triplets if "\nReasoning: " in triplet["query"]]
    assert len(expanded) >= len(triplets) / 2
    argv = ["--data", str(tmp_path / "reasoned"), "--base", str(tiny_backbone_dir("encoder"))]
    assert r2.main([*argv, "--out", str(tmp_path / "r2"), *TINY_R2]) == 0
    assert (tmp_path / "r2" / "model.safetensors").is_file()


def test_expansion_command_runs_a_trained_policy_as_the_local_backend(
    query_data, policy_dir, tmp_path, capsys
):
    argv = ["--data", str(query_data), "--out", str(tmp_path / "local"), "--generator", "local"]
    assert t1.main([*argv, "--model", str(policy_dir), "--max-new-tokens", "5", "--device", "cpu"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["jdcv.jsonl"]["records"] == 5 and counts["cv_queries.jsonl"]["queries"] == 4
    # A query whose trace failed validation (a random policy's usually do) stays plain, and is counted.
    rows = [json.loads(line) for line in (tmp_path / "local" / "jdcv.jsonl").read_text().splitlines()]
    plain = {row["query"] for row in rows if "\nReasoning: " not in row["query"]}
    assert len(plain) == counts["jdcv.jsonl"]["plain"]


def test_expansion_command_fails_with_one_line_for_a_missing_folder_or_a_refused_endpoint(tmp_path, capsys):
    assert t1.main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'none'}: synthesis run folder not found"
    argv = ["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--generator", "openai", "--model", "m"]
    assert t1.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "--allow-openai-api" in error and error.count("\n") == 0


@pytest.mark.integration
def test_rank_reward_with_the_real_minilm_follows_what_the_trace_names():
    from common.models import load_model

    encode = grpo.cre_encoder(load_model("minilm"), max_length=256)
    cvs = [
        "Data engineer: Python, Spark and Airflow pipelines on AWS, 5 years",
        "Frontend developer: React and TypeScript user interfaces, 5 years",
        "Backend developer: Java and Spring microservices, 5 years",
    ]
    reward = RankReward(encode, {"jdcv": cvs})
    columns = {"query": ["Software engineer"] * 2, "positive": [cvs[0]] * 2, "source": ["jdcv"] * 2}
    traces = [
        "Software engineer for data: must have Python, Spark, Airflow pipelines.",
        "Software engineer for the frontend: must have React, TypeScript, user interfaces.",
    ]
    named, misleading = reward.scores(traces, **columns)
    assert named == 1.0 and misleading < 1.0
