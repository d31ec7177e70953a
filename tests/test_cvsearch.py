"""cvsearch on a tiny random backbone: inputs, windows, resumable and 2-process encoding, Milvus Lite."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.windows import aggregate, window_weights
from cvsearch.cli import main
from cvsearch.demo import PROFILES, write_demo_corpus
from cvsearch.encoding import EncodedCorpus, encode_corpus
from cvsearch.parsing import Document, InputError, RunReport, read_documents
from cvsearch.store import CVIndex
from cvsearch.windows import Windows, split_windows, text_room
from tests.conftest import WORDS
from tests.train_support import REPO_ROOT, accelerate_launch, run_python, subprocess_env

# Texts in the tiny tokenizer's vocabulary, so windows cut real tokens.
VOCABULARY = [word for word in WORDS if word.isalpha()]


def cv_text(n: int, words: int = 20) -> str:
    """A synthetic CV of ``words`` random vocabulary tokens (seeded by ``n``: no two CVs share a window)."""
    return " ".join(np.random.default_rng(n).choice(VOCABULARY, words))


def saved_tiny_cre(tiny_cre, tmp_path_factory, **config) -> Path:
    """A tiny CRE encoder (24 tokens) with ``config``, saved as a checkpoint folder."""
    folder = tmp_path_factory.mktemp("tiny-cre")
    tiny_cre("encoder", max_length=24, **config).save_pretrained(folder)
    return folder


@pytest.fixture
def checkpoint(tiny_cre, tmp_path_factory) -> Path:
    """A saved tiny CRE checkpoint with a trained-flag BoundaryHead and candidate feedback on."""
    boundary, feedback = {"enabled": True, "trained": True}, {"top_k": 2, "weight": 0.5}
    return saved_tiny_cre(tiny_cre, tmp_path_factory, boundary=boundary, feedback=feedback)


@pytest.fixture
def model(checkpoint):
    from cvsearch.encoding import load_model

    return load_model(str(checkpoint))


# ---------------------------------------------------------------------- parsing


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_jsonl_csv_and_lines_read_ids_texts_and_metadata(tmp_path):
    jsonl = write(
        tmp_path / "cvs.jsonl",
        '{"cid": "a", "body": "python", "team": "x"}\n\n{"cid": "b", "body": "sql", "team": "y"}\n',
    )
    docs = read_documents(jsonl, text_field="body", id_field="cid", meta_fields=["team"])
    assert [(d.id, d.text, d.metadata, d.source) for d in docs] == [
        ("a", "python", {"team": "x"}, "cvs.jsonl:1"),
        ("b", "sql", {"team": "y"}, "cvs.jsonl:3"),
    ]
    table = write(tmp_path / "cvs.csv", 'id,text\nk1,"java, spark"\nk2,react\n')
    assert [(d.id, d.text, d.source) for d in read_documents(table, id_field="id")] == [
        ("k1", "java, spark", "cvs.csv:2"),
        ("k2", "react", "cvs.csv:3"),
    ]
    lines = write(tmp_path / "cvs.txt", "python aws\n\nnurse ward\n")
    assert [(d.id, d.text) for d in read_documents(lines)] == [("1", "python aws"), ("3", "nurse ward")]


def test_line_separators_inside_a_text_do_not_split_records(tmp_path):
    # Only \n, \r\n and \r end a line; U+2028 and U+0085 are text (JSON writes them raw).
    body = "ICU nurse\u2028ACLS\u0085BLS"
    jsonl = write(tmp_path / "cvs.jsonl", json.dumps({"text": body}, ensure_ascii=False) + "\r\n")
    assert [d.text for d in read_documents(jsonl)] == [body]
    lines = write(tmp_path / "cvs.txt", f"{body}\r\nchef\rbaker\n")
    assert [d.text for d in read_documents(lines)] == [body, "chef", "baker"]


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("a.jsonl", '{"id": "1", "text": "x"}\n{"id": "2", "text": \n', {}, "a.jsonl:2: invalid JSON"),
        (
            "a.jsonl",
            '{"id": "1", "text": "x"}\n{"id": "2"}\n',
            {},
            "a.jsonl: line 2: field 'text' is missing",
        ),
        ("a.jsonl", '{"id": "1", "text": "  "}\n', {}, "a.jsonl: line 1: field 'text' is empty"),
        ("a.jsonl", '{"id": "1", "text": ["x"]}\n', {}, "field 'text' is a list"),
        ("a.jsonl", "[1, 2]\n", {}, "a.jsonl:1: expected a JSON object"),
        (
            "a.jsonl",
            '{"id": "1", "text": "x"}\n{"id": "1", "text": "y"}\n',
            {},
            "line 2: id '1' repeats the id of line 1",
        ),
        ("a.csv", "id,body\n1,x\n", {}, "a.csv: no column 'text'; the header has ['id', 'body']"),
        ("a.csv", "id,text\n1,x\n2,y,z\n", {}, "a.csv: row 2 (line 3): more fields"),
        ("a.csv", "id,text\n1,x\n2,\n", {}, "a.csv: row 2 (line 3): field 'text' is empty"),
        (
            "a.csv",
            "id,text\n1,x\n",
            {"meta_fields": ["team"]},
            "a.csv: row 1 (line 2): field 'team' is missing",
        ),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, name, content, options, message):
    with pytest.raises(
        InputError,
        match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)"),
    ):
        read_documents(write(tmp_path / name, content), id_field="id", **options)


def test_text_that_is_not_utf8_is_decoded_as_cp1252_and_counted(tmp_path):
    table = write(tmp_path / "legacy.csv", "id,text\n1,caf\xe9 manager\n2,bad \x81 byte\n".encode("latin-1"))
    report = RunReport()
    docs = read_documents(table, id_field="id", report=report)
    assert [d.text for d in docs] == ["café manager", "bad \ufffd byte"]
    assert report.decoded_as_cp1252 == [str(table)] and report.replaced_characters == 1
    assert "decoded as cp1252: 1 input(s), 1 undecodable byte(s) replaced" in report.summary()


def test_folder_reads_pdf_docx_txt_and_skips_corrupt_or_foreign_files(tmp_path, caplog):
    folder = tmp_path / "resumes"
    write_demo_corpus(folder)
    write(folder / "photo.png", b"\x89PNG\r\n")
    write(folder / "empty.txt", "   \n")
    report = RunReport()
    docs = read_documents(folder, report=report)
    assert sorted(d.id for d in docs) == sorted(profile[0] for profile in PROFILES)
    by_id = {d.id: d.text for d in docs}
    assert "Kubernetes" in by_id["devops_engineer.pdf"] and "(" not in by_id["devops_engineer.pdf"][:5]
    assert "2k requests/s" in by_id["backend_engineer.pdf"]
    assert "BLS/ACLS" in by_id["registered_nurse.docx"]
    skipped = {Path(item["file"]).name: item["reason"] for item in report.skipped}
    assert set(skipped) == {"scanned_cv.pdf", "photo.png", "empty.txt"}
    assert skipped["scanned_cv.pdf"].startswith("unreadable PDF")
    assert report.documents == len(PROFILES)
    assert any("scanned_cv.pdf" in record.getMessage() for record in caplog.records)


# ---------------------------------------------------------------------- windows


def test_window_scores_combine_by_scheme_and_refuse_nan():
    scores = np.array([0.2, 0.9, 0.4])
    assert aggregate(scores, "first") == pytest.approx(0.2)
    assert aggregate(scores, "mean") == pytest.approx(0.5)
    assert aggregate(scores, "max") == pytest.approx(0.9)
    assert aggregate(scores, "first+max", weight=0.5) == pytest.approx((0.2 + 0.5 * 0.9) / 1.5)
    assert window_weights(np.array([0.7]), "first+max").tolist() == [1.0]
    with pytest.raises(ValueError, match="finite"):
        aggregate(np.array([0.1, np.nan]), "max")
    with pytest.raises(ValueError, match="unknown window scoring"):
        aggregate(scores, "median")


def test_first_window_is_what_truncation_reads_and_windows_reach_the_end(model):
    text = cv_text(3, words=70)
    room = text_room(model, "cv")
    windows = split_windows(model, text, room, 10)
    assert len(windows) > 3 and text.startswith(windows[0]) and text.endswith(windows[-1])
    assert all(len(w.split()) == room for w in windows)
    assert windows[1].split()[: room - 10] == windows[0].split()[10:]  # stride 10: overlap room − 10
    with pytest.warns(UserWarning, match="truncated"):
        truncated = model.encode(text, kind="cv")
    np.testing.assert_allclose(model.encode(windows[0], kind="cv"), truncated, atol=1e-6)
    with pytest.raises(ValueError, match="window stride"):
        Windows(size=room, stride=room + 1).resolve(model, "cv")


# ---------------------------------------------------------------------- encoding


def corpus_file(folder: Path, count: int) -> Path:
    lines = [json.dumps({"id": f"cv-{n}", "text": cv_text(n, words=10 + n % 40)}) for n in range(count)]
    return write(folder / "cvs.jsonl", "\n".join(lines) + "\n")


def encode_args(source: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        "-m",
        "cvsearch",
        "encode",
        str(source),
        "--out",
        str(out),
        "--model",
        str(checkpoint),
        "--id-field",
        "id",
        *extra,
    ]


def test_a_killed_encode_resumes_and_encodes_only_the_rest(checkpoint, tmp_path):
    source = corpus_file(tmp_path, 600)
    options = ["--shard-size", "1", "--windows"]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    run_python(*encode_args(source, reference, checkpoint, *options))
    total = json.loads((reference / "report.json").read_text())["shards_encoded"]

    child = subprocess.Popen(
        [sys.executable, *encode_args(source, resumed, checkpoint, *options)],
        cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    shards = resumed / "shards"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(shards.glob("[0-9]*.npy"))) < 5 and child.poll() is None:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = len(list(shards.glob("[0-9]*.npy")))  # not a temporary the kill interrupted
    assert 5 <= done < total, f"the kill came at {done} of {total} shards"
    assert not (resumed / "vectors.npy").exists()

    run_python(*encode_args(source, resumed, checkpoint, *options))
    report = json.loads((resumed / "report.json").read_text())
    assert (report["shards_encoded"], report["shards_reused"]) == (total - done, done)
    assert not list(shards.glob(".*")), "a killed run's temporary file was left behind"
    expected, got = EncodedCorpus.load(reference), EncodedCorpus.load(resumed)
    assert got.rows == expected.rows
    np.testing.assert_array_equal(got.vectors, expected.vectors)


def test_an_output_folder_of_another_input_is_refused(model, tmp_path):
    docs = [Document("a", cv_text(1), "x"), Document("b", cv_text(2), "x")]
    encode_corpus(model, docs, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="holds vectors of another run \\(different rows, rows_sha256\\)"):
        encode_corpus(model, docs[:1], tmp_path / "out", progress=False)


@pytest.mark.slow
def test_two_accelerate_processes_write_what_one_process_writes(checkpoint, tmp_path):
    source = corpus_file(tmp_path, 37)
    one, two = tmp_path / "one", tmp_path / "two"
    run_python(*encode_args(source, one, checkpoint, "--shard-size", "4", "--windows"))
    accelerate_launch(
        2, "cvsearch", *encode_args(source, two, checkpoint, "--shard-size", "4", "--windows")[2:]
    )
    expected, got = EncodedCorpus.load(one), EncodedCorpus.load(two)
    assert got.rows == expected.rows and len(got.rows) > 37
    np.testing.assert_array_equal(got.vectors, expected.vectors)
    reports = [json.loads((folder / "report.json").read_text()) for folder in (one, two)]
    assert [report["processes"] for report in reports] == [1, 2]  # the two shared the shards
    assert reports[1]["shards_encoded"] == reports[0]["shards_encoded"] > 2


# ---------------------------------------------------------------------- Milvus Lite


def documents(count: int, words: int = 40) -> list[Document]:
    return [
        Document(f"cv-{n}", cv_text(n, words), f"cv-{n}.txt", {"team": f"t{n % 3}"}) for n in range(count)
    ]


def stored(index: CVIndex, cv_id: str) -> list[dict]:
    return index.client.query(index.collection, filter=f'cv_id == "{cv_id}"', output_fields=["pk", "chunk"])


def test_index_adds_once_replaces_changed_cvs_and_deletes_every_window(model, tmp_path):
    index = CVIndex(model, db=tmp_path / "cvs.db", windows=Windows(stride=8))
    docs = documents(12)
    first = index.add(docs, progress=False)
    windows_of_cv3 = len(stored(index, "cv-3"))
    assert first["documents"] == 12 and first["vectors"] > 12 and windows_of_cv3 > 1
    assert index.count() == {"cvs": 12, "vectors": first["vectors"]}

    again = index.add(docs, progress=False)
    assert again == {"documents": 0, "unchanged": 12, "vectors": 0}
    assert index.count() == {"cvs": 12, "vectors": first["vectors"]}

    shorter = Document("cv-3", cv_text(3, words=5), "cv-3.txt", {"team": "t0"})
    assert index.add([shorter], progress=False)["vectors"] == 1
    assert [row["chunk"] for row in stored(index, "cv-3")] == [0]  # the old windows are gone

    expected = len(stored(index, "cv-4")) + 1
    assert index.delete(["cv-4", "cv-3"]) == expected
    assert stored(index, "cv-4") == [] and stored(index, "cv-3") == []
    assert index.count()["cvs"] == 10
    reopened = CVIndex(model, db=tmp_path / "cvs.db", windows=Windows(stride=8))
    assert reopened.count()["cvs"] == 10 and stored(reopened, "cv-4") == []


def test_delete_reports_the_vectors_it_removed(model, tmp_path):
    index = CVIndex(model, db=tmp_path / "cvs.db", windows=Windows(stride=8))
    index.add(documents(4), progress=False)
    windows = len(stored(index, "cv-1"))
    assert windows > 1 and index.delete(["cv-1"]) == windows and index.delete(["cv-1"]) == 0


@pytest.mark.parametrize("scheme", ["first", "mean", "max", "first+max"])
def test_search_reranks_stored_windows_and_matches_exact_search(model, tmp_path, scheme):
    index = CVIndex(model, db=tmp_path / "cvs.db", windows=Windows(stride=8))
    index.add(documents(30), progress=False)
    jd = cv_text(7, words=12)
    ann = index.search(jd, top_k=10, candidates=30, scheme=scheme)
    exact = index.search(jd, top_k=10, candidates=30, scheme=scheme, exact=True)
    assert [hit["id"] for hit in ann] == [hit["id"] for hit in exact]
    scores = [hit["score"] for hit in ann]
    assert scores == sorted(scores, reverse=True) and len(ann) == 10
    weight, boundary_weight = 0.5, model.config.boundary["weight"]
    for hit in ann:
        assert hit["score"] == pytest.approx(
            hit["cosine"] + weight * hit["feedback"] - boundary_weight * hit["boundary"], abs=1e-5
        )
        assert hit["team"] == f"t{int(hit['id'].split('-')[1]) % 3}" and hit["source"] == f"{hit['id']}.txt"
        assert hit["windows"] == (1 if scheme == "first" else len(stored(index, hit["id"])))
    assert index.recall_against_exact(index.encode_jds([jd, cv_text(2)]), k=10, scheme=scheme) == 1.0


def test_an_index_of_another_dimension_is_refused(model, tiny_cre, tmp_path):
    CVIndex(model, db=tmp_path / "cvs.db")
    other = tiny_cre("encoder", output_dim=16)
    with pytest.raises(ValueError, match="holds 32-dimensional vectors but the model makes 16"):
        CVIndex(other, db=tmp_path / "cvs.db")


# ---------------------------------------------------------------------- hybrid (BM25 + dense)

# An employer name outside the tiny tokenizer's vocabulary: the dense model reads it as [UNK].
EMPLOYER = "Initech"
QUESTION = f"{EMPLOYER} alumni"


def with_employer(doc: Document) -> Document:
    """``doc`` naming the employer after its 40th word, beyond what the model reads (24 tokens), so
    that its vector is the one the CV had without it."""
    return Document(doc.id, f"{doc.text} {EMPLOYER}", doc.source, doc.metadata)


def test_hybrid_search_finds_the_cv_naming_a_rare_employer_the_dense_model_misses(model, tmp_path):
    index = CVIndex(model, db=tmp_path / "cvs.db", hybrid=True)
    docs = documents(20)
    index.add(docs, progress=False)
    # The target is the CV the dense model ranks last; naming the employer leaves its vector as it is.
    target = index.search(QUESTION, top_k=20, candidates=20)[-1]["id"]
    assert index.add([with_employer(next(d for d in docs if d.id == target))], progress=False)["vectors"] == 1
    dense = index.search(QUESTION, top_k=20, candidates=20)
    assert dense[-1]["id"] == target and dense[0]["id"] != target
    hits = index.search(QUESTION, top_k=5, candidates=20, hybrid=True)
    assert hits[0]["id"] == target and hits[0]["bm25_rank"] == 1 and hits[0]["model_rank"] == 20
    # BM25 proposes only the CV that names the employer; every other hit is the model's order.
    assert [h["bm25_rank"] for h in hits[1:]] == [None] * 4
    assert [h["id"] for h in hits[1:]] == [h["id"] for h in dense[:4]]
    assert hits[0]["rrf"] == pytest.approx(1 / 61 + 1 / 80)
    for hit in hits:  # the model's parts are kept, the CV text is never returned
        assert hit["score"] == pytest.approx(
            next(d["score"] for d in dense if d["id"] == hit["id"]), abs=1e-6
        )
        assert {"cosine", "boundary", "feedback", "source", "team"} <= set(hit)
        assert "cv_text" not in hit and "cv_sparse" not in hit
        assert not any(doc.text in str(value) for doc in docs for value in hit.values())
    vector = index.encode_jds([QUESTION])[0]
    assert index.search(vector, top_k=5, candidates=20, hybrid=True, jd_text=QUESTION) == hits
    with pytest.raises(ValueError, match="needs the JD text for BM25"):
        index.search(vector, hybrid=True)


def test_hybrid_search_scores_window_hits_per_cv_and_bm25_reads_the_whole_cv(model, tmp_path):
    index = CVIndex(model, db=tmp_path / "cvs.db", windows=Windows(stride=8), hybrid=True)
    docs = documents(12)
    docs[5] = with_employer(docs[5])
    index.add(docs, progress=False)
    hits = index.search(QUESTION, top_k=12, candidates=12, scheme="max", hybrid=True)
    assert hits[0]["id"] == "cv-5" and hits[0]["bm25_rank"] == 1
    assert len({h["id"] for h in hits}) == 12 and hits[0]["windows"] == len(stored(index, "cv-5")) > 1
    assert sorted(h["model_rank"] for h in hits) == list(range(1, 13))


def test_hybrid_index_keeps_text_and_vectors_in_step_through_replace_and_delete(model, tmp_path):
    index = CVIndex(model, db=tmp_path / "cvs.db", windows=Windows(stride=8), hybrid=True)
    docs = documents(6)
    docs[2] = with_employer(docs[2])
    index.add(docs, progress=False)
    assert index.bm25_candidates(EMPLOYER) == ["cv-2"]
    index.add([Document("cv-2", cv_text(2, 40) + " Globex", "cv-2.txt", {"team": "t2"})], progress=False)
    assert index.bm25_candidates(EMPLOYER) == [] and index.bm25_candidates("Globex") == ["cv-2"]
    windows = len(stored(index, "cv-2"))
    assert index.delete(["cv-2"]) == windows and index.bm25_candidates("Globex") == []
    texts = index.client.query(index.collection, filter="chunk >= 0", output_fields=["cv_id", "cv_text"])
    assert {row["cv_id"] for row in texts} == {f"cv-{n}" for n in (0, 1, 3, 4, 5)}
    # Only each CV's opening row holds its text, the whole of it.
    assert sorted(row["cv_id"] for row in texts if row["cv_text"]) == ["cv-0", "cv-1", "cv-3", "cv-4", "cv-5"]
    assert all(row["cv_text"] == docs[int(row["cv_id"][3:])].text for row in texts if row["cv_text"])
    reopened = CVIndex(model, db=tmp_path / "cvs.db")
    assert reopened.hybrid and reopened.search(QUESTION, top_k=3, hybrid=True)[0]["bm25_rank"] is None


def test_hybrid_on_an_index_built_without_it_asks_to_reindex_and_long_texts_are_refused(model, tmp_path):
    index = CVIndex(model, db=tmp_path / "cvs.db")
    index.add(documents(3), progress=False)
    reindex = r"indexed without --hybrid .* re-index the CVs with `cre index --hybrid`"
    with pytest.raises(ValueError, match=reindex):
        index.search(QUESTION, hybrid=True)
    with pytest.raises(ValueError, match=reindex):
        CVIndex(model, db=tmp_path / "cvs.db", hybrid=True)
    assert index.search(QUESTION, top_k=2)[0]["id"].startswith("cv-")  # the dense search still works
    hybrid = CVIndex(model, db=tmp_path / "cvs.db", collection="hybrid", hybrid=True)
    long_cv = Document("long", "python " * 10_000, "long.txt", {})
    with pytest.raises(ValueError, match=r"documents\[1\] \('long'\): the text is 70,000 bytes") as error:
        hybrid.add([documents(1)[0], long_cv], progress=False)
    assert "python python" not in str(error.value) and hybrid.count()["cvs"] == 0


# ---------------------------------------------------------------------- recruiter questions

# A question in the tiny vocabulary, short enough to be read whole after its instruction.
ASKED = cv_text(500, 16)


@pytest.fixture
def question_checkpoint(tiny_cre, tmp_path_factory) -> Path:
    """A saved tiny CRE checkpoint whose JD and question instructions differ, as a trained CRE's can."""
    return saved_tiny_cre(tiny_cre, tmp_path_factory, instructions={"jd": "lead : ", "query": "intern : "})


