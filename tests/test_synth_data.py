"""Seed JDs, loaders and the matching rules of train.synth."""

import json
import re
from collections import Counter

import pytest

from train.synth.data.make_seed_jds import make_seed_jds
from train.synth.dedup import DuplicateFilter
from train.synth.loaders import (
    SEED_JDS_PATH,
    DataNotFoundError,
    data_dir,
    load_esco_jds,
    load_onet_jds,
    load_seed_jds,
)
from train.synth.matching import extract_constraints, find_skills, keeps_title, ownership_level, seniority_of
from train.synth.schema import split_of


def test_seed_script_reproduces_the_committed_file():
    written = "\n".join(json.dumps(record, ensure_ascii=False) for record in make_seed_jds()) + "\n"
    assert written == SEED_JDS_PATH.read_text(encoding="utf-8")


def test_seed_jds_cover_families_and_levels_in_varied_prose():
    jds = load_seed_jds()
    assert len(jds) >= 300 and len({jd.id for jd in jds}) == len(jds)
    assert len({jd.family for jd in jds}) >= 25
    assert len({jd.seniority for jd in jds}) >= 4
    openings = Counter(jd.text.split("\n\n")[1][:25] for jd in jds)
    assert openings.most_common(1)[0][1] < 0.2 * len(jds)  # no single template dominates
    duplicates = DuplicateFilter(threshold=0.8)
    assert sum(duplicates.check(jd.text) is not None for jd in jds) == 0


def test_matching_recovers_what_the_seed_writer_put_in():
    jds = load_seed_jds()
    constraints_ok = sum(extract_constraints(jd.text) == jd.meta["constraints"] for jd in jds)
    skills_ok = sum(set(jd.meta["skills"]) <= set(find_skills(jd.text)) for jd in jds)
    seniority_ok = sum(
        seniority_of(jd.title, extract_constraints(jd.text)["years"]) == jd.seniority for jd in jds
    )
    assert constraints_ok >= 0.95 * len(jds)
    assert skills_ok >= 0.95 * len(jds)
    assert seniority_ok >= 0.9 * len(jds)


def test_matching_rules_on_handwritten_text():
    text = "Sr. SRE wanted. 5+ yrs of experience with K8s. BSc required. Fluent German. Location: Berlin."
    assert extract_constraints(text) == {
        "years": 5,
        "degree": "bachelor",
        "certification": None,
        "language": "German",
        "location": "Berlin",
    }
    assert keeps_title("Senior Site Reliability Engineer", text)
    assert not keeps_title("Senior Site Reliability Engineer", text, exact=True)
    assert ownership_level("Lead the platform strategy.\nOwn the budget.") > ownership_level(
        "Assist with tickets.\nSupport the team."
    )


def test_split_is_stable_and_about_ten_percent():
    splits = Counter(split_of(f"jd-{i}") for i in range(2000))
    assert split_of("jd-7") == split_of("jd-7")
    assert all(split_of(f"jd-{i}~java") == split_of(f"jd-{i}") for i in range(2000))  # siblings stay together
    assert 0.07 < splits["validation"] / 2000 < 0.13


def test_user_files_report_malformed_rows_with_file_and_line(tmp_path):
    jsonl = tmp_path / "jds.jsonl"
    jsonl.write_text(
        '{"id": "a", "title": "Nurse", "text": "Care for patients."}\n'
        "{not json\n"
        '{"id": "b", "title": "", "text": "x"}\n'
        '{"id": "a", "title": "Nurse", "text": "Again."}\n'
        '{"id": "c", "title": "Chef", "text": "Cook.", "family": "hospitality"}\n',
        encoding="utf-8",
    )
    issues = []
    jds = load_seed_jds(jsonl, issues=issues)
    assert [jd.id for jd in jds] == ["a", "c"] and jds[1].family == "hospitality"
    assert [issue.split(": ", 1)[0] for issue in issues] == [f"{jsonl}:2", f"{jsonl}:3", f"{jsonl}:4"]
    assert "'title'" in issues[1] and "duplicate id" in issues[2]

    csv_file = tmp_path / "jds.csv"
    csv_file.write_text('id,title,text\nx1,Chef,"Cook\nfood."\nx2,,missing title\n', encoding="utf-8")
    issues = []
    assert [jd.id for jd in load_seed_jds(csv_file, issues=issues)] == ["x1"]
    assert issues == [f"{csv_file}:4: field 'title' is missing or empty; row skipped"]

    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,name\n1,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lacks column"):
        load_seed_jds(bad_header)


