"""The model card: the repository's README.md, with each checkpoint's own metrics filled in.

README.md is both the user guide and the Hub model card (YAML metadata, widget examples,
``model-index``). Every checkpoint folder gets the same card, with:

* ``model-index`` built from its evaluation results (the rows of ``python -m eval compare``'s JSON,
  schema in :mod:`eval.compare`), readable by the Hub and by ``huggingface_hub.ModelCard``;
* the section between the ``checkpoint`` markers replaced by a short description of the
  checkpoint (round, base model) and its metrics table.

Command line (refresh the repository README's ``model-index`` from a results file)::

    python -m train.model_card --results eval/results/ablation.json --model full --readme README.md

Example:
    >>> from train.model_card import write_model_card
    >>> write_model_card("outputs/cre-minilm/r2", round_name="r2", metrics={"onet": {"ndcg@10": 0.41}})  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard

REPO_README = Path(__file__).resolve().parents[1] / "README.md"
CHECKPOINT_SECTION = re.compile(r"(<!-- checkpoint:start -->\n).*?(<!-- checkpoint:end -->)", re.DOTALL)

# What each evaluation benchmark is, for the model-index (dataset name, type, split, task).
DATASETS = {
    "onet": ("O*NET 29.3 occupations, graded JD-JD (dev split)", "onet-jd-jd", "dev", "retrieval"),
    "esco": ("ESCO occupations, ISCO groups JD-JD", "esco-isco-jd-jd", "all", "retrieval"),
    "resumes": ("Résumé dataset, JD-to-CV local pool (dev)", "resume-jd-cv", "dev", "reranking"),
}


def eval_results(metrics: dict[str, dict[str, float]]) -> list[EvalResult]:
    """``{benchmark: {"ndcg@10": value}}`` → Hub ``EvalResult`` entries (unknown benchmarks keep their name)."""
    results = []
    for benchmark, values in sorted(metrics.items()):
        name, dataset_type, split, task = DATASETS.get(
            benchmark, (benchmark, benchmark, "validation", "retrieval")
        )
        for metric, value in sorted(values.items()):
            results.append(
                EvalResult(
                    task_type=task,
                    dataset_type=dataset_type,
                    dataset_name=name,
                    dataset_split=split,
                    metric_type=metric.replace("@", "_at_"),
                    metric_name=metric.replace("ndcg", "NDCG")
                    .replace("mrr", "MRR")
                    .replace("recall", "Recall"),
                    metric_value=round(float(value), 4),
                )
            )
    return results


def render_model_card(
    card_text: str,
    *,
    round_name: str | None = None,
    metrics: dict[str, dict[str, float]] | None = None,
    base_model: str | None = None,
    model_name: str = "CRE",
) -> ModelCard:
    """Fill a card (README text) with one checkpoint's round, base model and metrics."""
    card = ModelCard(card_text)
    if base_model:
        card.data.base_model = base_model
    if metrics:
        card.data.model_name = model_name
        card.data.eval_results = eval_results(metrics)
    if round_name is not None and CHECKPOINT_SECTION.search(card.text):
        card.text = CHECKPOINT_SECTION.sub(
            lambda m: m.group(1) + _checkpoint_section(round_name, base_model, metrics) + m.group(2),
            card.text,
        )
    return card


def write_model_card(
    folder: str | Path,
    *,
    round_name: str,
    metrics: dict[str, dict[str, float]] | None = None,
    base_model: str | None = None,
    template: str | Path = REPO_README,
) -> Path:
    """Write ``README.md`` into a checkpoint folder: the repository's card, filled for this checkpoint.

    Args:
        folder: The checkpoint folder.
        round_name: ``"init"``, ``"r1"``, ``"r2"`` or ``"full"`` (said in the card).
        metrics: ``{benchmark: {metric: value}}`` of this checkpoint (none: no model-index).
        base_model: The backbone it was trained from (Hub id or alias).
        template: The card to fill (default: this repository's README.md).

    Returns:
        The written path.
    """
    card = render_model_card(
        Path(template).read_text(encoding="utf-8"),
        round_name=round_name,
        metrics=metrics,
        base_model=base_model,
    )
    path = Path(folder) / "README.md"
    card.save(path)
    return path


def _checkpoint_section(round_name: str, base_model: str | None, metrics: dict | None) -> str:
    lines = [
        f"This checkpoint: round **{round_name}**" + (f", built on `{base_model}`." if base_model else ".")
    ]
    if metrics:
        names = sorted({m for values in metrics.values() for m in values})
        lines += ["", "| benchmark | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for benchmark, values in sorted(metrics.items()):
            cells = [f"{values[m]:.4f}" if m in values else "–" for m in names]
            lines.append(f"| {benchmark} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Fill the model card's model-index from an evaluation results JSON."
    )
    parser.add_argument(
        "--results", required=True, type=Path, help="results JSON of `python -m eval compare`"
    )
    parser.add_argument(
        "--model", required=True, help="row of the results to publish (a model name in the JSON)"
    )
    parser.add_argument("--readme", type=Path, default=REPO_README, help="card to update in place")
    parser.add_argument("--base-model")
    args = parser.parse_args(argv)
    report = json.loads(args.results.read_text(encoding="utf-8"))
    if args.model not in report.get("models", {}):
        raise SystemExit(
            f"{args.results}: no model row {args.model!r}; rows: {sorted(report.get('models', {}))}"
        )
    metrics = {benchmark: entry["metrics"] for benchmark, entry in report["models"][args.model].items()}
    card = render_model_card(
        args.readme.read_text(encoding="utf-8"), metrics=metrics, base_model=args.base_model
    )
    card.save(args.readme)
    print(f"Updated model-index of {args.readme} from {args.results} ({args.model})")


if __name__ == "__main__":
    main()
