"""Training losses of CRE's rounds, on raw (not normalised) sentence embeddings.

* Round 1 (JD–JD): :func:`pair_loss` for the card warm-up and semantic alignment stages, and
  :func:`ranking_loss` for the main ranking stage, both with :func:`distillation_loss` towards the
  frozen original model.
* Round 2 (JD–CV): :func:`jd_cv_loss`, the :func:`multiple_negatives_ranking_loss` over explicit hard
  negatives plus the other rows' candidates (in-batch negatives), optionally in both directions and
  with :func:`profile_loss` anchors towards the frozen starting model.

Example:
    >>> q, c = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    >>> round(float(positive_loss(q, c)), 4)  # (1 - cos 45°)²
    0.0858
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from train.recipes import option


@dataclass
class RankingWeights:
    """Weights and margins of Round 1's losses (defaults from the CRE recipe).

    Attributes:
        pair: ``w_p``, weight of ``(1 − cos(q, c+))²``.
        role: ``w_r``, weight of the role-boundary margin loss.
        constraint: ``w_k``, weight of the constraint-conflict margin loss.
        distill: ``w_d``, weight of the MSE towards the frozen model's embeddings.
        role_margin: ``m_r``, how much closer the positive must be than a role-boundary negative.
        constraint_margin: ``m_k``, likewise for a constraint-conflict negative.
        structure: ``w_s``, weight of the in-batch similarity distillation of the profile stage.
        structure_temperature: ``τ_s`` of that distillation's softmax.
    """

    pair: float = option(1.0, "w_p, weight of (1 − cos(q, c+))²", flag="--weight-pair")
    role: float = option(0.25, "w_r, weight of the role-boundary margin loss", flag="--weight-role")
    constraint: float = option(
        0.10, "w_k, weight of the constraint-conflict margin loss", flag="--weight-constraint"
    )
    distill: float = option(0.05, "w_d, weight of the MSE towards the frozen model", flag="--weight-distill")
    role_margin: float = option(0.10, "m_r, margin over a role-boundary negative")
    constraint_margin: float = option(0.05, "m_k, margin over a constraint-conflict negative")
    structure: float = option(
        1.0, "w_s, weight of the profile stage's in-batch ranking KL", flag="--weight-structure"
    )
    structure_temperature: float = option(0.05, "τ_s of that KL's softmax")


def positive_loss(query: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """``mean (1 − cos(q, c))²``: pulls matching texts together, gently once they are close."""
    return (1 - F.cosine_similarity(query, candidate, dim=-1)).pow(2).mean()


def margin_loss(
    query: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """``mean max(0, m − [cos(q, c+) − cos(q, c−)])²``: the positive must beat the negative by ``m``."""
    gap = F.cosine_similarity(query, positive, dim=-1) - F.cosine_similarity(query, negative, dim=-1)
    return F.relu(margin - gap).pow(2).mean()


def distillation_loss(students: list[torch.Tensor], teachers: list[torch.Tensor]) -> torch.Tensor:
    """``Σ MSE(e, e^t)`` over matching embeddings of the trained and the frozen original model."""
    return sum(F.mse_loss(student, teacher) for student, teacher in zip(students, teachers, strict=True))


def pair_loss(
    embeddings: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], weights: RankingWeights
) -> dict[str, torch.Tensor]:
    """``w_p·(1 − cos(q, c))² + w_d·(MSE(e_q, e_q^t) + MSE(e_c, e_c^t))``.

    Args:
        embeddings: ``query`` and ``positive`` embeddings of the trained model.
        teacher: The same keys from the frozen original model.
        weights: Loss weights.

    Returns:
        ``loss`` (the total) and its parts ``pos`` and ``distill`` (for logging).
    """
    parts = {
        "pos": positive_loss(embeddings["query"], embeddings["positive"]),
        "distill": distillation_loss(list(embeddings.values()), [teacher[k] for k in embeddings]),
    }
    parts["loss"] = weights.pair * parts["pos"] + weights.distill * parts["distill"]
    return parts


def profile_loss(
    opening: torch.Tensor, profile: torch.Tensor, weights: RankingWeights
) -> dict[str, torch.Tensor]:
    """Privileged-profile distillation: ``w_p·(1 − cos(o_i, p_i^t))² + w_s·KL(softmax(P/τ_s) ‖ softmax(O/τ_s))``.

    A JD's opening (title and first paragraph) learns to embed where the frozen model puts the whole
    JD (``p^t``), and to rank the batch's whole JDs as they rank each other (``P_ij = cos(p_i^t, p_j^t)``,
    ``O_ij = cos(o_i, p_j^t)``). Short texts thereby carry what the tasks and skills of their kind
    of job say.

    Args:
        opening: Trained-model embeddings of the openings, ``(n, d)``.
        profile: Frozen-model embeddings of the whole JDs, ``(n, d)``.
        weights: ``pair``, ``structure`` and ``structure_temperature`` are used.

    Returns:
        ``loss`` and its parts ``pos`` and ``structure``.

    Example:
        >>> p = torch.eye(3)
        >>> round(float(profile_loss(p, p, RankingWeights())["pos"]), 6)
        0.0
    """
    opening, profile = F.normalize(opening, dim=-1), F.normalize(profile, dim=-1)
    temperature = weights.structure_temperature
    teacher = F.log_softmax(profile @ profile.T / temperature, dim=-1)
    student = F.log_softmax(opening @ profile.T / temperature, dim=-1)
    parts = {
        "pos": positive_loss(opening, profile),
        "structure": F.kl_div(student, teacher, log_target=True, reduction="batchmean"),
    }
    parts["loss"] = weights.pair * parts["pos"] + weights.structure * parts["structure"]
    return parts


def ranking_loss(
    embeddings: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], weights: RankingWeights
) -> dict[str, torch.Tensor]:
    """``w_p·L_pos + w_r·L_role + w_k·L_cons + w_d·L_distill`` over (q, c+, c−_role, c−_cons).

    Args:
        embeddings: ``query``, ``positive``, ``negative_role`` and ``negative_constraint`` embeddings.
        teacher: The same keys from the frozen original model.
        weights: Loss weights and margins.

    Returns:
        ``loss`` and its parts ``pos``, ``role``, ``constraint`` and ``distill``.
    """
    query, positive = embeddings["query"], embeddings["positive"]
    parts = {
        "pos": positive_loss(query, positive),
        "role": margin_loss(query, positive, embeddings["negative_role"], weights.role_margin),
        "constraint": margin_loss(
            query, positive, embeddings["negative_constraint"], weights.constraint_margin
        ),
        "distill": distillation_loss(list(embeddings.values()), [teacher[k] for k in embeddings]),
    }
    parts["loss"] = (
        weights.pair * parts["pos"]
        + weights.role * parts["role"]
        + weights.constraint * parts["constraint"]
        + weights.distill * parts["distill"]
    )
    return parts


def multiple_negatives_ranking_loss(
    queries: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    query_offset: int = 0,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE over cosine similarities: each query against every positive and hard negative.

    Query ``i`` must pick its own positive (column ``query_offset + i``) among all positives and all
    negatives, so the other rows' candidates act as in-batch negatives, except those ``exclude`` marks.

    Args:
        queries: ``(n, d)`` query embeddings.
        positives: ``(m, d)`` positive embeddings, ``m ≥ n`` (more when gathered from other processes).
        negatives: ``(k, d)`` explicit hard negatives, or ``None``.
        temperature: ``τ``; logits are ``cos / τ``.
        query_offset: Where this batch's positives start among ``positives`` (a process's rank offset
            when candidates are gathered across processes).
        exclude: ``(n, m)`` booleans: positives that are no negatives of a query (they answer it too),
            left out of its softmax; a query's own positive always stays.

    Returns:
        The mean cross-entropy.
    """
    candidates = positives if negatives is None else torch.cat([positives, negatives])
    logits = F.normalize(queries, dim=-1) @ F.normalize(candidates, dim=-1).T / temperature
    labels = torch.arange(queries.shape[0], device=queries.device) + query_offset
    if exclude is not None:
        if exclude.shape != (queries.shape[0], positives.shape[0]):
            raise ValueError(
                f"exclude must be (queries, positives) = {(queries.shape[0], positives.shape[0])}, got {tuple(exclude.shape)}"
            )
        mask = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)  # hard negatives stay
        mask[:, : exclude.shape[1]] = exclude
        mask[torch.arange(queries.shape[0], device=mask.device), labels] = False
        logits = logits.masked_fill(mask, float("-inf"))
    return F.cross_entropy(logits, labels)