@pytest.fixture
def question_model(question_checkpoint):
    from cvsearch.encoding import load_model

    return load_model(str(question_checkpoint))


def answered_late(count: int = 12, target: int = 5) -> list[Document]:
    """Random CVs, the ``target``-th ending with :data:`ASKED`: only its last window answers it."""
    docs = documents(count)
    docs[target] = Document(docs[target].id, f"{docs[target].text} {ASKED}", docs[target].source, {})
    return docs


def test_a_search_kind_other_than_jd_or_query_is_refused(question_model, tmp_path):
    index = CVIndex(question_model, db=tmp_path / "cvs.db")
    index.add(documents(3), progress=False)
    vector = index.encode_jds([ASKED])[0]
    refused = r"unknown search kind 'cv'; choose from \('jd', 'query'\)"
    for call in (
        lambda: index.search(ASKED, kind="cv"),
        lambda: index.search(vector, kind="cv", scheme="max"),  # an explicit scheme does not skip it
        lambda: index.encode_queries([ASKED], kind="cv"),
        lambda: index.candidates(vector, 2, kind="cv"),
        lambda: index.recall_against_exact(vector[None], k=2, kind="cv"),
    ):
        with pytest.raises(ValueError, match=refused):
            call()
    with pytest.raises(ValueError, match="unknown window scoring 'median'"):
        index.search(ASKED, kind="query", scheme="median")


