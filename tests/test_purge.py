"""``CVIndex.purge`` / ``cre purge``: deleted CVs leave the Milvus Lite folder, nothing else changes,
and a purge killed at any step is finished or undone by the next run. Real Milvus Lite, tiny model."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from milvus_lite.server_manager import server_manager_instance

from bench.purge import keys_in_data_files
from cvsearch.cli import main
from cvsearch.parsing import Document
from cvsearch.store import CVIndex, PurgeError
from cvsearch.windows import Windows
from tests import test_cvsearch
from tests.test_cvsearch import QUESTION, cv_text, documents, stored, with_employer
from tests.train_support import REPO_ROOT, subprocess_env

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


def index_keys(index: CVIndex) -> set[str]:
    """The primary keys of every row the index serves."""
    return {
        row["pk"] for row in index.client.query(index.collection, filter="chunk >= 0", output_fields=["pk"])
    }


def restarted(model, db: Path, **options) -> CVIndex:
    """A new :class:`CVIndex` on ``db`` after this process's Milvus Lite engine for it stopped, which
    flushes what it holds to its data files, as a new process would see them."""
    server_manager_instance.release_server(str(db))
    return CVIndex(model, db=db, **options)


@pytest.mark.parametrize(("hybrid", "windows"), [(False, None), (False, WINDOWS), (True, WINDOWS)])
def test_purge_erases_deleted_cvs_from_disk_and_changes_no_result(model, tmp_path, hybrid, windows):
    db = tmp_path / "cvs.db"
    CVIndex(model, db=db, windows=windows, hybrid=hybrid).add(corpus(), progress=False)
    # Deleted in a later session than it was added, as a deletion request is: the CV is in a data file.
    index = restarted(model, db, windows=windows)
    assert files_holding(db), "the sentinel was never written: the test could not fail"
    windows_of_deleted = len(stored(index, "cv-3")) + len(stored(index, "cv-8"))
    assert index.delete(["cv-3", "cv-8"]) == windows_of_deleted
    before, counts = results(index, hybrid), index.count()
    assert counts["cvs"] == 10 and "cv-3" not in {hit["id"] for hit in before[0]}
    if hybrid:
        assert before[-1][0]["id"] == "cv-5" and before[-1][0]["bm25_rank"] == 1  # the texts are searched
    index = restarted(model, db, windows=windows)
    assert files_holding(db), "a plain delete erased the bytes: purge is no longer needed"
    assert {"cv-3#0", "cv-8#0"} <= keys_in_data_files(db)  # the rows themselves, not only the text

    assert index.purge(progress=False) == counts
    assert files_holding(tmp_path) == []
    assert index.client.list_collections() == ["cvs"] and index.count() == counts
    assert [path.name for path in (db / "collections").iterdir()] == ["cvs"]
    assert_same_results(before, results(index, hybrid))  # metadata (team, source) included
    reopened = restarted(model, db, windows=windows)
    assert files_holding(tmp_path) == []
    live = index_keys(reopened)
    assert len(live) == counts["vectors"] and keys_in_data_files(db) == live
    assert reopened.hybrid == hybrid and reopened.count() == counts
    assert_same_results(before, results(reopened, hybrid))
    # The copy is a working index: adding and deleting go on as before.
    assert reopened.add([documents(13)[12]], progress=False)["documents"] == 1
    windows_of_cv12 = len(stored(reopened, "cv-12"))
    assert reopened.delete(["cv-12"]) == windows_of_cv12 and reopened.count() == counts


def purge_killed_at(checkpoint: str, db: str, step: str) -> None:
    """Run in a child process: purge ``db`` and die by SIGKILL (no cleanup runs) at ``step``:
    ``copying`` (part of the rows copied), ``renamed`` (the old collection renamed, the copy not
    yet), ``dropping`` (as the old collection's drop starts) or ``forgotten`` (its ``schema.json``
    deleted, its data files not yet: Milvus Lite no longer sees it)."""
    import shutil

    from pymilvus import MilvusClient

    import cvsearch.store
    from cvsearch.encoding import load_model

    def die_after(owner: object, name: str, calls: int = 1, when=lambda *args: True) -> None:
        real, made = getattr(owner, name), []

        def call_then_maybe_die(*args, **kwargs):
            result = real(*args, **kwargs)
            made.extend([args] if when(*args) else [])
            if len(made) == calls:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(owner, name, call_then_maybe_die)

    if step == "copying":
        cvsearch.store.IO_BATCH = 10  # pages of 10 rows: the kill comes after the second
        die_after(MilvusClient, "insert", calls=2)
    elif step == "renamed":
        die_after(MilvusClient, "rename_collection")
    elif step == "dropping":
        shutil.rmtree = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    else:
        die_after(os, "unlink", when=lambda path, *rest: str(path).endswith("schema.json"))
    CVIndex(load_model(checkpoint), db=db).purge(progress=False)


@pytest.mark.parametrize(
    ("step", "message", "erased"),
    [
        ("copying", "removing the unfinished copy of an interrupted purge", False),
        ("renamed", "finishing an interrupted purge", True),
        ("dropping", "dropping the old collection of an interrupted purge", True),
        ("forgotten", "removing what a killed purge left of .*cvs__purge_retired", True),
    ],
)
def test_a_killed_purge_is_finished_or_undone_by_the_next_run(
    checkpoint, model, tmp_path, caplog, step, message, erased
):
    db = tmp_path / "cvs.db"
    CVIndex(model, db=db, windows=WINDOWS, hybrid=True).add(corpus(), progress=False)
    index = restarted(model, db, windows=WINDOWS)
    index.delete(["cv-3"])
    expected = [index.search(QUESTION, top_k=11, candidates=20, hybrid=True), index.count()]
    # Milvus Lite serves a folder to one process: stop this one's engine (it restarts on the next open).
    server_manager_instance.release_server(str(db))
    code = f"from tests.test_purge import purge_killed_at; purge_killed_at({str(checkpoint)!r}, {str(db)!r}, {step!r})"
    child = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    collections = sorted(path.name for path in (db / "collections").iterdir())
    assert collections != ["cvs"], "the kill left a finished purge: nothing to resolve"

    caplog.set_level(logging.WARNING, logger="cvsearch.store")
    reopened = CVIndex(model, db=db, windows=WINDOWS)
    assert re.search(message, caplog.text) and SENTINEL not in caplog.text
    assert reopened.client.list_collections() == ["cvs"] and sorted(
        p.name for p in (db / "collections").iterdir()
    ) == ["cvs"]
    assert (files_holding(tmp_path) == []) == erased
    assert_same_results([expected[0]], [reopened.search(QUESTION, top_k=11, candidates=20, hybrid=True)])
    assert reopened.count() == expected[1]
    assert reopened.purge(progress=False) == expected[1] and files_holding(tmp_path) == []


def test_a_row_written_during_the_copy_stops_the_purge_and_changes_nothing(model, tmp_path, monkeypatch):
    index = CVIndex(model, db=tmp_path / "cvs.db", windows=WINDOWS)
    index.add(corpus(), progress=False)
    index.delete(["cv-3"])
    copy_rows = index._copy_rows

    def copy_then_another_writer_adds(copy, bar):  # what a second client could do on a server
        copy_rows(copy, bar)
        index.add(documents(13)[12:], progress=False)

    monkeypatch.setattr(index, "_copy_rows", copy_then_another_writer_adds)
    with pytest.raises(PurgeError, match=r"the copy holds \{'cvs': 11, .* the collection is unchanged"):
        index.purge(progress=False)
    assert index.client.list_collections() == ["cvs"] and index.count()["cvs"] == 12
    assert index.search(cv_text(12, 12), top_k=1, candidates=13)[0]["id"] == "cv-12"


@pytest.mark.parametrize("left", ["cvs__purge_copy", "cvs__purge_retired"])
def test_a_purge_collection_without_its_counterpart_is_kept_and_named(model, tmp_path, left):
    # Not a state a purge leaves (someone dropped the collection): nothing is dropped or adopted.
    CVIndex(model, db=tmp_path / "cvs.db", collection=left).add(documents(2), progress=False)
    with pytest.raises(ValueError, match=f"collection 'cvs' in .* is missing, and the collection '{left}'"):
        CVIndex(model, db=tmp_path / "cvs.db")
    assert CVIndex(model, db=tmp_path / "cvs.db", collection=left).count() == {"cvs": 2, "vectors": 2}


def test_purging_an_index_whose_cvs_were_all_deleted_leaves_an_empty_working_one(model, tmp_path):
    db = tmp_path / "cvs.db"
    CVIndex(model, db=db, hybrid=True).add(corpus()[:4], progress=False)
    index = restarted(model, db)
    index.delete([f"cv-{n}" for n in range(4)])
    assert files_holding(db) and index.purge(progress=False) == {"cvs": 0, "vectors": 0}
    assert files_holding(tmp_path) == [] and index.search(QUESTION, hybrid=True) == []
    assert index.add(corpus()[5:6], progress=False)["documents"] == 1  # it names the employer
    assert index.bm25_candidates(QUESTION) == ["cv-5"] and index.count() == {"cvs": 1, "vectors": 1}


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
    index = "index cvs.jsonl --id-field id --meta team --hybrid --windows --stride 8".split()
    assert main([*index, *common]) == 0
    server_manager_instance.release_server("cvs.db")  # each command below as a new process would run it
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
