"""Paired significance for the difference between two models evaluated on the same queries.

Example:
    >>> import numpy as np
    >>> a, b = np.array([1.0, 0.8, 0.9, 0.7]), np.array([0.5, 0.6, 0.4, 0.7])
    >>> result = paired_bootstrap(a, b, samples=2000, seed=0)
    >>> result["mean_diff"] > 0 and result["ci_low"] > 0
    True
"""

from __future__ import annotations

import numpy as np


def paired_bootstrap(
    scores_a: np.ndarray, scores_b: np.ndarray, samples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Bootstrap CI of ``mean(a − b)`` over queries, plus a paired sign-flip permutation p-value.

    Args:
        scores_a: Per-query scores of model A.
        scores_b: Per-query scores of model B, same queries in the same order.
        samples: Bootstrap resamples (and sign-flip permutations).
        confidence: Width of the percentile interval.
        seed: RNG seed, so reports are reproducible.

    Returns:
        ``mean_diff``, ``ci_low``, ``ci_high``, ``p_value`` (two-sided) and ``n_queries``.

    Raises:
        ValueError: The arrays differ in length or are empty.
    """
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"need two equally long, non-empty score vectors; got shapes {a.shape} and {b.shape}"
        )
    diff = a - b
    rng = np.random.default_rng(seed)
    resampled = diff[rng.integers(0, diff.size, size=(samples, diff.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    # Under H0 (no difference) each query's difference is equally likely to have either sign.
    signs = rng.choice([-1.0, 1.0], size=(samples, diff.size))
    null = np.abs((signs * diff).mean(axis=1))
    p_value = (np.sum(null >= abs(diff.mean()) - 1e-12) + 1) / (samples + 1)
    return {
        "mean_diff": float(diff.mean()),
        "ci_low": float(np.quantile(resampled, alpha)),
        "ci_high": float(np.quantile(resampled, 1 - alpha)),
        "p_value": float(p_value),
        "n_queries": int(diff.size),
    }
