"""Round losses against hand-computed values, and GradCache against one big backward pass."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator

from train.encoding import BatchEncoder
from train.loop import MicroBatch
from train.losses import (
    RankingWeights,
    distillation_loss,
    jd_cv_loss,
    margin_loss,
    multiple_negatives_ranking_loss,
    pair_loss,
    positive_loss,
    profile_loss,
    ranking_loss,
)
from train.r2 import R2Objective, R2Recipe, _RandomState

E = torch.eye(3)  # unit vectors: cos(e_i, e_j) = [i == j]


def unit(angle: float) -> torch.Tensor:
    return torch.tensor([[math.cos(angle), math.sin(angle), 0.0]])


def test_positive_loss_is_squared_cosine_distance():
    assert float(positive_loss(E[:1], E[:1])) == 0.0
    assert float(positive_loss(E[:1], E[1:2])) == pytest.approx(1.0)
    assert float(positive_loss(E[:1], unit(math.pi / 3))) == pytest.approx(0.25)  # (1 - 0.5)²


def test_margin_loss_is_zero_past_the_margin_and_squared_inside_it():
    query, positive = E[:1], E[:1]
    far = E[1:2]  # gap 1.0
    close = unit(math.acos(0.95))  # gap 0.05
    assert float(margin_loss(query, positive, far, margin=0.10)) == 0.0
    assert float(margin_loss(query, positive, close, margin=0.10)) == pytest.approx(0.05**2, abs=1e-7)


def test_ranking_loss_weights_its_parts_and_distills_towards_the_teacher():
    embeddings = {
        "query": E[:1],
        "positive": unit(math.pi / 3),  # cos 0.5
        "negative_role": unit(math.pi / 3),  # gap 0 -> role loss 0.10²
        "negative_constraint": E[:1],  # gap -0.5 -> constraint loss 0.55²
    }
    teacher = {key: value + 0.1 for key, value in embeddings.items()}
    weights = RankingWeights()
    parts = ranking_loss(embeddings, teacher, weights)
    assert float(parts["pos"]) == pytest.approx(0.25)
    assert float(parts["role"]) == pytest.approx(0.01)
    assert float(parts["constraint"]) == pytest.approx(0.55**2)
    assert float(parts["distill"]) == pytest.approx(4 * 0.01)  # four MSEs of 0.1²
    expected = 1.0 * 0.25 + 0.25 * 0.01 + 0.10 * 0.55**2 + 0.05 * 0.04
    assert float(parts["loss"]) == pytest.approx(expected)
    pair = pair_loss({"query": E[:1], "positive": E[:1]}, {"query": E[:1], "positive": E[:1]}, weights)
    assert float(pair["loss"]) == 0.0
    assert float(distillation_loss([E], [E])) == 0.0


def test_profile_loss_pulls_openings_to_their_profiles_and_copies_the_profiles_ranking():
    weights = RankingWeights(pair=1.0, structure=1.0, structure_temperature=0.5)
    profiles = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    aligned = profile_loss(profiles * 3, profiles, weights)  # scale does not matter: cosines
    assert float(aligned["pos"]) == pytest.approx(0.0, abs=1e-6)
    assert float(aligned["structure"]) == pytest.approx(0.0, abs=1e-6)
    swapped = profile_loss(profiles[[2, 1, 0]], profiles, weights)
    teacher = F.softmax(profiles @ profiles.T / 0.5, dim=-1)
    student = F.log_softmax(profiles[[2, 1, 0]] @ profiles.T / 0.5, dim=-1)
    expected_kl = float((teacher * (teacher.log() - student)).sum() / 3)
    assert float(swapped["structure"]) == pytest.approx(expected_kl, rel=1e-5)
    assert float(swapped["pos"]) == pytest.approx(float(positive_loss(profiles[[2, 1, 0]], profiles)))
    assert float(swapped["loss"]) == pytest.approx(float(swapped["pos"]) + expected_kl, rel=1e-5)


def test_multiple_negatives_ranking_loss_is_cross_entropy_over_all_candidates():
    torch.manual_seed(0)
    queries, positives, negatives = torch.randn(3, 8), torch.randn(5, 8), torch.randn(4, 8)
    candidates = F.normalize(torch.cat([positives, negatives]), dim=-1)
    logits = F.normalize(queries, dim=-1) @ candidates.T / 0.05
    expected = F.cross_entropy(logits, torch.tensor([2, 3, 4]))
    got = multiple_negatives_ranking_loss(queries, positives, negatives, temperature=0.05, query_offset=2)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    # A query identical to its positive and orthogonal to the rest scores a lower loss.
    assert float(multiple_negatives_ranking_loss(E, E, None, 0.05)) < 1e-6


def test_symmetric_r2_loss_adds_each_cv_picking_its_own_jd():
    torch.manual_seed(0)
    embeddings = {name: torch.randn(4, 8) for name in ("query", "positive", "negative")}
    accelerator = Accelerator(cpu=True)
    one_way = R2Objective(None, R2Recipe()).loss(embeddings, accelerator)
    both_ways = R2Objective(None, R2Recipe(symmetric=True)).loss(embeddings, accelerator)
    cv_to_jd = F.cross_entropy(
        F.normalize(embeddings["positive"], dim=-1) @ F.normalize(embeddings["query"], dim=-1).T / 0.05,
        torch.arange(4),
    )
    assert float(cv_to_jd) > 0.1
    torch.testing.assert_close(both_ways, one_way + cv_to_jd)


def test_pair_steps_take_their_own_temperature_and_a_temperature_must_be_positive():
    torch.manual_seed(0)
    embeddings = {name: torch.randn(4, 8) for name in ("query", "positive")}
    accelerator = Accelerator(cpu=True)
    shared = R2Objective(None, R2Recipe(temperature=0.1)).loss(embeddings, accelerator)
    objective = R2Objective(None, R2Recipe(temperature=0.1, pair_temperature=0.05))
    torch.testing.assert_close(objective.loss(embeddings, accelerator), shared)  # triplets keep τ
    pairs = objective.loss(embeddings, accelerator, temperature=objective.recipe.pair_temperature)
    torch.testing.assert_close(
        pairs, R2Objective(None, R2Recipe(temperature=0.05)).loss(embeddings, accelerator)
    )
    assert float(pairs) != pytest.approx(float(shared))
    # A question step of the objective uses the pair temperature.
    leaves = {name: value.clone().requires_grad_() for name, value in embeddings.items()}
    objective.encoder = lambda model, fields, device: leaves
    batch = MicroBatch("questions", [{"query": "q", "positive": "p"}] * 4)
    assert objective.pairs(None, batch, accelerator)["loss"] == pytest.approx(float(pairs))
    for bad in ({"temperature": 0.0}, {"pair_temperature": -0.05}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be > 0"):
            R2Recipe(**bad)


def test_jd_cv_loss_ranks_jds_to_cvs_and_back_and_adds_the_weighted_anchors():
    jds, cvs = E[:2], E[:2]  # each JD identical to its CV, orthogonal to the other
    one_way = math.log(1 + math.exp(-1))  # τ 1: -log(e / (e + 1))
    assert float(jd_cv_loss(jds, cvs, cvs, temperature=1.0)) == pytest.approx(one_way)
    # A hard negative equal to the positive makes a third candidate of equal score: -log(e / (2e + 1)).
    with_negative = jd_cv_loss(jds, cvs, cvs, E[:1], temperature=1.0)
    rows = [math.log((2 * math.e + 1) / math.e), math.log((math.e + 2) / math.e)]
    assert float(with_negative) == pytest.approx(sum(rows) / 2)
    both_ways = jd_cv_loss(jds, cvs, cvs, temperature=1.0, pool_queries=jds)
    assert float(both_ways) == pytest.approx(2 * one_way)
    # An anchor pointing the opposite way: (1 − cos 180°)² = 4; one row, so its ranking KL is 0.
    anchored = [(-E[:1], E[:1]), (E[:1], E[:1])]
    total = jd_cv_loss(jds, cvs, cvs, temperature=1.0, anchored=anchored, anchor_weight=0.5)
    assert float(total) == pytest.approx(one_way + 0.5 * 4)
    # Rows of this process start at ``offset`` in gathered pools: the others' rows are negatives too.
    gathered = jd_cv_loss(jds, cvs, E, temperature=1.0, offset=1)
    labels = torch.tensor([1, 2])
    assert float(gathered) == pytest.approx(float(F.cross_entropy(jds @ E.T, labels)))


def objective_gradients(model, batch: MicroBatch, cache_chunk: int, base=None) -> dict[str, torch.Tensor]:
    model.zero_grad()
    anchored = base is not None  # the JDs and their openings
    recipe = R2Recipe(
        cache_chunk=cache_chunk, max_length=32, anchor_weight=float(anchored), anchor_openings=anchored
    )
    R2Objective(BatchEncoder.for_model(model, 32), recipe, base)(model, batch, Accelerator(cpu=True))
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("anchored", [False, True], ids=["plain", "jd-anchor"])
def test_cached_loss_gives_the_gradients_of_one_big_pass(tiny_cre, anchored):
    model = tiny_cre("encoder", cnn={"enabled": True})  # eval mode: no dropout in either pass
    # The anchor's frozen base: other weights, so that its targets differ from the trained embeddings
    # (the factory builds the same weights every time).
    base = tiny_cre("encoder", cnn={"enabled": True}).requires_grad_(False) if anchored else None
    if base is not None:
        torch.manual_seed(0)
        with torch.no_grad():
            for parameter in base.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))
    words = ["python developer", "nurse ward", "sales manager", "data analyst sql", "teacher students"]
    batch = MicroBatch(
        "jdcv",
        [
            {
                "query": f"{w}\n\nour {w} team\n\nyou {w}",
                "positive": f"senior {w}",
                "negative": f"intern {words[i - 1]}",
            }
            for i, w in enumerate(words)
        ],
    )
    full = objective_gradients(model, batch, cache_chunk=0, base=base)
    cached = objective_gradients(model, batch, cache_chunk=2, base=base)
    assert full.keys() == cached.keys() and len(full) > 10
    for name, gradient in full.items():
        torch.testing.assert_close(cached[name], gradient, rtol=1e-4, atol=1e-6, msg=name)
    if anchored:  # the anchor took part
        plain = objective_gradients(model, batch, cache_chunk=0)
        assert not all(torch.allclose(plain[name], gradient) for name, gradient in full.items())


def test_random_state_replays_the_same_dropout_masks():
    state = _RandomState(torch.device("cpu"))
    first = F.dropout(torch.ones(100), 0.5, training=True)
    outer = torch.get_rng_state()
    with state.replay():
        replayed = F.dropout(torch.ones(100), 0.5, training=True)
        torch.rand(7)  # draws inside the replay must not leak out
    assert torch.equal(first, replayed)
    assert torch.equal(torch.get_rng_state(), outer)


def test_a_candidate_that_also_answers_a_query_is_no_negative_of_it():
    torch.manual_seed(0)
    queries, positives, negatives = torch.randn(3, 8), torch.randn(3, 8), torch.randn(2, 8)
    exclude = torch.zeros(3, 3, dtype=torch.bool)
    exclude[0, 1] = True  # positive 1 also answers query 0
    exclude[2, 2] = True  # a query's own positive always stays
    loss = multiple_negatives_ranking_loss(queries, positives, negatives, 0.1, exclude=exclude)
    # Query 0's term ignores positive 1: the same as scoring query 0 without that column.
    logits = F.normalize(queries, dim=-1) @ F.normalize(torch.cat([positives, negatives]), dim=-1).T / 0.1
    first = F.cross_entropy(logits[:1, [0, 2, 3, 4]], torch.tensor([0]))
    rest = F.cross_entropy(logits[1:], torch.tensor([1, 2]))
    torch.testing.assert_close(loss, (first + 2 * rest) / 3)
    torch.testing.assert_close(
        jd_cv_loss(queries, positives, positives, negatives, 0.1, exclude=exclude), loss
    )
    with pytest.raises(ValueError, match=r"exclude must be \(queries, positives\) = \(3, 3\), got \(3, 5\)"):
        multiple_negatives_ranking_loss(
            queries, positives, negatives, 0.1, exclude=torch.zeros(3, 5, dtype=torch.bool)
        )
