"""Bad input to CREModel.encode, similarity and rerank: a named TypeError/ValueError, never NaN out.

Plain tests pin each case down; property-based tests (hypothesis) throw adversarial inputs at the
three calls and check that each either returns finite output of the right shape, aligned with its
inputs, or raises ValueError/TypeError — and raises exactly when an independent oracle says the input
is bad, so a call that always raised would fail too.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from common.models import build_cre_model
from cre.configuration_cre import InputTypeError
from cre.modeling_cre import CREModel
from tests.test_components import TEXTS, trained_head_model

WIDTH = 32  # the tiny backbones' hidden size
SPECIAL_TOKENS = 2  # the tiny encoder's [CLS] and [SEP]: the smallest max_length
# Few examples: the calls run a (tiny) model and the 2 CPU cores are shared.
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model(tiny_backbone_dir):
    """One encoder CRE model with a trained-looking BoundaryHead, shared by the module's tests."""
    return trained_head_model(
        lambda kind, **options: build_cre_model(str(tiny_backbone_dir(kind)), **options)
    )


@pytest.fixture(scope="module")
def cv_vectors(model):
    return model.encode(TEXTS[1:], kind="cv")


@pytest.fixture(scope="module")
def jd_vector(model):
    return model.encode(TEXTS[0], kind="jd")


def test_wrong_types_are_type_errors_that_old_value_error_handlers_still_catch():
    assert issubclass(InputTypeError, TypeError) and issubclass(InputTypeError, ValueError)


# ---------------------------------------------------------------- rerank


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_rerank_refuses_a_non_finite_cv_embedding_naming_its_row(model, jd_vector, cv_vectors, bad):
    cvs = cv_vectors.copy()
    cvs[1, 5] = bad
    with pytest.raises(ValueError, match=r"cvs\[1\] holds NaN or infinity \(column 5\)"):
        model.rerank(jd_vector, cvs)


def test_rerank_refuses_a_non_finite_jd_embedding(model, jd_vector, cv_vectors):
    jd = jd_vector.copy()
    jd[7] = np.nan
    with pytest.raises(ValueError, match=r"jd holds NaN or infinity \(index 7\)"):
        model.rerank(jd, cv_vectors)
    # float64 values beyond float32's range would become inf: refused as well.
    with pytest.raises(ValueError, match=r"cvs\[0\] holds NaN or infinity"):
        model.rerank(jd_vector, np.full((2, WIDTH), 1e39))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"top_k": -1}, ValueError, "top_k must be an integer >= 0 or None, got -1"),
        ({"top_k": True}, TypeError, "top_k must be an integer >= 0 or None, got bool"),
        ({"top_k": 2.0}, TypeError, "top_k must be an integer .* got float"),
        ({"boundary_weight": "x"}, TypeError, "boundary_weight must be a number >= 0 or None, got str"),
        ({"boundary_weight": float("inf")}, ValueError, "boundary_weight .* not NaN or infinite; got inf"),
        ({"boundary_weight": -0.5}, ValueError, "boundary_weight must be a number >= 0"),
        ({"feedback_weight": float("nan")}, ValueError, "feedback weight .* not NaN or infinite; got nan"),
        ({"feedback_weight": "1"}, TypeError, "feedback weight must be a number >= 0, got str"),
        ({"feedback_top_k": 1.5}, TypeError, "feedback top_k must be an integer >= 0 .* got float"),
        ({"feedback_top_k": False}, TypeError, "feedback top_k must be an integer >= 0 .* got bool"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1, got 0"),
    ],
)
def test_rerank_refuses_bad_options_by_name(model, jd_vector, cv_vectors, options, error, message):
    with pytest.raises(error, match=message):
        model.rerank(jd_vector, cv_vectors, **options)


def test_rerank_top_k_keeps_the_best_and_numpy_integers_count(model, jd_vector, cv_vectors):
    everything = model.rerank(jd_vector, cv_vectors)
    assert len(everything) == len(cv_vectors)  # no candidate dropped
    assert model.rerank(jd_vector, cv_vectors, top_k=0) == []
    assert model.rerank(jd_vector, cv_vectors, top_k=np.int64(2)) == everything[:2]
    assert model.rerank(jd_vector, cv_vectors, top_k=99) == everything


def test_rerank_needs_a_list_of_cvs_not_one_string(model):
    with pytest.raises(TypeError, match=r"got a single string: pass \[cv\]"):
        model.rerank(TEXTS[0], TEXTS[1])
    with pytest.raises(
        ValueError, match=r"cvs must be text or an embedding array of shape \(n, 32\), got set"
    ):
        model.rerank(TEXTS[0], set(TEXTS[1:]))


# ---------------------------------------------------------------- similarity