JD_ANCHOR = (
    RankingWeights()
)  # Round 2's JD anchor: (1 − cos)² plus the in-batch ranking KL at τ 0.05, weight 1 each


def jd_cv_loss(
    queries: torch.Tensor,
    positives: torch.Tensor,
    pool_positives: torch.Tensor,
    pool_negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    offset: int = 0,
    pool_queries: torch.Tensor | None = None,
    anchored: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
    anchor_weight: float = 0.0,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Round 2's objective: JD→CV ranking, optionally CV→JD ranking, plus ``anchor_weight`` × each anchor.

    ``L = MNRL(q → P ∪ N) [+ MNRL(p → Q)] + Σ_a anchor_weight · profile_loss(e_a, t_a)``, the anchors
    with :data:`JD_ANCHOR`'s weights. The pools are every candidate the batch's rows compete with (all
    processes' rows when gathered, this process's starting at ``offset``).

    Args:
        queries: This process's JD embeddings, ``(n, d)``.
        positives: This process's matching CV embeddings, ``(n, d)``.
        pool_positives: The positive CVs to pick from, ``(m, d)``, ``m ≥ n``.
        pool_negatives: The hard-negative CVs to pick from, or ``None``.
        temperature: ``τ`` of both ranking terms.
        offset: Where this process's rows start in the pools.
        pool_queries: The JDs each positive CV must pick its own among (the symmetric term), or ``None``.
        anchored: ``(embeddings, frozen targets)`` pairs, e.g. the JDs and their openings.
        anchor_weight: Weight of each anchor term.
        exclude: ``(n, m)`` booleans: pool positives that also answer a query, left out of its negatives.

    Returns:
        The scalar loss.

    Example:
        >>> e = torch.eye(2)
        >>> round(float(jd_cv_loss(e, e, e, temperature=1.0)), 4)  # log(1 + 1/e)
        0.3133
    """
    loss = multiple_negatives_ranking_loss(
        queries, pool_positives, pool_negatives, temperature, offset, exclude
    )
    if pool_queries is not None:
        loss = loss + multiple_negatives_ranking_loss(positives, pool_queries, None, temperature, offset)
    # Added one by one, in order: the sum of the terms stays the same to the last bit.
    for embeddings, targets in anchored:
        loss = loss + anchor_weight * profile_loss(embeddings, targets, JD_ANCHOR)["loss"]
    return loss
