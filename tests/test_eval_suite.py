"""The development suite: the cvseeker and jobnorm benchmarks on tiny files written here (never the
real evaluation data), hand-computed metrics, the macro average and its bootstrap interval, the
acceptance rule and the zero-shot reference of a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval.benchmarks import (
    Benchmark,
    DataNotFoundError,
    cvseeker_benchmark,
    jobnorm_benchmark,
    load_benchmark,
)
from eval.compare import build_report, markdown_table
from eval.ir_data import DatasetFormatError, IRDataset
from eval.runner import RunResult, evaluate, evaluate_bm25
from eval.stats import bootstrap_means, percentile_interval
from eval.suite import (
    MAIN_METRICS,
    SUITE,
    SuiteBenchmark,
    average_rows,
    recipe_is_acceptable,
    references_for,
    suite_contrast,
    suite_contrasts,
    zero_shot_reference,
)
from tests.test_eval_benchmarks import write_tsv
from tests.test_eval_protocols import BagOfWordsEncoder


def write_csv(path, header, rows):
    write_tsv(path, header, rows, delimiter=",")


@pytest.fixture
def data_dir(tmp_path):
    # Passages and questions over the bag-of-words vocabulary, so rankings are known by construction.
    (tmp_path / "cvseeker").mkdir()
    (tmp_path / "cvseeker" / "val_dataset.json").write_text(
        json.dumps(
            {
                "queries": {"q1": "python senior", "q2": "nurse", "q3": "java"},
                "corpus": {
                    "p1": "python python senior",
                    "p2": "nurse nurse",
                    "p3": "java chef",
                    "p4": "chef",
                },
                # q3's passage is p4 (chef only): the Java question ranks p3 first, p4 second.
                "relevant_docs": {"q1": ["p1"], "q2": ["p2"], "q3": ["p4"]},
                "mode": "text",
            }
        )
    )
    write_csv(
        tmp_path / "esco" / "occupations_en.csv",
        ["conceptUri", "iscoGroup", "preferredLabel", "description"],
        [
            ("u:py", "2512", "python", "Writes code."),
            ("u:nurse", "2221", "nurse", "Cares."),
            ("u:chef", "3434", "chef", "Cooks."),
        ],
    )
    write_csv(
        tmp_path / "jobnorm" / "titles_validation.csv",
        ["", "vacancyTitle", "conceptUri"],
        [(0, "senior python", "u:py"), (1, "nurse", "u:nurse"), (2, "python chef", "u:nurse")],
    )
    return tmp_path


def test_cvseeker_ranks_every_passage_with_query_and_cv_kinds(data_dir):
    bench = cvseeker_benchmark(data_dir)
    assert (bench.protocol, bench.query_kind, bench.doc_kind, bench.task) == (
        "global",
        "query",
        "cv",
        "jd-cv",
    )
    assert len(bench.dataset.corpus) == 4 and bench.top_k == 10
    encoder = BagOfWordsEncoder()
    (row,) = evaluate(encoder, bench)
    assert ("cv", 4) in encoder.calls and ("query", 3) in encoder.calls
    # q1, q2 hit at rank 1; q3's passage is at rank 2: hit@1 2/3, hit@5 1, MRR@10 (1 + 1 + 1/2) / 3.
    assert row.metrics["hit_rate@1"] == pytest.approx(2 / 3)
    assert row.metrics["hit_rate@5"] == row.metrics["hit_rate@10"] == 1.0
    assert row.metrics["mrr@10"] == pytest.approx(2.5 / 3)


def test_jobnorm_titles_rank_esco_labels(data_dir):
    bench = jobnorm_benchmark(data_dir)
    assert (bench.query_kind, bench.doc_kind, bench.task) == ("jd", "jd", "title")
    assert bench.dataset.queries == {"title-1": "senior python", "title-2": "nurse", "title-3": "python chef"}
    assert bench.dataset.corpus == {"u:py": "python", "u:nurse": "nurse", "u:chef": "chef"}
    assert bench.dataset.qrels["title-3"] == {"u:nurse": 1.0}
    (row,) = evaluate(BagOfWordsEncoder(), bench)
    # "python chef" (tagged nurse) is close to the python and chef labels: the nurse comes third.
    assert row.metrics["mrr@100"] == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert row.per_query["recall@5"].tolist() == [1.0, 1.0, 1.0]


def test_jobnorm_names_the_row_of_an_unknown_occupation_or_empty_title(data_dir):
    path = data_dir / "jobnorm" / "titles_validation.csv"
    write_csv(path, ["vacancyTitle", "conceptUri"], [("nurse", "u:nurse"), ("cook", "u:gone")])
    with pytest.raises(DatasetFormatError, match=r"data row 2: conceptUri 'u:gone' is not an occupation"):
        jobnorm_benchmark(data_dir)
    write_csv(path, ["vacancyTitle", "conceptUri"], [(" ", "u:nurse")])
    with pytest.raises(DatasetFormatError, match="data row 1: empty vacancyTitle"):
        jobnorm_benchmark(data_dir)
    write_csv(path, ["title", "conceptUri"], [("nurse", "u:nurse")])
    with pytest.raises(DatasetFormatError, match=r"missing column\(s\) \['vacancyTitle'\]"):
        jobnorm_benchmark(data_dir)


def test_missing_evaluation_files_are_a_clear_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("CRE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=r"cvseeker/val_dataset.json not found"):
        load_benchmark("cvseeker")
    with pytest.raises(DataNotFoundError, match=r"esco/occupations_en.csv not found"):
        load_benchmark("jobnorm")
    monkeypatch.setenv("CRE_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="set CRE_DATA_DIR"):
        load_benchmark("cvseeker")


def test_bm25_row_on_a_global_benchmark_excludes_the_query_itself():
    corpus = {"a": "python java", "b": "python", "c": "nurse"}
    data = IRDataset.from_dicts({"a": "python java"}, corpus, {"a": {"b": 1}})
    bench = Benchmark("toy", data, "global", {"recall": [1], "mrr": [2]}, exclude_self=True)
    row = evaluate_bm25(bench)
    assert row.model == "bm25 (pool order)" and row.metrics == {"recall@1": 1.0, "mrr@2": 1.0}


def test_suite_names_real_benchmarks_and_their_metrics(data_dir):
    assert [e.name for e in SUITE] == [
        "onet",
        "esco",
        "resumes",
        "resumes-brief",
        "resumes-duties",
        "resumes-titles",
        "cvseeker",
        "jobnorm",
    ]
    for name in ("cvseeker", "jobnorm"):
        bench = load_benchmark(name, data_dir)
        assert MAIN_METRICS[name] in [f"{m}@{k}" for m, cutoffs in bench.metrics.items() for k in cutoffs]


TOY_SUITE = (SuiteBenchmark("a", "m@1", "toy"), SuiteBenchmark("b", "m@1", "toy"))


def result(model, benchmark, scores, metric="m@1"):
    ids = [f"q{i}" for i in range(len(scores))]
    return RunResult(
        model, benchmark, {metric: float(np.mean(scores))}, {metric: np.array(scores, float)}, ids
    )


def toy_results():
    return [
        result("base", "a", [0.0, 0.5, 1.0, 0.5]),
        result("base", "b", [1.0, 1.0, 0.0]),
        result("ckpt", "a", [0.5, 1.0, 1.0, 0.5]),  # Δ +0.25 on a
        result("ckpt", "b", [1.0, 0.0, 0.0]),  # Δ −1/3 on b
        result("ckpt [cos+1·feedback@3]", "b", [1.0, 1.0, 1.0]),  # Δ +1/3 on b vs base, a from ckpt
    ]


def test_macro_average_is_the_mean_of_per_benchmark_deltas_with_a_paired_bootstrap_interval():
    contrast = suite_contrast(toy_results(), "ckpt", "base", TOY_SUITE, samples=500, seed=3)
    assert contrast["benchmarks"]["a"]["delta"] == pytest.approx(0.25)
    assert contrast["benchmarks"]["b"]["delta"] == pytest.approx(-1 / 3)
    assert contrast["macro"]["delta"] == pytest.approx((0.25 - 1 / 3) / 2)
    # The interval: each replicate resamples every benchmark's queries independently and averages
    # the per-benchmark Δs; the same generator feeds the benchmarks in suite order.
    rng = np.random.default_rng(3)
    a = bootstrap_means(np.array([0.5, 0.5, 0.0, 0.0]), 500, rng)
    b = bootstrap_means(np.array([0.0, -1.0, 0.0]), 500, rng)
    expected = percentile_interval((a + b) / 2)
    assert (contrast["macro"]["ci_low"], contrast["macro"]["ci_high"]) == pytest.approx(expected)
    assert (contrast["benchmarks"]["a"]["ci_low"], contrast["benchmarks"]["a"]["ci_high"]) == pytest.approx(
        percentile_interval(a)
    )
    assert contrast["benchmarks"]["a"]["ci_low"] == 0.0  # a replicate of only zero differences
    assert not contrast["benchmarks"]["b"]["significantly_worse"]  # one query lost out of three
    assert contrast["macro"]["ci_low"] < contrast["macro"]["delta"] < contrast["macro"]["ci_high"]
    assert not contrast["acceptable"]  # macro Δ below 0


def test_a_benchmark_is_significantly_worse_when_its_whole_interval_is_below_zero():
    results = [result("base", "a", [1.0] * 6), result("ckpt", "a", [0.5, 0.0, 0.5, 0.5, 0.0, 0.5])]
    results += [result("base", "b", [0.0] * 6), result("ckpt", "b", [1.0] * 6)]
    contrast = suite_contrast(results, "ckpt", "base", TOY_SUITE, samples=200)
    assert contrast["benchmarks"]["a"]["ci_high"] < 0 and contrast["benchmarks"]["a"]["significantly_worse"]
    assert contrast["macro"]["delta"] == pytest.approx((-4 / 6 + 1) / 2)
    assert not contrast["acceptable"]  # macro up, but benchmark a is significantly worse
    assert recipe_is_acceptable({**contrast, "benchmarks": {"b": contrast["benchmarks"]["b"]}})


def test_variant_rows_take_their_model_row_where_the_variant_does_not_exist():
    contrast = suite_contrast(toy_results(), "ckpt [cos+1·feedback@3]", "base", TOY_SUITE, samples=200)
    assert contrast["benchmarks"]["a"]["delta"] == pytest.approx(0.25)  # the ckpt row on a
    assert contrast["benchmarks"]["b"]["delta"] == pytest.approx(1 / 3)
    assert contrast["acceptable"]
    rows = [
        (c["model"], c["reference"]) for c in suite_contrasts(toy_results(), {"ckpt": "base"}, TOY_SUITE, 100)
    ]
    assert rows == [
        ("ckpt", "base"),
        ("ckpt [cos+1·feedback@3]", "base"),
        ("ckpt [cos+1·feedback@3]", "ckpt"),
    ]


def test_a_variant_averaged_over_seeds_takes_each_seeds_row_where_the_variant_does_not_exist():
    results = [
        *toy_results(),
        result("ckpt2", "a", [0.0, 0.5, 1.0, 0.5]),
        result("ckpt2", "b", [0.0, 0.0, 0.0]),
    ]
    results.append(result("ckpt2 [cos+1·feedback@3]", "b", [1.0, 1.0, 0.0]))
    mean = {
        r.benchmark: r
        for r in average_rows(results, ["ckpt [cos+1·feedback@3]", "ckpt2 [cos+1·feedback@3]"], "m")
    }
    assert mean["a"].per_query["m@1"].tolist() == [0.25, 0.75, 1.0, 0.5]  # the seeds' plain rows on a
    assert mean["b"].per_query["m@1"].tolist() == [1.0, 1.0, 0.5]  # their variants on b
    contrast = suite_contrast([*results, *mean.values()], "m", "base", TOY_SUITE, samples=100)
    assert contrast["missing"] == [] and contrast["benchmarks"]["a"]["delta"] == pytest.approx(0.125)


def test_hybrid_rows_are_contrasted_with_the_reference_and_with_the_dense_row_they_fuse():
    results = [
        *toy_results(),
        result("ckpt + bm25 (rrf)", "a", [1.0, 1.0, 1.0, 0.5]),
        result("ckpt + bm25 (rrf)", "b", [1.0, 0.0, 1.0]),
        result("ckpt + bm25 (rrf) [cos+1·feedback@3]", "b", [0.0, 0.0, 0.0]),
    ]
    contrasts = suite_contrasts(results, {"ckpt": "base", "base": "base"}, TOY_SUITE, 100)
    assert [(c["model"], c["reference"]) for c in contrasts] == [
        ("ckpt", "base"),
        ("ckpt [cos+1·feedback@3]", "base"),
        ("ckpt [cos+1·feedback@3]", "ckpt"),
        ("ckpt + bm25 (rrf)", "base"),
        ("ckpt + bm25 (rrf)", "ckpt"),
        ("ckpt + bm25 (rrf) [cos+1·feedback@3]", "base"),
        ("ckpt + bm25 (rrf) [cos+1·feedback@3]", "ckpt [cos+1·feedback@3]"),
    ]
    fused_vs_dense = contrasts[-1]["benchmarks"]
    # On a the hybrid variant takes its model's hybrid row, the dense variant the ckpt row.
    assert fused_vs_dense["a"]["delta"] == pytest.approx((0.5 + 0.0 + 0.0 + 0.0) / 4)
    assert fused_vs_dense["b"]["delta"] == pytest.approx(-1.0)
    assert contrasts[3]["benchmarks"]["b"]["delta"] == pytest.approx(0.0)


def test_a_partial_suite_is_never_acceptable_and_different_queries_are_refused():
    results = [result("base", "a", [0.0, 0.0]), result("ckpt", "a", [1.0, 1.0])]
    contrast = suite_contrast(results, "ckpt", "base", TOY_SUITE, samples=100)
    assert contrast["missing"] == ["b"] and contrast["macro"]["delta"] == 1.0
    assert not contrast["acceptable"]
    results.append(result("base", "b", [0.0]))
    results.append(RunResult("ckpt", "b", {}, {"m@1": np.array([1.0])}, ["other"]))
    with pytest.raises(ValueError, match="different queries of b"):
        suite_contrast(results, "ckpt", "base", TOY_SUITE)


def test_report_shows_confidence_intervals_and_the_suite_table():
    data = IRDataset.from_dicts({"q0": "x", "q1": "y"}, {"d": "z"}, {"q0": {"d": 1}, "q1": {"d": 1}})
    benchmarks = [Benchmark("cvseeker", data, "global", {"hit_rate": [5]})]
    results = [result("base", "cvseeker", [0.0, 1.0]), result("ckpt", "cvseeker", [1.0, 1.0])]
    for r in results:
        r.per_query = {"hit_rate@5": r.per_query["m@1"]}
        r.metrics = {"hit_rate@5": r.metrics["m@1"]}
        r.query_ids = ["q0", "q1"]
    contrasts = suite_contrasts(results, {"ckpt": "base"}, samples=100)
    report = build_report(results, benchmarks, {}, {}, {}, [], suite=contrasts, samples=200)
    assert report["models"]["base"]["cvseeker"]["ci"]["hit_rate@5"] == [0.0, 1.0]
    assert report["suite"]["benchmarks"] == {"cvseeker": "hit_rate@5"}
    assert report["suite"]["contrasts"][0]["missing"] == [e.name for e in SUITE if e.name != "cvseeker"]
    table = markdown_table(report)
    assert "| base | 0.5000 | [0.0000, 1.0000] |" in table
    assert "| ckpt | base | +0.5000 [+0.0000, +1.0000] | +0.5000 [+0.0000, +1.0000] | no |" in table


def test_zero_shot_reference_follows_the_checkpoint_chain(tmp_path):
    def checkpoint(name, base):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model_type": "cre"}))
        if base is not None:
            (folder / "training_summary.json").write_text(json.dumps({"round": "r1", "base_model": base}))
        return str(folder)

    r1 = checkpoint("r1", "minilm")
    final = checkpoint("final", r1)
    assert zero_shot_reference(final) == zero_shot_reference(r1) == "minilm"
    assert zero_shot_reference("mpnet") == "mpnet"
    assert references_for([final, "mpnet"]) == {final: "minilm", "mpnet": "mpnet"}
    assert references_for([final], override="mpnet") == {final: "mpnet"}
    bare = checkpoint("bare", None)
    with pytest.raises(ValueError, match=r"bare/training_summary.json: cannot read"):
        zero_shot_reference(bare)
    (tmp_path / "bare" / "training_summary.json").write_text("{}")
    with pytest.raises(ValueError, match="no base_model; pass the reference explicitly"):
        zero_shot_reference(bare)


def test_cli_contrast_recomputes_a_suite_contrast_from_a_saved_report(tmp_path, capsys):
    from eval.__main__ import main

    data = IRDataset.from_dicts({"q0": "x", "q1": "y"}, {"d": "z"}, {"q0": {"d": 1}, "q1": {"d": 1}})
    benchmarks = [Benchmark(name, data, "global", {}) for name in ("cvseeker", "jobnorm")]
    results = [
        result(model, b.name, scores, MAIN_METRICS[b.name])
        for model, scores in [("a", [1.0, 1.0]), ("b", [0.0, 1.0])]
        for b in benchmarks
    ]
    for r in results:
        r.query_ids = ["q0", "q1"]
    path = tmp_path / "report.json"
    for per_query in (True, False):
        report = build_report(results, benchmarks, {}, {}, {}, [], per_query=per_query, samples=50)
        path.write_text(json.dumps(report))
        argv = ["contrast", "--report", str(path), "--model", "a", "--reference", "b"]
        if not per_query:
            with pytest.raises(SystemExit, match="no per-query scores; rerun compare with --per-query"):
                main(argv)
            continue
        assert main([*argv, "--bootstrap-samples", "100", "--out", str(tmp_path / "c.json")]) == 0
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["macro"]["delta"] == 0.5 and saved["benchmarks"]["jobnorm"]["delta"] == 0.5
    assert not saved["acceptable"]  # six suite benchmarks are missing from this report
    assert "| a | b |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"has no row\(s\) \['c'\]"):
        main(["contrast", "--report", str(path), "--model", "c", "--reference", "b"])
    # A recipe's seeds: the contrast of their mean is the mean of their contrasts.
    path.write_text(json.dumps(build_report(results, benchmarks, {}, {}, {}, [], per_query=True, samples=50)))
    argv = ["contrast", "--report", str(path), "--model", "a", "b", "--reference", "b"]
    assert main([*argv, "--bootstrap-samples", "100", "--out", str(tmp_path / "mean.json")]) == 0
    mean = json.loads((tmp_path / "mean.json").read_text())
    assert mean["model"] == "mean of 2: a, b"
    assert mean["benchmarks"]["jobnorm"]["delta"] == (saved["benchmarks"]["jobnorm"]["delta"] + 0.0) / 2
    # A variant over seeds against the same seeds without it: the mean of the paired contrasts.
    argv = ["contrast", "--report", str(path), "--model", "a", "a", "--reference", "b", "a"]
    assert main([*argv, "--bootstrap-samples", "100", "--out", str(tmp_path / "pairs.json")]) == 0
    pairs = json.loads((tmp_path / "pairs.json").read_text())
    assert pairs["reference"] == "mean of 2: b, a"
    assert pairs["benchmarks"]["jobnorm"]["delta"] == (saved["benchmarks"]["jobnorm"]["delta"] + 0.0) / 2