def test_similarity_accepts_lists_and_single_vectors_and_keeps_the_return_type():
    scores = CREModel.similarity([1.0, 0.0], [[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, [[1.0, 0.0, -1.0]], atol=1e-6)
    tensor = CREModel.similarity(torch.tensor([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (1, 1)
    assert CREModel.similarity(np.zeros((0, 3)), np.ones((2, 3))).shape == (0, 2)


@pytest.mark.parametrize(
    ("a", "b", "error", "message"),
    [
        (np.ones((2, 3)), np.ones((2, 4)), ValueError, "same width: a has 3 columns, b has 4"),
        (None, [[1.0]], TypeError, r"a must be an embedding \(d,\) or a matrix .* got NoneType"),
        ([[1.0]], "nurse", TypeError, r"b must be an embedding .* got str"),
        ([[1.0, 2.0], [3.0]], [[1.0]], TypeError, r"a must be an embedding .* got list"),
        ([[1.0, 0.0]], [[1.0, 0.0], [0.0, np.nan]], ValueError, r"b\[1\] holds NaN or infinity \(column 1\)"),
        (np.ones((2, 3, 4)), np.ones((2, 4)), ValueError, r"a must be .* got shape \(2, 3, 4\)"),
        (np.ones(2), np.float32(1.0), ValueError, r"b must be .* got shape \(\)"),
        (np.ones((2, 0)), np.ones((2, 0)), ValueError, "a has width 0"),
        (np.array([1 + 2j, 0j]), np.ones(2), TypeError, "a must be an embedding"),
    ],
)
def test_similarity_refuses_bad_input_naming_the_argument(a, b, error, message):
    with pytest.raises(error, match=message):
        CREModel.similarity(a, b)


def test_similarity_of_huge_or_tiny_finite_vectors_is_still_right():
    """Scaling before normalising: a plain norm overflows (1e30²) or underflows (1e-40²) to a zero row."""
    vectors = np.array([[3e38, 3e38], [1e-40, 1e-40], [1e30, -1e30]], dtype=np.float32)
    np.testing.assert_allclose(
        CREModel.similarity(vectors, vectors), [[1, 1, 0], [1, 1, 0], [0, 0, 1]], atol=1e-6
    )


# ---------------------------------------------------------------- encode


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ({"nurse", "python engineer"}, "got set: its order is arbitrary"),
        (frozenset({"nurse"}), "got frozenset: its order is arbitrary"),
        ({"nurse": 1}, "got dict: its order is arbitrary"),
        ({"nurse": 1}.keys(), "got dict_keys: its order is arbitrary"),
        (b"nurse", "texts must be a string or a list of strings .* got bytes"),
        (("nurse", b"engineer"), r"texts\[1\] is bytes, not a string"),
    ],
)
def test_encode_refuses_unordered_or_non_text_input_with_a_type_error(model, texts, message):
    with pytest.raises(TypeError, match=message):
        model.encode(texts)


def test_encode_accepts_ordered_collections_in_their_order(model):
    expected = model.encode(TEXTS)
    np.testing.assert_array_equal(model.encode(tuple(TEXTS)), expected)
    np.testing.assert_array_equal(model.encode(text for text in TEXTS), expected)
    np.testing.assert_array_equal(model.encode(np.array(TEXTS)), expected)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": -1}, ValueError, "batch_size must be an integer >= 1, got -1"),
        ({"batch_size": True}, TypeError, "batch_size must be an integer >= 1, got bool"),
        ({"max_length": 0}, ValueError, "max_length must be an integer >= 2 .* got 0"),
        (
            {"max_length": 1},
            ValueError,
            r"max_length must be an integer >= 2 \(room for the tokenizer's 2 special",
        ),
        ({"max_length": -5}, ValueError, "max_length must be an integer >= 2 .* got -5"),
        ({"max_length": 8.0}, TypeError, "max_length must be an integer >= 2 .* got float"),
        ({"rt_iterations": -1}, ValueError, "rt_iterations must be an integer >= 0 or None, got -1"),
        ({"rt_iterations": "2"}, TypeError, "rt_iterations must be an integer >= 0 or None, got str"),
        ({"rt_iterations": True}, TypeError, "rt_iterations must be an integer >= 0 or None, got bool"),
        ({"normalize": "no"}, TypeError, "normalize must be True, False or None, got str"),
        ({"kind": ["jd"]}, ValueError, r"Unknown kind \['jd'\]"),
    ],
)
def test_encode_refuses_bad_options_by_name(model, options, error, message):
    with pytest.raises(error, match=message):
        model.encode(TEXTS, **options)


def test_forward_refuses_negative_rt_iterations(model):
    """sentence-transformers calls forward directly: the same rule holds there."""
    batch = model.tokenize(TEXTS[:2])
    with pytest.raises(ValueError, match="rt_iterations must be an integer >= 0"):
        model(**batch, rt_iterations=-1)


def test_lone_surrogates_are_replaced_and_counted_once_without_echoing_the_text(model):
    # What reading a Latin-1 CV as UTF-8 with errors="surrogateescape" gives: b"caf\xe9" -> "caf\udce9".
    secret = b"Jos\xe9 Garc\xeda, nurse".decode("utf-8", errors="surrogateescape")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors = model.encode(["nurse", secret, "caf\udce9"])
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("3 character(s) in 2 of 3 texts could not be encoded as UTF-8")
    assert "Jos" not in message and "nurse" not in message  # CV text is personal data
    assert caught[0].filename == __file__  # the warning points at the caller's line
    np.testing.assert_allclose(vectors[1], model.encode("Jos\ufffd Garc\ufffda, nurse"), atol=1e-5)


# ---------------------------------------------------------------- property-based tests

# Numbers that are valid options, numbers that are not, and things that are not numbers at all.
ODD_NUMBERS = st.one_of(
    st.none(),
    st.integers(-3, 6),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["2", "", b"1", [1], np.int64(3), np.float32(0.5)]),
)
WEIRD_TEXT = st.one_of(
    st.text(max_size=40),  # any code points, control characters and empty strings included
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=5),
    st.sampled_from(["", " ", "\x00\x1b[31m", "python " * 400, "nurse\udce9", "\ufeffengineer\u202e"]),
    st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3).map(" ".join),
)
NOT_TEXT = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=4), st.just(["nurse"]))