def test_a_question_is_encoded_with_the_query_instruction(question_model, tmp_path):
    index = CVIndex(question_model, db=tmp_path / "cvs.db", windows=Windows(stride=8))
    index.add(answered_late(), progress=False)
    as_question, as_jd = (
        question_model.encode([ASKED], kind=kind, task=index.task, normalize=True) for kind in ("query", "jd")
    )
    assert np.abs(as_question - as_jd).max() > 1e-3  # the two instructions make different vectors
    np.testing.assert_allclose(index.encode_queries([ASKED], kind="query"), as_question, atol=1e-6)
    np.testing.assert_allclose(index.encode_queries([ASKED]), as_jd, atol=1e-6)
    np.testing.assert_allclose(index.encode_jds([ASKED]), as_jd, atol=1e-6)
    # The search encodes the text as a question: its hits are those of the question's vector.
    by_text = index.search(ASKED, top_k=12, candidates=12, kind="query")
    by_question = index.search(as_question[0], top_k=12, candidates=12, kind="query")
    by_jd_vector = index.search(as_jd[0], top_k=12, candidates=12, kind="query")
    assert [(h["id"], h["score"]) for h in by_text] == [(h["id"], h["score"]) for h in by_question]
    assert [h["score"] for h in by_text] != pytest.approx([h["score"] for h in by_jd_vector], abs=1e-6)


