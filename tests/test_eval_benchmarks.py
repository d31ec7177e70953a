"""Benchmark builders on a tiny synthetic copy of the development data layout (never the real files)."""

from __future__ import annotations

import csv

import pytest

from eval.benchmarks import (
    RESUME_BENCHMARKS,
    DataNotFoundError,
    category_jds,
    esco_benchmark,
    load_benchmark,
    onet_benchmark,
    pool_recall,
    resolve_data_dir,
    resume_benchmark,
    resume_id,
)
from eval.ir_data import DatasetFormatError

OCCUPATIONS = [
    ("15-1252.00", "Software Developers", "Design software."),
    ("15-1251.00", "Computer Programmers", "Write programs."),
    ("13-1071.00", "Human Resources Specialists", "Recruit staff."),
    ("29-1141.00", "Registered Nurses", "Care for patients."),
]
SPLITS = {"15-1252.00": "dev", "15-1251.00": "train", "13-1071.00": "dev", "29-1141.00": "test"}
RELATED = [
    ("15-1252.00", "15-1251.00", "Primary-Short"),
    ("15-1252.00", "13-1071.00", "Supplemental"),
    ("15-1251.00", "15-1252.00", "Primary-Short"),  # a train query: must not appear
]


def write_tsv(path, header, rows, delimiter="\t", encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def data_dir(tmp_path):
    onet = tmp_path / "onet"
    write_tsv(onet / "occupation_data.tsv", ["O*NET-SOC Code", "Title", "Description"], OCCUPATIONS)
    write_tsv(onet / "splits.tsv", ["onet_soc_code", "split"], SPLITS.items())
    write_tsv(
        onet / "related_occupations.tsv",
        ["O*NET-SOC Code", "Title", "Related O*NET-SOC Code", "Related Title", "Relatedness Tier", "Index"],
        [(a, "", b, "", tier, i) for i, (a, b, tier) in enumerate(RELATED)],
    )
    write_tsv(
        onet / "task_statements.tsv",
        ["O*NET-SOC Code", "Title", "Task ID", "Task", "Task Type"],
        [
            ("15-1252.00", "", 1, "Write code.", "Core"),
            ("15-1252.00", "", 2, "Attend meetings.", "Supplemental"),
            ("13-1071.00", "", 3, "Interview candidates.", "Core"),
        ],
    )
    write_tsv(
        onet / "technology_skills.tsv",
        [
            "O*NET-SOC Code",
            "Title",
            "Example",
            "Commodity Code",
            "Commodity Title",
            "Hot Technology",
            "In Demand",
        ],
        [("15-1252.00", "", "Python", 1, "", "Y", "N"), ("15-1252.00", "", "Fortran", 1, "", "N", "N")],
    )
    write_tsv(
        tmp_path / "esco" / "occupations_en.csv",
        ["conceptUri", "iscoGroup", "preferredLabel", "description"],
        [
            ("u:dev1", "2512", "software developer", "Builds software."),
            ("u:dev2", "2512", "app developer", "Builds apps."),
            ("u:web", "2513", "web developer", "Builds sites."),
            ("u:army", "110", "officer", "Leads troops."),  # 3-digit code: left-padded to 0110
        ],
        delimiter=",",
    )
    write_tsv(
        tmp_path / "resumes" / "updated_resume_dataset.csv",
        ["Category", "Resume"],
        [("Java Developer", "Java résumé A"), ("Java Developer", "Java résumé A"), ("HR", "Recruiter B")]
        + [("Java Developer", "Spring C"), ("HR", "Payroll D")],
        delimiter=",",
        encoding="latin-1",
    )
    return tmp_path


def test_onet_benchmark_uses_split_queries_graded_gains_and_excludes_self(data_dir):
    bench = onet_benchmark(data_dir)
    assert set(bench.dataset.queries) == {"15-1252.00", "13-1071.00"}
    assert bench.dataset.qrels == {"15-1252.00": {"15-1251.00": 3.0, "13-1071.00": 1.0}}
    assert bench.dataset.skipped == {"no relevant documents": ["13-1071.00"]}
    assert len(bench.dataset.corpus) == 4 and bench.exclude_self
    assert bench.dataset.corpus["15-1252.00"] == "Software Developers\nDesign software."
    assert bench.metrics == {"ndcg": [10], "recall": [20], "mrr": [10]} and bench.top_k == 20
    assert bench.task == "jd-jd"


def test_onet_refuses_the_reserved_test_split_and_unknown_tiers(data_dir):
    with pytest.raises(ValueError, match="reserved"):
        onet_benchmark(data_dir, split="test")
    related = data_dir / "onet" / "related_occupations.tsv"
    related.write_text(related.read_text().replace("Supplemental", "Tertiary"))
    with pytest.raises(
        DatasetFormatError, match=r"related_occupations.tsv:3: unknown relatedness tier 'Tertiary'"
    ):
        onet_benchmark(data_dir)


def test_esco_grades_by_isco_group_and_counts_lonely_occupations(data_dir):
    bench = esco_benchmark(data_dir)
    assert bench.dataset.qrels == {
        "u:dev1": {"u:dev2": 2.0, "u:web": 1.0},
        "u:dev2": {"u:dev1": 2.0, "u:web": 1.0},
    }
    assert bench.dataset.skipped["no other occupation in the 4-digit ISCO group"] == ["u:army", "u:web"]
    assert bench.min_gain == 2 and bench.task == "jd-jd"


def test_resume_benchmark_deduplicates_hashes_ids_and_builds_bm25_pools(data_dir):
    bench = resume_benchmark(data_dir, pool_size=3)
    assert len(bench.dataset.corpus) == 4 and bench.notes["rows"] == 5 and bench.task == "jd-cv"
    assert all(doc_id.startswith("cv-") and "résumé" not in doc_id for doc_id in bench.dataset.corpus)
    assert bench.dataset.qrels["HR"] == {resume_id("Recruiter B"): 1.0, resume_id("Payroll D"): 1.0}
    assert bench.dataset.queries["Java Developer"].startswith("Java Developer\nSoftware Developers\n")
    assert "- Write code." in bench.dataset.queries["Java Developer"]
    assert "Attend meetings" not in bench.dataset.queries["Java Developer"]  # supplemental task
    assert bench.dataset.queries["Java Developer"].endswith("Technologies: Python")
    assert {len(pool) for pool in bench.pools.values()} == {3}
    assert 0 < bench.notes["pool_recall"] <= 1
    assert pool_recall({"q": ["a", "b"]}, {"q": {"a": 1, "c": 1}}) == 0.5
    assert bench.protocol == "local" and bench.metrics["recall"] == [10, 20, 30, 40, 50, 60, 70]


def test_jd_styles_rewrite_the_jds_and_keep_the_resumes_and_labels(data_dir):
    write_tsv(
        data_dir / "onet" / "reported_titles.tsv",
        ["O*NET-SOC Code", "Title", "Reported Job Title", "Shown in My Next Move"],
        [("15-1252.00", "", "Software Engineer", "Y"), ("15-1252.00", "", "Code Ninja", "N")],
    )
    posting = resume_benchmark(data_dir, pool_size=3)
    styles = {
        name: load_benchmark(name, data_dir, pool_size=3) for name in RESUME_BENCHMARKS if name != "resumes"
    }
    assert sorted(styles) == ["resumes-brief", "resumes-duties", "resumes-titles"]
    for name, bench in styles.items():
        assert bench.name == name and bench.notes["jd_style"] == name.removeprefix("resumes-")
        assert bench.dataset.corpus == posting.dataset.corpus and bench.dataset.qrels == posting.dataset.qrels
        assert {len(pool) for pool in bench.pools.values()} == {3}
    java = {name: bench.dataset.queries["Java Developer"] for name, bench in styles.items()}
    assert java["resumes-brief"] == "Java Developer\nDesign software."
    assert java["resumes-duties"] == "Java Developer\nResponsibilities:\n- Attend meetings.\nTools: Fortran"
    assert java["resumes-titles"] == (
        "Software Developers / Software Engineer\nDesign software.\nResponsibilities:\n- Write code.\n"
        "Technologies: Python"
    )
    assert styles["resumes-duties"].dataset.queries["HR"] == "HR\nResponsibilities:"  # nothing left out
    with pytest.raises(ValueError, match="unknown JD style 'tweet'"):
        category_jds(["HR"], data_dir / "onet", "tweet")


def test_unmapped_resume_category_is_named(data_dir):
    with pytest.raises(KeyError, match=r"\['Astronaut'\] have no O\*NET mapping"):
        category_jds(["Astronaut", "HR"], data_dir / "onet")


def test_missing_data_is_a_clear_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv("CRE_DATA_DIR", raising=False)
    with pytest.raises(DataNotFoundError, match="pass --data-dir or set CRE_DATA_DIR"):
        resolve_data_dir(tmp_path / "nowhere")
    (tmp_path / "onet").mkdir()
    with pytest.raises(DataNotFoundError, match="occupation_data.tsv not found"):
        load_benchmark("onet", tmp_path)
    with pytest.raises(KeyError, match="unknown benchmark 'stackoverflow'"):
        load_benchmark("stackoverflow", tmp_path)


def test_data_dir_from_environment(data_dir, monkeypatch):
    monkeypatch.setenv("CRE_DATA_DIR", str(data_dir))
    assert resolve_data_dir() == data_dir


def test_missing_column_is_named(data_dir):
    write_tsv(data_dir / "onet" / "splits.tsv", ["code", "split"], [])
    with pytest.raises(DatasetFormatError, match=r"missing column\(s\) \['onet_soc_code'\]"):
        onet_benchmark(data_dir)
