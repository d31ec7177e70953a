"""``CVIndex.purge`` / ``cre purge``: deleted CVs leave the Milvus Lite folder, nothing else changes,
and a purge killed at any step is finished or undone by the next run. Real Milvus Lite, tiny model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cvsearch.cli import main
from cvsearch.parsing import Document
from cvsearch.store import PURGE_COPY, PURGE_RETIRED, CVIndex
from cvsearch.windows import Windows
from tests import test_cvsearch
from tests.test_cvsearch import QUESTION, cv_text, documents, stored, with_employer

# The tiny-checkpoint fixtures of the Milvus Lite tests.
checkpoint, model = test_cvsearch.checkpoint, test_cvsearch.model

SENTINEL = "Zyxwq Sentinel-4471"
WINDOWS = Windows(stride=8)


def files_holding(folder: Path, text: str = SENTINEL) -> list[str]:
    """The files under ``folder`` whose bytes contain ``text`` (names only: never the content)."""
    needle = text.encode("utf-8")
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()
    )


def corpus() -> list[Document]:
    """12 CVs; cv-5 names a rare employer (BM25 finds it) and cv-3 carries the sentinel in its text
    (stored by a hybrid index) and in a metadata field (stored by every index)."""
    docs = documents(12)
    docs[5] = with_employer(docs[5])
    docs[3] = Document("cv-3", f"{docs[3].text} {SENTINEL}", "cv-3.txt", {"team": SENTINEL})
    return docs


def results(index: CVIndex, hybrid: bool) -> list[list[dict]]:
    """Searches over every remaining CV, dense and (hybrid index) fused, window-scored by ``max``."""
    searches = [index.search(cv_text(n, 12), top_k=20, candidates=20, scheme="max") for n in (1, 7)]
    if hybrid:
        searches.append(index.search(QUESTION, top_k=20, candidates=20, scheme="max", hybrid=True))
    return searches


def assert_same_results(before: list[list[dict]], after: list[list[dict]]) -> None:
    for old, new in zip(before, after, strict=True):
        assert [hit["id"] for hit in new] == [hit["id"] for hit in old]
        for old_hit, new_hit in zip(old, new, strict=True):
            assert set(new_hit) == set(old_hit)
            for key, value in old_hit.items():
                if isinstance(value, float):
                    assert new_hit[key] == pytest.approx(value, abs=1e-6), key
                else:
                    assert new_hit[key] == value, key


@pytest.mark.parametrize(("hybrid", "windows"), [(False, None), (False, WINDOWS), (True, WINDOWS)])
def test_purge_erases_deleted_cvs_from_disk_and_changes_no_result(model, tmp_path, hybrid, windows):
    db = tmp_path / "cvs.db"
    index = CVIndex(model, db=db, windows=windows, hybrid=hybrid)
    index.add(corpus(), progress=False)
    assert files_holding(db), "the sentinel was never written: the test could not fail"
    windows_of_deleted = len(stored(index, "cv-3")) + len(stored(index, "cv-8"))
    assert index.delete(["cv-3", "cv-8"]) == windows_of_deleted
    assert files_holding(db), "a plain delete erased the bytes: purge is no longer needed"
    before, counts = results(index, hybrid), index.count()
    assert counts["cvs"] == 10 and "cv-3" not in {hit["id"] for hit in before[0]}
    if hybrid:
        assert before[-1][0]["id"] == "cv-5" and before[-1][0]["bm25_rank"] == 1  # the texts are searched

    assert index.purge(progress=False) == counts
    assert files_holding(tmp_path) == []
    assert index.client.list_collections() == ["cvs"] and index.count() == counts
    assert_same_results(before, results(index, hybrid))  # metadata (team, source) included
    reopened = CVIndex(model, db=db, windows=windows)
    assert reopened.hybrid == hybrid and reopened.count() == counts
    assert_same_results(before, results(reopened, hybrid))
    # The copy is a working index: adding and deleting go on as before.
    assert reopened.add([documents(13)[12]], progress=False)["documents"] == 1
    windows_of_cv12 = len(stored(reopened, "cv-12"))
    assert reopened.delete(["cv-12"]) == windows_of_cv12 and reopened.count() == counts


def interrupted_index(model, db: Path, step: str, monkeypatch) -> CVIndex:
    """A hybrid, windowed index with cv-3 deleted whose purge is killed at ``step``."""
    index = CVIndex(model, db=db, windows=WINDOWS, hybrid=True)
    index.add(corpus(), progress=False)
    index.delete(["cv-3"])
    if step == "copying":  # a copy with some rows, as a purge killed while copying leaves it
        index._create("cvs" + PURGE_COPY)
        rows = index.client.query("cvs", filter='cv_id == "cv-0"', output_fields=["pk", "cv_id", "chunk"])
        keep = ("pk", "cv_id", "chunk", "windows", "source", "content_sha", "vector", "cv_text")
        full = index.client.get("cvs", ids=[row["pk"] for row in rows], output_fields=list(keep))
        index.client.insert("cvs" + PURGE_COPY, [{k: row[k] for k in keep} for row in full])
        return index

    # A kill (no cleanup runs) at the first call of the client method ``step`` names after the copy.
    method, calls = {"renamed": ("rename_collection", 2), "dropping": ("drop_collection", 1)}[step]
    real = getattr(index.client, method)
    seen = []

    def killed(*args, **kwargs):
        seen.append(args)
        if len(seen) == calls:
            raise SystemExit("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(index.client, method, killed)
    with pytest.raises(SystemExit):
        index.purge(progress=False)
    monkeypatch.undo()
    return index


@pytest.mark.parametrize(
    ("step", "message", "erased"),
    [
        ("copying", "removing the unfinished copy of an interrupted purge", False),
        ("renamed", "finishing an interrupted purge", True),
        ("dropping", "dropping the old collection of an interrupted purge", True),
    ],
)
def test_a_killed_purge_is_finished_or_undone_by_the_next_run(
    model, tmp_path, monkeypatch, caplog, step, message, erased
):
    db = tmp_path / "cvs.db"
    index = interrupted_index(model, db, step, monkeypatch)
    left = set(index.client.list_collections())
    assert left != {"cvs"} and left <= {"cvs", "cvs" + PURGE_COPY, "cvs" + PURGE_RETIRED}
    caplog.set_level(logging.WARNING, logger="cvsearch.store")
    reopened = CVIndex(model, db=db, windows=WINDOWS)
    assert message in caplog.text and SENTINEL not in caplog.text
    assert reopened.client.list_collections() == ["cvs"]
    assert reopened.count() == {
        "cvs": 11,
        "vectors": sum(len(stored(reopened, f"cv-{n}")) for n in range(12)),
    }
    assert (files_holding(tmp_path) == []) == erased
    hits = reopened.search(QUESTION, top_k=11, candidates=20, hybrid=True)
    assert len(hits) == 11 and hits[0]["id"] == "cv-5" and hits[0]["team"] == "t2"
    assert reopened.purge(progress=False)["cvs"] == 11 and files_holding(tmp_path) == []


def test_purge_refuses_a_collection_of_another_schema_and_leaves_it_as_it_was(model, tmp_path):
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=str(tmp_path / "cvs.db"))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("chunk", DataType.INT64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(model.config.output_dim))
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection("cvs", schema=schema, index_params=index_params)
    client.insert("cvs", [{"pk": "a#0", "chunk": 0, "vector": [0.1] * int(model.config.output_dim)}])
    index = CVIndex(model, db=tmp_path / "cvs.db")
    with pytest.raises(ValueError, match="built with another schema .* re-index the CVs"):
        index.purge(progress=False)
    assert index.client.list_collections() == ["cvs"] and index.count() == {"cvs": 1, "vectors": 1}


def test_cli_delete_purge_and_purge(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = [json.dumps({"id": d.id, "text": d.text, "team": d.metadata["team"]}) for d in corpus()]
    (tmp_path / "cvs.jsonl").write_text("\n".join(lines) + "\n")
    common = ["--model", str(checkpoint), "--db", "cvs.db"]
    index = [
        "index",
        "cvs.jsonl",
        "--id-field",
        "id",
        "--meta",
        "team",
        "--hybrid",
        "--windows",
        "--stride",
        "8",
    ]
    assert main([*index, *common]) == 0
    search = ["search", QUESTION, "--top-k", "20", "--hybrid", "--scoring", "max", *common]
    capsys.readouterr()

    assert main(["delete", "cv-3", *common]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and "cre purge" in out and files_holding(Path("cvs.db"))
    assert main(search) == 0
    before = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert main(["purge", *common]) == 0
    out, err = capsys.readouterr()
    assert "purged cvs.db: 11 CV(s), " in out and files_holding(Path("cvs.db")) == []
    assert SENTINEL not in out + err
    assert main(search) == 0
    assert_same_results([before], [[json.loads(line) for line in capsys.readouterr().out.splitlines()]])

    assert main(["delete", "cv-5", "cv-404", "--purge", *common]) == 0
    out = capsys.readouterr().out
    assert "of 2 CV id(s)" in out and "purged cvs.db: 10 CV(s), " in out
    assert files_holding(Path("cvs.db"), "Initech") == []
    assert files_holding(tmp_path, "Initech") == ["cvs.jsonl"]  # the check reads the bytes it should
