"""Train the BoundaryHead on the frozen Round 2 encoder.

The head scores role-boundary near misses: a candidate that shares the query's title but not its
depth of ownership. Its training pairs, all JD–JD:

* **label 1**: a JD and one of its role-boundary negatives (stage 4, ``role_negatives.jsonl``);
* **label 0**: well-matched same-title pairs from the paraphrase pool (stage 2, ``pairs.jsonl``): a JD
  and its paraphrase, and two JDs of different sources whose titles match (:func:`titles_match`).
  A pair is kept when the bag-of-words similarity of the two texts' responsibility sentences passes a
  threshold, 0.5, backing off to 0.2 when that leaves fewer pairs than label 1 has.
  Stage-3 cards and summaries are left out: they are short key-fact texts, and a head trained on them
  against full-length negatives would learn length instead of role boundaries.

Classes are balanced 1:1 by sampling the larger one down. Texts are embedded once with the frozen
encoder (unit-normalised), then the head trains with BCE, AdamW (lr 1e-3, weight decay 0.01), batch
128, up to 40 epochs, early stopping with patience 5 on the validation loss (the ``validation``
split, or a tenth of the training JDs when that split lacks either label); the best epoch is kept.

Command line::

    python -m train.boundary --data runs/synth --base outputs/r2 --out outputs/full
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import sys
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

if not __package__:  # run by path (`accelerate launch train/r2.py`): see train/_run_by_path.py
    import _run_by_path  # noqa: F401  (puts the repository root on sys.path)

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from common.backbones import check_model_source
from common.models import load_model
from cre.modeling_cre import BoundaryHead, CREModel
from eval.boundary import roc_auc
from train.checkpoint import add_hub_arguments, push_checkpoint, save_checkpoint
from train.data import TrainingDataError, read_records, report_data_errors
from train.loop import setup_logging
from train.recipes import add_recipe_arguments, option, parse_recipe
from train.synth.matching import normalize
from train.synth.text import content_words, extract_anchor

logger = logging.getLogger("train.boundary")  # not __name__, which is __main__ under -m

TITLE_OVERLAP = 0.7
RESPONSIBILITY_THRESHOLDS = (0.5, 0.2)  # tried in order until label 0 has as many pairs as label 1
HELD_OUT_FRACTION = 10  # one training JD in this many validates when the validation split cannot


@dataclass
class BoundaryPair:
    """One labelled JD–JD pair; ``group`` is the source JD (pairs of one JD share a split)."""

    query: str
    candidate: str
    label: int
    split: str
    group: str


@dataclass
class HeadRecipe:
    """BoundaryHead training options (defaults from the CRE recipe; flags of ``python -m train.boundary``)."""

    learning_rate: float = option(1e-3, "AdamW learning rate", flag="--lr")
    weight_decay: float = option(0.01, "AdamW weight decay")
    batch_size: int = option(128, "pairs per batch")
    max_epochs: int = option(40, "epochs at most")
    patience: int = option(5, "epochs without a better validation loss before stopping")
    max_length: int = option(256, "token budget per JD")
    seed: int = option(0, "seed of the pair sampling, split and head initialisation")
    hidden_size: int | None = option(None, cli=False)
    dropout: float | None = option(None, cli=False)
    thresholds: tuple[float, ...] = option(RESPONSIBILITY_THRESHOLDS, cli=False)


def titles_match(first: str, second: str) -> bool:
    """Exact match, one title containing the other, or word overlap (Jaccard) ≥ 0.7 after normalising.

    Example:
        >>> titles_match("Senior Data Engineer", "Data Engineer"), titles_match("Nurse", "Data Engineer")
        (True, False)
    """
    a, b = normalize(first), normalize(second)
    if a == b or a in b or b in a:
        return True
    words_a, words_b = set(a.split()), set(b.split())
    return len(words_a & words_b) / max(len(words_a | words_b), 1) >= TITLE_OVERLAP


def responsibility_similarity(first: Counter, second: Counter) -> float:
    """Cosine similarity of two bags of words."""
    dot = sum(count * second[word] for word, count in first.items())
    norm = math.sqrt(sum(c * c for c in first.values()) * sum(c * c for c in second.values()))
    return dot / norm if norm else 0.0


def _responsibility_bag(title: str, text: str) -> Counter:
    return Counter(
        word
        for sentence in extract_anchor(title, text)["responsibilities"]
        for word in content_words(sentence)
    )


def build_pairs(
    data_dir: str | Path, thresholds: tuple[float, ...] = RESPONSIBILITY_THRESHOLDS, seed: int = 0
) -> tuple[list[BoundaryPair], dict]:
    """The balanced labelled pairs and a report of how they were chosen.

    Raises:
        TrainingDataError: Malformed records, or no pair of either label.
    """
    data_dir = Path(data_dir)
    positives = [
        BoundaryPair(r["query"], r["negative"], 1, r.get("split", "train"), r.get("source_id", r["query"]))
        for r in read_records(data_dir / "role_negatives.jsonl", ["query", "negative", "title"])
    ]
    paraphrases = [
        r
        for r in read_records(data_dir / "pairs.jsonl", ["query", "positive", "stage", "title"])
        if r["stage"] == "paraphrase"
    ]
    candidates = _matched_candidates(paraphrases)
    chosen, used = [], None
    for threshold in thresholds:
        chosen = [pair for pair, similarity in candidates if similarity >= threshold]
        used = threshold
        if len(chosen) >= len(positives):
            break
    if not positives or not chosen:
        raise TrainingDataError(
            f"{data_dir}: BoundaryHead needs both labels; found {len(positives)} role-boundary pairs "
            f"and {len(chosen)} well-matched same-title pairs"
        )
    rng = random.Random(seed)
    size = min(len(positives), len(chosen))
    pairs = rng.sample(positives, size) + rng.sample(chosen, size)
    report = {
        "role_boundary_pairs": len(positives),
        "matched_candidates": len(candidates),
        "responsibility_threshold": used,
        "matched_kept": len(chosen),
        "per_label": size,
    }
    return pairs, report


def _matched_candidates(paraphrases: list[dict]) -> list[tuple[BoundaryPair, float]]:
    """Label-0 candidates with their responsibility similarity: each JD with its paraphrase, and JDs
    of different sources whose titles match."""
    bags: dict[str, Counter] = {}

    def bag(title: str, text: str) -> Counter:
        if text not in bags:
            bags[text] = _responsibility_bag(title, text)
        return bags[text]

    candidates = []
    for record in paraphrases:
        split = record.get("split", "train")
        similarity = responsibility_similarity(
            bag(record["title"], record["query"]), bag(record["title"], record["positive"])
        )
        candidates.append(
            (
                BoundaryPair(
                    record["query"], record["positive"], 0, split, record.get("source_id", record["query"])
                ),
                similarity,
            )
        )
    jds = list({r["query"]: r for r in paraphrases}.values())  # one entry per source JD
    for index, first in enumerate(jds):
        for second in jds[index + 1 :]:
            if first.get("split", "train") != second.get("split", "train") or not titles_match(
                first["title"], second["title"]
            ):
                continue
            similarity = responsibility_similarity(
                bag(first["title"], first["query"]), bag(second["title"], second["query"])
            )
            pair = BoundaryPair(
                first["query"],
                second["query"],
                0,
                first.get("split", "train"),
                first.get("source_id", first["query"]),
            )
            candidates.append((pair, similarity))
    return candidates


def split_pairs(pairs: list[BoundaryPair]) -> tuple[list[BoundaryPair], list[BoundaryPair], str]:
    """``(train, validation, how)``: the data's own split when its validation part has both labels,
    else one source JD in :data:`HELD_OUT_FRACTION` of the training pairs."""
    validation = [p for p in pairs if p.split == "validation"]
    if {p.label for p in validation} == {0, 1}:
        return [p for p in pairs if p.split != "validation"], validation, "validation split"
    held_out = [zlib.crc32(p.group.encode()) % HELD_OUT_FRACTION == 0 for p in pairs]
    validation = [p for p, hold in zip(pairs, held_out, strict=True) if hold]
    if {p.label for p in validation} != {0, 1}:
        raise TrainingDataError("too few BoundaryHead pairs to hold out a validation set with both labels")
    train = [p for p, hold in zip(pairs, held_out, strict=True) if not hold]
    return train, validation, f"1/{HELD_OUT_FRACTION} of the training JDs"


def embed_pairs(
    model: CREModel, pairs: list[BoundaryPair], max_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-normalised query and candidate embeddings, each distinct text encoded once."""
    texts = sorted({t for p in pairs for t in (p.query, p.candidate)})
    vectors = model.encode(
        texts, kind="jd", normalize=True, convert_to="torch", max_length=max_length, show_progress=True
    )
    row = {text: i for i, text in enumerate(texts)}
    return vectors[[row[p.query] for p in pairs]], vectors[[row[p.candidate] for p in pairs]]


