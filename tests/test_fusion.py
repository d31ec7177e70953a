"""Reciprocal-rank fusion (common.fusion) on hand-made rankings whose fused order is worked out here."""

from __future__ import annotations

import math

import pytest

from common.fusion import RRF_K, ranked, reciprocal_rank_fusion


def test_fused_order_and_scores_match_the_hand_computation():
    dense = ranked(["a", "b", "c"])
    lexical = ranked(["c", "a", "d"])
    fused = reciprocal_rank_fusion([dense, lexical])
    # a: 1/61 + 1/62 = 0.032522; c: 1/63 + 1/61 = 0.032266; b: 1/62 (dense only); d: 1/63.
    assert fused.doc_ids == ["a", "c", "b", "d"]
    expected = [1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62, 1 / 63]
    assert fused.scores.tolist() == pytest.approx(expected, abs=1e-12)
    assert fused.ranks.tolist() == [[1, 2], [3, 1], [2, 0], [0, 3]]
    assert RRF_K == 60


def test_k_sets_how_much_agreement_outweighs_one_top_rank():
    runs = [ranked(["x", "a", "m"]), ranked(["y", "b", "m"])]
    # k = 0: x, y 1/1; m 1/3 + 1/3; a, b 1/2. k = 60: m 2/63 = 0.0317 beats x, y at 1/61 = 0.0164.
    assert reciprocal_rank_fusion(runs, k=0).doc_ids == ["x", "y", "m", "a", "b"]
    assert reciprocal_rank_fusion(runs, k=0).scores.tolist() == pytest.approx([1, 1, 2 / 3, 1 / 2, 1 / 2])
    assert reciprocal_rank_fusion(runs).doc_ids == ["m", "x", "y", "a", "b"]


def test_tied_scores_share_a_rank_so_the_input_order_does_not_matter():
    scores = {"x": 1.0, "y": 1.0, "z": 0.5, "w": 0.5, "v": 0.1}
    # Competition ranks 1, 1, 3, 3, 5; z alone in the second run lifts it above x and y.
    fused = reciprocal_rank_fusion([scores, ranked(["z"])])
    assert fused.doc_ids == ["z", "x", "y", "w", "v"]
    assert fused.ranks.tolist() == [[3, 1], [1, 0], [1, 0], [3, 0], [5, 0]]
    assert fused.scores[1] == fused.scores[2] == pytest.approx(1 / 61)
    reversed_input = dict(reversed(list(scores.items())))
    again = reciprocal_rank_fusion([ranked(["z"]), reversed_input])
    assert again.doc_ids == fused.doc_ids and again.scores.tolist() == fused.scores.tolist()


def test_equal_rank_multisets_give_bit_identical_scores_whatever_the_run_order():
    # a holds ranks (1, 3, 2), b (2, 1, 3), c (3, 2, 1): the same three terms, summed in another order.
    runs = [ranked(["a", "b", "c"]), ranked(["b", "c", "a"]), ranked(["c", "a", "b"])]
    fused = reciprocal_rank_fusion(runs)
    assert fused.scores[0] == fused.scores[1] == fused.scores[2]
    assert fused.scores[0] == pytest.approx(1 / 61 + 1 / 62 + 1 / 63)
    assert fused.doc_ids == ["a", "b", "c"]
    by_doc = dict(zip(*reciprocal_rank_fusion([runs[0], ranked(["c", "b", "a"])], k=1)[:2], strict=True))
    assert by_doc == pytest.approx({"a": 1 / 2 + 1 / 4, "b": 1 / 3 + 1 / 3, "c": 1 / 4 + 1 / 2})


def test_nan_scores_and_repeated_documents_are_refused_by_name():
    with pytest.raises(ValueError, match=r"run 1: document 'b' has a NaN score"):
        reciprocal_rank_fusion([ranked(["a"]), {"a": 1.0, "b": math.nan}])
    with pytest.raises(ValueError, match="lists a document twice"):
        ranked(["a", "b", "a"])
    with pytest.raises(ValueError, match="at least 0"):
        reciprocal_rank_fusion([ranked(["a"])], k=-1)
    empty = reciprocal_rank_fusion([{}, {}])
    assert empty.doc_ids == [] and empty.ranks.shape == (0, 2)