def test_the_window_scoring_defaults_by_kind_and_an_explicit_one_wins(question_model, tmp_path):
    index = CVIndex(question_model, db=tmp_path / "cvs.db", windows=Windows(stride=8))
    index.add(answered_late(), progress=False)
    windows = len(stored(index, "cv-5"))
    assert windows > 1 and index.has_windows()

    def search(**options) -> list[tuple[str, int]]:
        return [(h["id"], h["windows"]) for h in index.search(ASKED, top_k=12, candidates=12, **options)]

    # A question reads each CV's best window: the CV whose last window holds the answer comes first.
    question = search(kind="query")
    assert question == search(kind="query", scheme="max") and question[0] == ("cv-5", windows)
    # A JD reads each CV's opening (window 0 only), where cv-5 holds nothing of it.
    jd = search(kind="jd")
    assert jd == search() == search(kind="jd", scheme="first")
    assert jd[0][0] != "cv-5" and {count for _, count in jd} == {1}
    # An explicit scheme wins over the kind's default, both ways.
    assert search(kind="query", scheme="first")[0][0] != "cv-5"
    assert {count for _, count in search(kind="query", scheme="first")} == {1}
    assert search(kind="jd", scheme="max")[0] == ("cv-5", windows)
    # Candidates follow the same default: a question searches every window, a JD the openings.
    question_vector, jd_vector = index.encode_queries([ASKED], "query")[0], index.encode_jds([ASKED])[0]
    assert index.candidates(question_vector, 1, kind="query") == ["cv-5"]
    assert index.candidates(question_vector, 1, kind="query", scheme="first") != ["cv-5"]
    assert index.candidates(jd_vector, 1) != ["cv-5"]
    assert index.recall_against_exact(question_vector[None], k=5, kind="query") == 1.0
    # Without windows every CV is one vector, and the index says so.
    plain = CVIndex(question_model, db=tmp_path / "cvs.db", collection="plain")
    plain.add(answered_late(), progress=False)
    assert not plain.has_windows()
    assert {h["windows"] for h in plain.search(ASKED, top_k=12, candidates=12, kind="query")} == {1}