def float32_arrays(shape=None):
    """Arrays whose entries include NaN, ±inf, huge and subnormal values (as float32 or float64)."""
    return hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        shape if shape is not None else hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
    )


def as_container(draw, array: np.ndarray) -> tuple[object, np.ndarray]:
    """The same numbers as numpy, torch or nested lists, and the array the oracle should judge (nested
    lists lose the width of an empty array: ``np.zeros((0, 3)).tolist() == []``)."""
    value = draw(st.sampled_from([lambda x: x, torch.from_numpy, np.ndarray.tolist]))(array)
    return value, np.asarray(value, dtype=array.dtype) if isinstance(value, list) else array


@st.composite
def embedding_inputs(draw):
    """``(value, rows or None)``: rows is the oracle's row count when the value is a valid input."""
    if draw(st.booleans()):
        return draw(st.one_of(NOT_TEXT, st.text(max_size=5), st.just([[1.0, 2.0], [3.0]]))), None
    array = draw(float32_arrays(st.sampled_from([(3,), (2, 3), (0, 3), (1, 3), (2, 4), (2, 3, 3), ()])))
    return as_container(draw, array)


def oracle_rows(array: np.ndarray | None) -> int | None:
    """Rows of a valid ``similarity`` argument (None when it must be refused)."""
    if array is None or array.ndim not in (1, 2) or array.shape[-1] == 0:
        return None
    if not np.isfinite(array.astype(np.float32)).all():
        return None
    return 1 if array.ndim == 1 else array.shape[0]


@PROPERTY
@given(embedding_inputs(), embedding_inputs())
def test_similarity_returns_finite_cosines_or_a_named_error(a, b):
    (a_value, a_array), (b_value, b_array) = a, b
    rows = (oracle_rows(a_array), oracle_rows(b_array))
    valid = None not in rows and a_array.shape[-1] == b_array.shape[-1]
    if not valid:
        with pytest.raises((ValueError, TypeError)):
            CREModel.similarity(a_value, b_value)
        return
    scores = CREModel.similarity(a_value, b_value)
    assert isinstance(scores, torch.Tensor) == isinstance(a_value, torch.Tensor)
    scores = np.asarray(scores)
    assert scores.shape == rows
    assert np.isfinite(scores).all() and (np.abs(scores) <= 1 + 1e-5).all()


def option_is_valid(value, minimum: int = 0, optional: bool = True, integer: bool = True) -> bool:
    """The oracle for top_k / batch_size / weights: independent of the model's own checks."""
    if value is None:
        return optional
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        return False
    return math.isfinite(value) and value >= minimum