def fit_head(
    head: BoundaryHead,
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    recipe: HeadRecipe,
) -> dict:
    """Train ``head`` on ``(queries, candidates, labels)`` with early stopping; keeps the best epoch.

    Returns:
        ``epochs`` run, ``best_epoch``, ``validation_loss`` (best), ``validation_accuracy`` and
        ``validation_auc`` of the kept weights, and the per-epoch ``history``.
    """
    optimizer = torch.optim.AdamW(
        head.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay
    )
    generator = torch.Generator().manual_seed(recipe.seed)
    best = (math.inf, 0, {k: v.clone() for k, v in head.state_dict().items()})
    history = []
    bar = tqdm(range(1, recipe.max_epochs + 1), desc="BoundaryHead", unit="epoch")
    for epoch in bar:
        head.train()
        order = torch.randperm(len(train[2]), generator=generator)
        for start in range(0, len(order), recipe.batch_size):
            rows = order[start : start + recipe.batch_size]
            loss = F.binary_cross_entropy_with_logits(head(train[0][rows], train[1][rows]), train[2][rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        validation_loss = _loss(head, validation)
        history.append({"epoch": epoch, "train_loss": _loss(head, train), "validation_loss": validation_loss})
        bar.set_postfix(val_loss=f"{validation_loss:.4f}")
        if validation_loss < best[0]:
            best = (validation_loss, epoch, {k: v.clone() for k, v in head.state_dict().items()})
        elif epoch - best[1] >= recipe.patience:
            break
    head.load_state_dict(best[2])
    head.eval()
    with torch.no_grad():
        scores = torch.sigmoid(head(validation[0], validation[1])).numpy()
    labels = validation[2].numpy()
    return {
        "epochs": len(history),
        "best_epoch": best[1],
        "validation_loss": best[0],
        "validation_accuracy": float(((scores >= 0.5) == labels).mean()),
        "validation_auc": roc_auc(scores, labels),
        "history": history,
    }


def _loss(head: BoundaryHead, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> float:
    head.eval()
    with torch.no_grad():
        return float(F.binary_cross_entropy_with_logits(head(data[0], data[1]), data[2]))


def train_boundary_head(base: str | Path, data_dir: str | Path, recipe: HeadRecipe) -> tuple[CREModel, dict]:
    """Add a trained BoundaryHead to the checkpoint ``base``; returns the model and a summary."""
    check_model_source(base)  # a wrong path fails before the data is read
    pairs, selection = build_pairs(data_dir, recipe.thresholds, recipe.seed)
    train, validation, held_out = split_pairs(pairs)
    set_seed(recipe.seed)
    model = load_model(base).eval()
    queries, candidates = embed_pairs(model, train + validation, recipe.max_length)
    labels = torch.tensor([p.label for p in train + validation], dtype=torch.float32)
    cut = len(train)
    options = model.config.boundary
    hidden = recipe.hidden_size or options["hidden_size"]
    dropout = options["dropout"] if recipe.dropout is None else recipe.dropout
    head = BoundaryHead(model.config.output_dim, hidden, dropout)
    report = fit_head(
        head,
        (queries[:cut], candidates[:cut], labels[:cut]),
        (queries[cut:], candidates[cut:], labels[cut:]),
        recipe,
    )
    model.boundary_head = head
    model.config.boundary.update(enabled=True, trained=True, hidden_size=hidden, dropout=dropout)
    metrics = {
        k: report[k] for k in ("validation_loss", "validation_accuracy", "validation_auc", "best_epoch")
    }
    summary = {
        "metrics": metrics,
        "pairs": {
            **selection,
            "train": len(train),
            "validation": len(validation),
            "validation_from": held_out,
        },
        "history": report["history"],
        "recipe": asdict(recipe),
    }
    return model, summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train CRE's BoundaryHead on the frozen Round 2 encoder")
    parser.add_argument(
        "--data", required=True, help="synthesis run folder (role_negatives.jsonl, pairs.jsonl)"
    )
    parser.add_argument("--base", required=True, help="the Round 2 checkpoint")
    parser.add_argument("--out", required=True, help="where to write the checkpoint with the head")
    add_recipe_arguments(parser, HeadRecipe)
    add_hub_arguments(parser)
    return parser


@report_data_errors
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args, recipe = parse_recipe(build_parser(), HeadRecipe, argv)
    model, summary = train_boundary_head(args.base, args.data, recipe)
    folder = save_checkpoint(model, args.out, round_name="full", summary=summary, base_model=str(args.base))
    logger.info("BoundaryHead: %s; checkpoint written to %s", summary["metrics"], folder)
    return 0 if push_checkpoint(folder, args, "full (R2 + BoundaryHead)", summary["metrics"]) else 1


if __name__ == "__main__":
    sys.exit(main())