# ---------------------------------------------------------------------- command line


def test_cli_index_search_formats_and_delete(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = [json.dumps({"id": d.id, "text": d.text, "team": d.metadata["team"]}) for d in documents(15)]
    write(tmp_path / "cvs.jsonl", "\n".join(lines) + "\n")
    common = ["--model", str(checkpoint), "--db", "cvs.db"]
    assert (
        main(
            [
                "index",
                "cvs.jsonl",
                "--id-field",
                "id",
                "--meta",
                "team",
                "--windows",
                "--stride",
                "8",
                *common,
            ]
        )
        == 0
    )
    report = json.loads(Path("cvs.db.report.json").read_text())
    assert (
        report["documents"] == 15 and report["collection_cvs"] == 15 and not Path("cvs.db.encoding").exists()
    )
    capsys.readouterr()

    write(
        tmp_path / "jds.jsonl",
        json.dumps({"id": "j1", "text": cv_text(2, 8)})
        + "\n"
        + json.dumps({"id": "j2", "text": cv_text(9, 8)})
        + "\n",
    )
    assert (
        main(
            ["search", "--jds", "jds.jsonl", "--id-field", "id", "--top-k", "4", "--scoring", "max", *common]
        )
        == 0
    )
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(h["jd"], h["rank"]) for h in hits] == [("j1", r) for r in range(1, 5)] + [
        ("j2", r) for r in range(1, 5)
    ]
    assert {"id", "score", "cosine", "boundary", "feedback", "source", "windows", "team"} <= set(hits[0])

    assert (
        main(
            [
                "search",
                cv_text(2, 8),
                "--top-k",
                "4",
                "--scoring",
                "max",
                "--output-format",
                "csv",
                "--out",
                "hits.csv",
                *common,
            ]
        )
        == 0
    )
    table = list(csv.DictReader(io.StringIO(Path("hits.csv").read_text())))
    assert table[0]["jd"] == "jd" and [row["id"] for row in table] == [h["id"] for h in hits[:4]]
    assert list(table[0])[:9] == [
        "jd",
        "rank",
        "id",
        "score",
        "cosine",
        "boundary",
        "feedback",
        "source",
        "windows",
    ]

    assert main(["delete", hits[0]["id"], *common]) == 0
    assert "removed" in capsys.readouterr().out
    assert main(["search", cv_text(2, 8), "--top-k", "4", "--scoring", "max", *common]) == 0
    remaining = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert len(remaining) == 4 and hits[0]["id"] not in remaining