@st.composite
def rerank_calls(draw):
    """A rerank call's arguments and whether each part is valid."""
    text_jd = draw(st.booleans())
    if text_jd:
        jd, jd_ok = draw(WEIRD_TEXT), True
    else:
        jd, array = as_container(
            draw, draw(float32_arrays(st.sampled_from([(WIDTH,), (WIDTH - 1,), (1, WIDTH)])))
        )
        jd_ok = array.shape == (WIDTH,) and bool(np.isfinite(array.astype(np.float32)).all())
    kind = draw(st.sampled_from(["texts", "vectors", "junk"]))
    if kind == "texts":
        cvs = draw(st.lists(WEIRD_TEXT, max_size=5))
        rows, cvs_ok = len(cvs), True
        if cvs and draw(st.booleans()):  # a non-string among the CVs
            cvs[draw(st.integers(0, len(cvs) - 1))] = draw(NOT_TEXT)
            cvs_ok = False
    elif kind == "vectors":
        shapes = st.sampled_from([(3, WIDTH), (0, WIDTH), (1, WIDTH), (2, 5), (WIDTH,)])
        cvs, array = as_container(draw, draw(float32_arrays(shapes)))
        rows = array.shape[0]
        # An empty list is an empty pool, however it was made.
        cvs_ok = (array.ndim == 2 and array.shape[1] == WIDTH) or (isinstance(cvs, list) and not cvs)
        cvs_ok = cvs_ok and bool(np.isfinite(array.astype(np.float32)).all())
    else:
        cvs, rows, cvs_ok = (
            draw(st.one_of(st.text(min_size=1, max_size=5), st.integers(), st.none())),
            0,
            False,
        )
    options = {
        "top_k": draw(ODD_NUMBERS),
        "boundary_weight": draw(ODD_NUMBERS),
        "feedback_top_k": draw(ODD_NUMBERS),
        "feedback_weight": draw(ODD_NUMBERS),
        "batch_size": draw(st.one_of(st.just(32), ODD_NUMBERS)),
    }
    options_ok = (
        option_is_valid(options["top_k"])
        and option_is_valid(options["boundary_weight"], integer=False)
        and option_is_valid(options["feedback_top_k"])
        and option_is_valid(options["feedback_weight"], integer=False)
        and option_is_valid(options["batch_size"], minimum=1, optional=False)
    )
    return jd, cvs, options, rows, jd_ok and cvs_ok and options_ok


@PROPERTY
@given(rerank_calls())
def test_rerank_returns_a_finite_ordered_ranking_or_a_named_error(model, call):
    jd, cvs, options, rows, valid = call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncation and replacement warnings are tested above
        if not valid:
            with pytest.raises((ValueError, TypeError)):
                model.rerank(jd, cvs, **options)
            return
        results = model.rerank(jd, cvs, **options)
    top_k = rows if options["top_k"] is None else min(options["top_k"], rows)
    assert len(results) == top_k
    ids = [r["corpus_id"] for r in results]
    assert len(set(ids)) == len(ids) and all(0 <= i < rows for i in ids)
    scores = [r["score"] for r in results]
    assert all(math.isfinite(s) for s in scores) and scores == sorted(scores, reverse=True)
    assert all(-1 - 1e-5 <= r["cosine"] <= 1 + 1e-5 for r in results)


@st.composite
def encode_calls(draw):
    """An encode call's texts and options, and whether each part is valid."""
    texts = draw(
        st.one_of(
            WEIRD_TEXT,
            st.lists(WEIRD_TEXT, max_size=4),
            st.lists(WEIRD_TEXT, min_size=1, max_size=4).map(tuple),
            st.lists(st.one_of(WEIRD_TEXT, NOT_TEXT), min_size=1, max_size=3),
            st.sets(WEIRD_TEXT, min_size=1, max_size=3),
            NOT_TEXT,
        )
    )
    ordered = isinstance(texts, (str, list, tuple))
    items = [texts] if isinstance(texts, str) else list(texts) if ordered else []
    texts_ok = ordered and bool(items) and all(isinstance(t, str) for t in items)
    options = {
        "batch_size": draw(st.one_of(st.integers(1, 3), ODD_NUMBERS)),
        "max_length": draw(st.one_of(st.integers(1, 300), ODD_NUMBERS)),
        "rt_iterations": draw(st.one_of(st.integers(0, 2), ODD_NUMBERS)),
    }
    options_ok = (
        option_is_valid(options["batch_size"], minimum=1, optional=False)
        and option_is_valid(options["max_length"], minimum=SPECIAL_TOKENS)
        and option_is_valid(options["rt_iterations"])
    )
    return texts, items, options, texts_ok and options_ok


@PROPERTY
@given(encode_calls())
def test_encode_returns_finite_unit_vectors_aligned_with_the_texts_or_a_named_error(model, call):
    texts, items, options, valid = call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not valid:
            with pytest.raises((ValueError, TypeError)):
                model.encode(texts, **options)
            return
        vectors = model.encode(texts, **options)
        assert vectors.shape == ((WIDTH,) if isinstance(texts, str) else (len(items), WIDTH))
        vectors = vectors.reshape(-1, WIDTH)
        assert np.isfinite(vectors).all()
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        # Row i is texts[i]: the same vector as encoding that text alone.
        for index in {0, len(items) - 1}:
            np.testing.assert_allclose(vectors[index], model.encode(items[index], **options), atol=1e-5)
