"""The README is the Hub model card: metadata, widget, model-index and per-checkpoint filling."""

from __future__ import annotations

import json

import pytest
import yaml
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from train.model_card import (
    CHECKPOINT_SECTION,
    RELEASE_METRICS,
    RELEASE_RESULTS,
    RELEASE_ROWS,
    REPO_README,
    eval_results,
    main,
    results_metrics,
    write_model_card,
)

METRICS = {"onet": {"ndcg@10": 0.4321, "recall@20": 0.5}, "resumes": {"recall@50": 0.7}}


def test_readme_is_a_valid_model_card():
    card = ModelCard.load(REPO_README)
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "sentence-similarity"
    assert data["library_name"] == "sentence-transformers"
    assert data["license"] and data["language"] == ["en"] and data["base_model"]
    assert {"sentence-transformers", "recruitment"} <= set(data["tags"])
    widget = data["widget"][0]
    assert widget["source_sentence"] and len(widget["sentences"]) >= 3
    assert "trust_remote_code=True" in card.text
    # metadata round-trips through huggingface_hub's parser and writer
    assert ModelCard(str(card)).data.to_dict() == data


def test_checkpoint_card_carries_its_own_metrics(tmp_path):
    path = write_model_card(tmp_path, round_name="r2", metrics=METRICS, base_model="minilm")
    card = ModelCard.load(path)
    results = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results == {
        ("onet-jd-jd", "ndcg_at_10"): 0.4321,
        ("onet-jd-jd", "recall_at_20"): 0.5,
        ("resume-jd-cv", "recall_at_50"): 0.7,
    }
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"  # the alias's Hub id
    assert "round **r2**" in card.text and "| onet | 0.4321 |" in card.text
    assert released_section() not in card.text  # the released checkpoint's results are not this one's
    front_matter = yaml.safe_load(path.read_text().split("---")[1])
    model_index = front_matter["model-index"][0]
    assert model_index["name"] and all(
        {"task", "dataset", "metrics"} <= set(r) for r in model_index["results"]
    )
    assert front_matter["widget"]  # the card keeps everything else


def test_cli_fills_the_readme_model_index_from_a_results_file(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(REPO_README.read_text())
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"models": {"full": {b: {"metrics": m} for b, m in METRICS.items()}}}))
    main(["--results", str(results), "--model", "full", "--readme", str(readme)])
    assert len(ModelCard.load(readme).data.eval_results) == 3
    with pytest.raises(SystemExit, match="no model row 'r9'"):
        main(["--results", str(results), "--model", "r9", "--readme", str(readme)])


def released_section() -> str:
    """What README.md's checkpoint section says about the released checkpoint."""
    return CHECKPOINT_SECTION.search(REPO_README.read_text()).group(0)


def test_untrained_checkpoint_card_shows_no_results_of_the_project(tmp_path):
    path = write_model_card(tmp_path, round_name="init (untrained)", base_model="smollm2-135m")
    card = ModelCard.load(path)
    assert card.data.eval_results is None and "model-index" not in card.content.split("---")[1]
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert released_section() not in card.text and "has not been evaluated" in card.text
    assert "| 0." not in CHECKPOINT_SECTION.search(card.text).group(0)


def test_synthetic_validation_numbers_are_named_synthetic(tmp_path):
    metrics = {"synth-jd-cv": {"recall@10": 0.9}, "synth-boundary": {"mrr@10": 0.8}}
    card = ModelCard.load(write_model_card(tmp_path, round_name="full", metrics=metrics, base_model="minilm"))
    assert {r.dataset_type for r in card.data.eval_results} == {
        "cre-synthetic-jd-cv",
        "cre-synthetic-boundary",
    }
    assert all(
        "synthetic" in r.dataset_name and r.dataset_split == "synthetic-validation-test"
        for r in card.data.eval_results
    )
    with pytest.raises(ValueError, match="'mystery'.*DATASETS"):
        write_model_card(tmp_path, round_name="full", metrics={"mystery": {"recall@10": 0.5}})


def test_no_local_path_reaches_a_card(tmp_path):
    """A round started from a local folder names its Hub base model, never the user's path."""
    home = tmp_path / "home" / "someone" / "private-runs"
    r1 = home / "r1"
    r1.mkdir(parents=True)
    write_model_card(r1, round_name="r1", base_model="mpnet")
    r2 = home / "r2"
    r2.mkdir()
    card_path = write_model_card(r2, round_name="r2", metrics=METRICS, base_model=r1)
    assert ModelCard.load(card_path).data.base_model == "sentence-transformers/all-mpnet-base-v2"
    # a backbone folder of the user's without a card: no base model at all rather than its path
    backbone = home / "my-bert"
    backbone.mkdir()
    other = write_model_card(home, round_name="init (untrained)", base_model=backbone)
    assert ModelCard.load(other).data.base_model is None
    for path in (card_path, other):
        text = path.read_text()
        assert str(tmp_path) not in text and "someone" not in text and "private-runs" not in text


def test_readme_model_index_is_generated_from_the_release_results():
    """README's model-index, parsed by huggingface_hub, is what the generator makes from the results."""
    parsed_name, parsed = model_index_to_eval_results(metadata_load(REPO_README)["model-index"])
    expected = eval_results(results_metrics(RELEASE_RESULTS, RELEASE_ROWS, RELEASE_METRICS))
    assert parsed == expected and parsed_name == "CRE"
    assert {(r.dataset_type, r.dataset_split) for r in parsed} == {
        ("onet-jd-jd", "dev"),
        ("esco-isco-jd-jd", "all"),
        ("resume-jd-cv", "dev"),
    }
    # the headline number: the released checkpoint's rerank, résumé Recall@50
    recall50 = [
        r.metric_value for r in parsed if r.dataset_type == "resume-jd-cv" and r.metric_type == "recall_at_50"
    ]
    assert recall50 == [
        round(
            json.loads(RELEASE_RESULTS.read_text())["models"][RELEASE_ROWS[1]]["resumes"]["metrics"][
                "recall@50"
            ],
            4,
        )
    ]