def test_cli_hybrid_index_search_and_delete(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    docs = documents(10)
    docs[4] = with_employer(docs[4])
    lines = [json.dumps({"id": d.id, "text": d.text}) for d in docs]
    write(tmp_path / "cvs.jsonl", "\n".join(lines) + "\n")
    common = ["--model", str(checkpoint), "--db", "cvs.db"]
    assert (
        main(["index", "cvs.jsonl", "--id-field", "id", "--hybrid", "--windows", "--stride", "8", *common])
        == 0
    )
    capsys.readouterr()
    search = ["search", QUESTION, "--top-k", "3", "--hybrid", "--scoring", "max", *common]
    assert main([*search, "--output-format", "csv", "--out", "hits.csv"]) == 0
    table = list(csv.DictReader(io.StringIO(Path("hits.csv").read_text())))
    assert [row["id"] for row in table][:1] == ["cv-4"] and table[0]["bm25_rank"] == "1"
    assert {"score", "cosine", "boundary", "feedback", "model_rank", "bm25_rank", "rrf"} <= set(table[0])
    assert not any(doc.text in Path("hits.csv").read_text() for doc in docs)
    assert main(["delete", "cv-4", *common]) == 0
    capsys.readouterr()
    assert main(search) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 3 and "cv-4" not in [h["id"] for h in hits] and hits[0]["bm25_rank"] is None
    # A dense-only index: one line asking to re-index, no traceback.
    assert main(["index", "cvs.jsonl", "--id-field", "id", *common[:2], "--db", "dense.db"]) == 0
    capsys.readouterr()
    assert main(["search", QUESTION, "--hybrid", *common[:2], "--db", "dense.db"]) == 2
    err = capsys.readouterr().err
    assert "re-index the CVs with `cre index --hybrid`" in err and "Traceback" not in err


def test_cli_search_kind_query_scores_by_the_best_window_and_warns_without_windows(
    question_checkpoint, question_model, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "cvs.jsonl",
        "".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in answered_late()),
    )
    common = ["--model", str(question_checkpoint)]
    for db, options in (("cvs.db", ["--windows", "--stride", "8"]), ("plain.db", [])):
        assert main(["index", "cvs.jsonl", "--id-field", "id", *options, *common, "--db", db]) == 0
    capsys.readouterr()

    def search(db: str, *options: str) -> tuple[list[dict], list[str]]:
        assert main(["search", ASKED, "--top-k", "12", *options, *common, "--db", db]) == 0
        out, err = capsys.readouterr()
        return [json.loads(line) for line in out.splitlines()], [
            line for line in err.splitlines() if line.startswith("cre search: warning:")
        ]

    hits, warned = search("cvs.db", "--kind", "query")
    assert warned == [] and hits[0]["id"] == "cv-5" and hits[0]["windows"] > 1
    assert list(hits[0])[:9] == "jd rank id score cosine boundary feedback source windows".split()
    expected = CVIndex(question_model, db=tmp_path / "cvs.db").search(ASKED, top_k=12, kind="query")
    assert [(h["id"], h["score"]) for h in hits] == [(h["id"], pytest.approx(h["score"])) for h in expected]
    jd_hits, warned = search("cvs.db")  # a JD: the openings only
    assert warned == [] and jd_hits[0]["id"] != "cv-5" and {h["windows"] for h in jd_hits} == {1}
    first, _ = search("cvs.db", "--kind", "query", "--scoring", "first")  # an explicit scoring wins
    assert first[0]["id"] != "cv-5" and {h["windows"] for h in first} == {1}

    plain, warned = search("plain.db", "--kind", "query")
    assert len(plain) == 12 and len(warned) == 1
    assert "only each CV's opening is searched: index with `cre index --windows`" in warned[0]
    assert search("plain.db")[1] == []  # JDs read the opening anyway: no warning
    with pytest.raises(SystemExit) as stop:
        main(["search", ASKED, "--kind", "cv", *common, "--db", "cvs.db"])
    assert stop.value.code == 2 and "invalid choice: 'cv'" in capsys.readouterr().err


def test_cli_bad_input_is_one_line_error(checkpoint, tmp_path, capsys):
    write(tmp_path / "bad.jsonl", '{"id": "1", "text": "python"}\n{"id": "2", "txt": "sql"}\n')
    code = main(
        [
            "encode",
            str(tmp_path / "bad.jsonl"),
            "--out",
            str(tmp_path / "o"),
            "--model",
            str(checkpoint),
            "--id-field",
            "id",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl: line 2: field 'text' is missing" in err and "Traceback" not in err
    assert main(["search", "--model", str(checkpoint), "--db", str(tmp_path / "x.db")]) == 2
    assert "give exactly one JD" in capsys.readouterr().err


def test_cre_export_hands_its_options_to_the_export(capsys):
    from cvsearch.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["export", "--help"])
    assert stop.value.code == 0
    assert "--format" in capsys.readouterr().out
    assert main(["export", "/nonexistent-checkpoint", "/tmp/never-written"]) != 0
