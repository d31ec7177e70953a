"""The model card: the repository's README.md, and each checkpoint's own card built from it.

README.md is the Hub model card of the released checkpoint (YAML metadata, widget examples,
``model-index``). Its ``model-index`` is generated, never typed: :func:`main` fills it from the
released recipe's committed evaluation results (:data:`RELEASE_RESULTS`, rows :data:`RELEASE_ROWS`).

Every checkpoint folder a training round writes gets the same card, made that checkpoint's own:

* ``base_model`` is the Hub id of the backbone it started from (:func:`hub_base_model`): an alias
  becomes its Hub id, a CRE checkpoint folder passes on its own card's ``base_model``, and a local
  path is never written (a user's paths are personal data);
* ``model-index`` holds this checkpoint's evaluation results only, each under a named dataset and
  split (:data:`DATASETS`; the synthetic validation sets are named as such), and is removed when the
  checkpoint was not evaluated, so an untrained checkpoint never shows the project's results;
* the section between the ``checkpoint`` markers, which in README.md holds the released checkpoint's
  results table, is replaced by this checkpoint's round, backbone and metrics.

Command line (refresh README.md's ``model-index`` from the committed results of the released recipe;
``--results``/``--model``/``--metrics`` pick another file, rows or metrics)::

    python -m train.model_card

Example:
    >>> card = render_model_card(REPO_README.read_text(), round_name="init (untrained)", base_model="minilm")
    >>> card.data.base_model, card.data.eval_results
    ('sentence-transformers/all-MiniLM-L6-v2', None)
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard
from huggingface_hub.utils import HFValidationError, validate_repo_id

from common.backbones import HUB_IDS

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_README = REPO_ROOT / "README.md"
CHECKPOINT_SECTION = re.compile(r"(<!-- checkpoint:start -->\n).*?(<!-- checkpoint:end -->)", re.DOTALL)

# The released recipe (the `minilm-onet` preset) and where its README numbers come from. The rows are
# the results file's model names: the checkpoint's encoder (JD-JD benchmarks, résumés by cosine),
# then the same checkpoint through `rerank` with its stored BoundaryHead λ and candidate feedback,
# which is how the checkpoint ranks résumé pools; a later row's benchmarks replace an earlier one's.
RELEASE_RESULTS = REPO_ROOT / "eval" / "results" / "ablation_minilm_onet_esco_v9.json"
RELEASE_ROWS = ("/tmp/exp/v10/final", "/tmp/exp/v10/final [cos−0.2·boundary+1·feedback@3]")
# The card table's metrics: NDCG@10 on the JD-JD benchmarks, Recall@50 and Precision@10 on the résumés.
RELEASE_METRICS = ("ndcg@10", "recall@50", "precision@10")

# What each benchmark is, for the model-index: (dataset name, dataset type, split, task).
DATASETS = {
    "onet": ("O*NET 29.3 occupations, graded JD-JD (dev split)", "onet-jd-jd", "dev", "retrieval"),
    "esco": ("ESCO occupations, ISCO groups JD-JD", "esco-isco-jd-jd", "all", "retrieval"),
    "resumes": ("Résumé dataset, JD-to-CV local pool (dev)", "resume-jd-cv", "dev", "reranking"),
    **{
        f"resumes-{style}": (
            f"Résumé dataset, JD-to-CV local pool, {style} JDs (dev)",
            f"resume-jd-cv-{style}",
            "dev",
            "reranking",
        )
        for style in ("brief", "duties", "titles")
    },
    # The main job's own validation data: synthetic JDs and CVs, never real ones.
    "synth-jd-jd": (
        "CRE synthetic validation (not real data): JD-JD",
        "cre-synthetic-jd-jd",
        "synthetic-validation-test",
        "retrieval",
    ),
    "synth-jd-cv": (
        "CRE synthetic validation (not real data): JD-to-CV",
        "cre-synthetic-jd-cv",
        "synthetic-validation-test",
        "retrieval",
    ),
    "synth-boundary": (
        "CRE synthetic validation (not real data): role-boundary pools",
        "cre-synthetic-boundary",
        "synthetic-validation-test",
        "reranking",
    ),
}


def hub_base_model(spec: str | os.PathLike | None) -> str | None:
    """The Hub id a card names as ``base_model`` for what a checkpoint was built from, or ``None``.

    Args:
        spec: A backbone alias (``minilm``...), a Hub id, or a local folder (a backbone, or a CRE
            checkpoint whose card names its own base model).

    Returns:
        The alias's Hub id; for a local folder, the ``base_model`` its README.md names when that is a
        Hub id (else ``None``: a local path is never a card's base model); a Hub id unchanged.

    Example:
        >>> hub_base_model("mpnet")
        'sentence-transformers/all-mpnet-base-v2'
        >>> hub_base_model("/home/someone/backbones/bert") is None
        True
    """
    if spec is None:
        return None
    name = str(spec)
    if name in HUB_IDS:
        return HUB_IDS[name]
    folder = Path(name).expanduser()
    if folder.exists():
        readme = folder / "README.md"
        recorded = ModelCard.load(readme).data.base_model if readme.is_file() else None
        return recorded if isinstance(recorded, str) and _is_hub_id(recorded) else None
    return name if _is_hub_id(name) else None


def _is_hub_id(name: str) -> bool:
    # validate_repo_id accepts "outputs/r1"; a path-like start or a backslash is never a Hub id
    if name.startswith(("/", ".", "~")) or "\\" in name:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def eval_results(metrics: dict[str, dict[str, float]]) -> list[EvalResult]:
    """``{benchmark: {"ndcg@10": value}}`` → Hub ``EvalResult`` entries, each under its named dataset.

    Raises:
        ValueError: A benchmark missing from :data:`DATASETS` (its dataset and split would be unnamed).

    Example:
        >>> [(r.dataset_type, r.dataset_split, r.metric_type) for r in eval_results({"onet": {"ndcg@10": 0.6}})]
        [('onet-jd-jd', 'dev', 'ndcg_at_10')]
    """
    unknown = sorted(set(metrics) - set(DATASETS))
    if unknown:
        raise ValueError(
            f"benchmarks {unknown} have no dataset entry in train.model_card.DATASETS "
            "(name, type, split, task); add one before publishing their numbers"
        )
    results = []
    for benchmark, values in sorted(metrics.items()):
        name, dataset_type, split, task = DATASETS[benchmark]
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
                    .replace("recall", "Recall")
                    .replace("precision", "Precision"),
                    metric_value=round(float(value), 4),
                )
            )
    return results


def render_model_card(
    card_text: str,
    *,
    round_name: str | None = None,
    metrics: dict[str, dict[str, float]] | None = None,
    base_model: str | os.PathLike | None = None,
    model_name: str = "CRE",
) -> ModelCard:
    """Fill a card (README text): a checkpoint's own card when ``round_name`` is given, else the
    repository card's ``model-index`` (and ``base_model``, when given).

    Args:
        card_text: The card to start from (README.md's text).
        round_name: The checkpoint's round; its card then carries nothing of the released
            checkpoint's: its ``model-index`` is ``metrics`` (none without), its base model
            ``base_model`` (none when that is not a Hub id) and the checkpoint section its own.
        metrics: ``{benchmark: {metric: value}}`` of the checkpoint.
        base_model: What the checkpoint was built from, for :func:`hub_base_model`.
        model_name: The ``model-index`` name.

    Raises:
        ValueError: A checkpoint card from a text without the checkpoint markers, a base model that
            is not a Hub id for the repository card, or an unknown benchmark.
    """
    card = ModelCard(card_text)
    base_id = hub_base_model(base_model)
    if round_name is not None:
        if not CHECKPOINT_SECTION.search(card.text):
            raise ValueError("the card template lacks the <!-- checkpoint:start/end --> markers")
        card.data.base_model = base_id
        card.data.eval_results = eval_results(metrics) if metrics else None
        card.data.model_name = model_name if metrics else None
        section = _checkpoint_section(round_name, base_id, metrics)
        card.text = CHECKPOINT_SECTION.sub(lambda m: m.group(1) + section + m.group(2), card.text)
        return card
    if base_model is not None:
        if base_id is None:
            raise ValueError(f"base model {str(base_model)!r} is not a backbone alias or a Hub id")
        card.data.base_model = base_id
    if metrics:
        card.data.model_name = model_name
        card.data.eval_results = eval_results(metrics)
    return card


def write_model_card(
    folder: str | Path,
    *,
    round_name: str,
    metrics: dict[str, dict[str, float]] | None = None,
    base_model: str | os.PathLike | None = None,
    template: str | Path = REPO_README,
) -> Path:
    """Write ``README.md`` into a checkpoint folder: the repository's card, made this checkpoint's own.

    Args:
        folder: The checkpoint folder.
        round_name: ``"init (untrained)"``, ``"r1"``, ``"r2"``, ``"r2-title"`` or ``"full"`` (said in the card).
        metrics: ``{benchmark: {metric: value}}`` of this checkpoint (none: no model-index).
        base_model: What it was built from: a backbone alias, Hub id or local folder (see
            :func:`hub_base_model`; a local path never reaches the card).
        template: The card to fill (default: this repository's README.md).

    Returns:
        The written path.

    Example:
        >>> write_model_card("outputs/cre-minilm/r2", round_name="r2", metrics={"synth-jd-cv": {"recall@10": 0.9}})  # doctest: +SKIP
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


def _checkpoint_section(round_name: str, base_id: str | None, metrics: dict | None) -> str:
    built_on = f", built on `{base_id}`." if base_id else ", built on a local backbone."
    lines = [f"This checkpoint: round **{round_name}**{built_on}"]
    if not metrics:
        lines += ["", "It has not been evaluated; the results reported for CRE belong to other checkpoints."]
        return "\n".join(lines) + "\n"
    names = sorted({m for values in metrics.values() for m in values})
    lines += ["", "| benchmark | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for benchmark, values in sorted(metrics.items()):
        cells = [f"{values[m]:.4f}" if m in values else "–" for m in names]
        lines.append(f"| {benchmark} | " + " | ".join(cells) + " |")
    if any(benchmark.startswith("synth-") for benchmark in metrics):
        lines += ["", "`synth-*` rows are CRE's synthetic validation data, not real JDs or CVs."]
    return "\n".join(lines) + "\n"


def results_metrics(
    results: str | Path, rows: Sequence[str], metric_names: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """One checkpoint's ``{benchmark: {metric: value}}`` from a ``python -m eval compare`` results JSON.

    Args:
        results: The results JSON (schema in :mod:`eval.compare`).
        rows: Model rows to take; a later row's benchmarks replace an earlier one's (e.g. the encoder,
            then the same checkpoint's ``rerank`` row on the pooled benchmarks).
        metric_names: Keep only these metrics (default: all).

    Raises:
        SystemExit: A row the file does not have (the message lists the rows it has).

    Example:
        >>> round(results_metrics(RELEASE_RESULTS, RELEASE_ROWS[:1], ["ndcg@10"])["onet"]["ndcg@10"], 3)
        0.597
    """
    report = json.loads(Path(results).read_text(encoding="utf-8"))
    models = report.get("models", {})
    metrics: dict[str, dict[str, float]] = {}
    for row in rows:
        if row not in models:
            raise SystemExit(f"{results}: no model row {row!r}; rows: {sorted(models)}")
        for benchmark, entry in models[row].items():
            metrics[benchmark] = {
                name: value
                for name, value in entry["metrics"].items()
                if metric_names is None or name in metric_names
            }
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Fill the model card's model-index from an evaluation results JSON "
        "(default: the released recipe's committed results)."
    )
    parser.add_argument(
        "--results", type=Path, default=RELEASE_RESULTS, help="results JSON of `python -m eval compare`"
    )
    parser.add_argument(
        "--model",
        action="append",
        help="row(s) of the results to publish, later rows replacing earlier ones per benchmark "
        "(default: the released checkpoint's rows)",
    )
    parser.add_argument("--metrics", nargs="+", help="metrics to publish (default: the card's headline ones)")
    parser.add_argument("--readme", type=Path, default=REPO_README, help="card to update in place")
    parser.add_argument("--base-model", help="backbone alias or Hub id for base_model")
    args = parser.parse_args(argv)
    rows = args.model or list(RELEASE_ROWS)
    metric_names = args.metrics or (list(RELEASE_METRICS) if args.model is None else None)
    metrics = results_metrics(args.results, rows, metric_names)
    try:
        card = render_model_card(
            args.readme.read_text(encoding="utf-8"), metrics=metrics, base_model=args.base_model
        )
    except ValueError as error:
        raise SystemExit(f"{args.results}: {error}") from error
    card.save(args.readme)
    print(f"Updated model-index of {args.readme} from {args.results} ({', '.join(rows)})")


if __name__ == "__main__":
    main()