def test_missing_development_data_fails_clearly(tmp_path):
    with pytest.raises(DataNotFoundError, match="CRE_DATA_DIR"):
        data_dir(tmp_path / "nowhere")


def _has_development_data() -> bool:
    try:
        return (data_dir() / "onet").is_dir()
    except DataNotFoundError:
        return False


needs_data = pytest.mark.skipif(
    not _has_development_data(), reason="development data (../shared/data) not present"
)


@needs_data
def test_onet_loader_uses_only_the_allowed_split():
    jds = load_onet_jds(split="train")
    splits = dict(
        line.split("\t") for line in (data_dir() / "onet" / "splits.tsv").read_text().split("\n")[1:] if line
    )
    assert jds and all(splits[jd.id.removeprefix("onet:").split("~")[0]] == "train" for jd in jds)
    assert "Core tasks:" in jds[0].text
    with pytest.raises(ValueError, match="test"):
        load_onet_jds(split="test")


@needs_data
def test_esco_loader_keeps_descriptions_but_not_isco_groups():
    jds = load_esco_jds()
    assert len(jds) > 1000
    assert all("iscoGroup" not in json.dumps(jd.to_dict()) for jd in jds[:50])


def test_vocabulary_files_are_checked_with_file_and_line(tmp_path):
    from train.synth.vocab import FAMILIES_FILE, FAMILY_LIST, VocabularyError, load_families, load_tables

    assert load_families(FAMILIES_FILE) == FAMILY_LIST
    rows = FAMILIES_FILE.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "families.jsonl"
    broken = json.loads(rows[1])
    broken["skills"] = ["Python", 3]
    bad.write_text("\n".join([rows[0], json.dumps(broken)]) + "\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"families.jsonl:2: skills\[1\]: expected str, got 3"):
        load_families(bad)
    del broken["titles"]
    bad.write_text(json.dumps(broken) + "\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"families.jsonl:1: missing fields \['titles'\]"):
        load_families(bad)
    bad.write_text(rows[0] + "\n" + rows[0] + "\n", encoding="utf-8")
    with pytest.raises(
        VocabularyError, match="families.jsonl:2: family 'software_engineering' is defined twice"
    ):
        load_families(bad)
    bad.write_text(rows[0] + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="families.jsonl:3: invalid JSON"):
        load_families(bad)

    tables = tmp_path / "vocab.json"
    hints = {"LEVELS": tuple[str, ...], "VERBS": dict[int, tuple[str, ...]]}
    tables.write_text('{\n "LEVELS": ["a", "b"],\n "VERBS": {"0": ["x"], "1": ["y"]}\n}\n', encoding="utf-8")
    assert load_tables(tables, hints) == {"LEVELS": ("a", "b"), "VERBS": {0: ("x",), 1: ("y",)}}
    tables.write_text('{\n "LEVELS": ["a"],\n "VERBS": {"one": ["y"]}\n}\n', encoding="utf-8")
    with pytest.raises(VocabularyError, match="vocab.json:3: VERBS: key 'one' is not a whole number"):
        load_tables(tables, hints)
    tables.write_text('{\n "LEVELS": ["a"],\n "VERBS": {},\n "EXTRA": []\n}\n', encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"vocab.json:4: unknown tables \['EXTRA'\]"):
        load_tables(tables, hints)
    tables.write_text('{\n "LEVELS": ["a"],\n "VERBS": {]\n}\n', encoding="utf-8")
    with pytest.raises(VocabularyError, match="vocab.json:3: not JSON"):
        load_tables(tables, hints)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_seed_file_that_is_not_utf8_is_named_by_line_and_column(tmp_path, suffix):
    path = tmp_path / f"jds{suffix}"
    good = '{"id": "a", "title": "Nurse", "text": "Care."}\n' if suffix == ".jsonl" else "id,title,text\n"
    broken = b'{"id": "b", "title": "Chef", "text": "Caf'
    path.write_bytes(good.encode() + broken + b'\xe9"}\n')
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(path))}:2: not valid UTF-8: byte 0xe9 at column {len(broken) + 1}",
    ):
        load_seed_jds(path)


def test_find_skills_reads_a_short_form_at_the_very_end_of_the_text():
    # "SEO" also starts the longer form "SEO writing": trying that one at the text's end must not
    # read past the last token.
    assert find_skills("Recruiter question: candidate with SEO") == ["Search Engine Optimization"]
