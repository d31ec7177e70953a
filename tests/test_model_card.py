"""The README is the Hub model card: metadata, widget, model-index and per-checkpoint filling."""

from __future__ import annotations

import json

import pytest
import yaml
from huggingface_hub import ModelCard

from train.model_card import REPO_README, main, write_model_card

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
    assert card.data.base_model == "minilm"
    assert "round **r2**" in card.text and "| onet | 0.4321 |" in card.text
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
