"""Training data validation: bad records stop a run before training, named by file, line and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.train_support import TINY_R1, make_synth_run
from train import r1, r2
from train.data import MAX_REPORTED_PROBLEMS, TrainingDataError, read_records, require_records

GOOD = {"query": "data engineer", "positive": "senior data engineer", "split": "train"}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_records_keep_file_order_line_numbers_and_split(tmp_path):
    path = write_lines(
        tmp_path / "pairs.jsonl",
        [
            json.dumps(GOOD),
            "",  # blank lines hold no record
            json.dumps({**GOOD, "query": "nurse", "split": "validation"}),
            json.dumps({"query": "analyst", "positive": "data analyst"}),  # no split: train
        ],
    )
    everything = read_records(path, ["query", "positive"])
    assert [(r["query"], r["_line"]) for r in everything] == [
        ("data engineer", 1),
        ("nurse", 3),
        ("analyst", 4),
    ]
    assert [r["query"] for r in read_records(path, ["query", "positive"], "train")] == [
        "data engineer",
        "analyst",
    ]
    assert [r["query"] for r in read_records(path, ["query", "positive"], "validation")] == ["nurse"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"query": "data engineer", "positive": ', "invalid JSON (Expecting value at column 40)"),
        ('["data engineer", "senior data engineer"]', "expected a JSON object, got list"),
        (json.dumps({"query": "data engineer"}), "missing field 'positive'"),
        (json.dumps({**GOOD, "positive": 3}), "field 'positive' must be a string, got int"),
        (json.dumps({**GOOD, "positive": "  "}), "field 'positive' is empty"),
        (json.dumps({**GOOD, "split": "dev"}), "field 'split' is 'dev'"),
        (json.dumps({**GOOD, "stage": "summary"}), "field 'stage' is 'summary'"),
    ],
)
def test_a_malformed_record_is_named_by_file_line_and_field(tmp_path, line, expected):
    path = write_lines(tmp_path / "pairs.jsonl", [json.dumps({**GOOD, "stage": "card"}), line])
    with pytest.raises(TrainingDataError) as error:
        read_records(path, ["query", "positive"], choices={"stage": ["card", "paraphrase"]})
    assert f"{path}:2: {expected}" in str(error.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # A Latin-1 "é" inside a field: the field, the byte, its column on the line and in the file.
        (b'{"query": "data engineer", "positive": "Jos\xe9 Garc\xeda, engineer"}', "field 'positive'"),
        (b'{"qu\xe9ry": "data engineer", "positive": "engineer"}', "line"),  # in a key: no field to name
        (b'{"query": "data engineer", "positive": "caf\xe9', "line"),  # and broken JSON: the byte first
    ],
)
def test_a_byte_that_is_not_utf8_is_named_by_line_field_and_offset(tmp_path, line, expected):
    first = json.dumps(GOOD).encode() + b"\n"
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(first + line + b"\n")
    column = line.index(b"\xe9")  # the first byte that is not UTF-8
    with pytest.raises(TrainingDataError) as error:
        read_records(path, ["query", "positive"])
    message = str(error.value)
    assert f"{path}:2: {expected} is not valid UTF-8: byte 0xe9 at column {column + 1} " in message
    assert f"(file offset {len(first) + column})" in message
    assert "Jos" not in message and "Garc" not in message  # CV text is personal data


def test_a_lone_surrogate_escape_is_named_by_field(tmp_path):
    path = write_lines(
        tmp_path / "pairs.jsonl", [json.dumps(GOOD), json.dumps({**GOOD, "positive": "caf\udce9"})]
    )
    assert "\\udce9" in path.read_text(encoding="utf-8")  # valid UTF-8: the JSON escape is the problem
    with pytest.raises(
        TrainingDataError, match=rf"{path.name}:2: field 'positive' holds a lone surrogate escape"
    ):
        read_records(path, ["query", "positive"])


def test_every_problem_is_reported_up_to_the_limit(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", [json.dumps({"query": "x"})] * (MAX_REPORTED_PROBLEMS + 3))
    with pytest.raises(TrainingDataError) as error:
        read_records(path, ["query", "positive"])
    message = str(error.value)
    assert message.startswith(f"{MAX_REPORTED_PROBLEMS + 3} malformed record(s)")
    assert f"{path}:{MAX_REPORTED_PROBLEMS}: missing field 'positive'" in message
    assert "... and 3 more" in message


def test_missing_or_empty_files_and_empty_splits_are_errors(tmp_path):
    with pytest.raises(TrainingDataError, match="not found"):
        read_records(tmp_path / "absent.jsonl", ["query"])
    with pytest.raises(TrainingDataError, match="holds no records"):
        read_records(write_lines(tmp_path / "empty.jsonl", [""]), ["query"])
    with pytest.raises(TrainingDataError, match="0 records, need at least 1"):
        require_records([], "R2 triplets")


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    return make_synth_run(tmp_path_factory.mktemp("synth"))


def without(field: str):
    """Corrupt a JSONL line by dropping ``field`` from its record."""
    return lambda line: json.dumps({k: v for k, v in json.loads(line).items() if k != field}).encode()


def latin1_positive(line: bytes) -> bytes:
    """Corrupt a JSONL line with a Latin-1 byte at the start of its ``positive`` text."""
    return line.replace(b'"positive": "', b'"positive": "\xe9', 1)


@pytest.mark.parametrize(
    ("module", "file", "corrupt", "expected", "options"),
    [
        (r1, "ranking.jsonl", without("negative_role"), "missing field 'negative_role'", TINY_R1),
        (r2, "jdcv.jsonl", without("negative"), "missing field 'negative'", ["--steps", "1"]),
        (
            r2,
            "jdcv.jsonl",
            latin1_positive,
            "field 'positive' is not valid UTF-8: byte 0xe9",
            ["--steps", "1"],
        ),
    ],
)
def test_a_round_stops_before_training_on_a_bad_record(
    tmp_path, synth_dir, tiny_backbone_dir, capsys, module, file, corrupt, expected, options
):
    data = shutil.copytree(synth_dir, tmp_path / "data")
    lines = (data / file).read_bytes().splitlines(keepends=True)
    lines[2] = corrupt(lines[2].rstrip(b"\n")) + b"\n"
    (data / file).write_bytes(b"".join(lines))
    out = tmp_path / "out"
    argv = ["--data", str(data), "--base", str(tiny_backbone_dir("encoder")), "--out", str(out), *options]
    assert module.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{data / file}:3: {expected}" in err and "Traceback" not in err
    assert not out.exists()  # nothing was trained or written
