"""The QC results store against SQLite and a real PostgreSQL server, with real assessments.

PostgreSQL tests need MEDQ_TEST_POSTGRES_URL (`.ci/run` starts a throwaway server and sets it);
each test gets its own schema.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from medq.assess.assessment import grade_for
from medq.describe import verdict_for
from medq.errors import InvalidParameter, MissingInput
from medq.qc.discover import Item
from medq.qc.fingerprint import fingerprint
from medq.qc.runner import assess_batch
from medq.qc.store import Store

PG_ENV = "MEDQ_TEST_POSTGRES_URL"
MODEL = "mediqa-s"


@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Real results as the QC workers make them: CT and MR samples, plus an empty file."""
    from medq.data.samples import export_samples

    folder = tmp_path_factory.mktemp("samples")
    paths = export_samples(folder, ["ct_small", "mr_small"])
    empty = folder / "empty.dcm"
    empty.write_bytes(b"")
    items = [Item(str(p), (str(p),)) for p in [*paths, empty]]
    results = assess_batch(items, MODEL)
    for item, result in zip(items, results, strict=True):
        result.update(fingerprint=fingerprint(item.files), model=MODEL)
    return results


def _pg_url(schema: str) -> str:
    url = os.environ[PG_ENV]
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """An empty store: a SQLite file, or a fresh schema on the PostgreSQL test server."""
    if request.param == "sqlite":
        s = Store(tmp_path / "qc.sqlite")
        yield s
        s.close()
        return
    if not os.environ.get(PG_ENV):
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against "
                    "(.ci/run installs and starts one)")
    schema = f"medq_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(os.environ[PG_ENV])
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    s = Store(_pg_url(schema))
    yield s
    s.close()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_record_and_read_back_real_assessments(store: Store, assessed: list[dict]) -> None:
    run = store.start_run("/archive", MODEL, 2, None)
    ids = [store.record({**r, "run_id": run}) for r in assessed]
    assert len(set(ids)) == len(assessed) == store.count()
    for item_id, result in zip(ids, assessed, strict=True):
        row = store.item(item_id)
        assert row["path"] == result["path"] and row["status"] == result["status"]
        assert row["run_id"] == run and row["reviewed"] is False and row["last_review"] is None
        if result["status"] == "ok":
            assert row["score"] == pytest.approx(result["score"])
            assert row["verdict"] == result["verdict"]
            assert row["findings"] == result["findings"]
            assert row["measures"] == {k: (v if v == v else None)
                                       for k, v in result["measures"].items()}
            assert row["dimension"] == "2D" and row["modality"] in ("CT", "MR")
            assert row["shape"] == result["shape"] and row["description"]
            assert row["error"] is None
            assert row["lossy_compression"] == {}  # the samples are stored losslessly
        else:
            assert row["score"] is None and row["verdict"] is None
            assert row["error"].startswith(result["path"]) and "empty" in row["error"]
    assert store.known(MODEL) == {r["path"]: r["fingerprint"] for r in assessed}
    assert store.known("another-model") == {}
    assert store.item(max(ids) + 100) is None


def test_lossy_files_are_exported_and_an_older_database_gains_the_column(
        store: Store, assessed: list[dict]) -> None:
    from conftest import dicom_testfile
    from medq.qc.export import export_rows

    path = dicom_testfile("693_J2KI.dcm")  # JPEG 2000 at 339:1, as its header states
    lossy = assess_batch([Item(path, (path,))], MODEL)[0]
    assert lossy["lossy_compression"]["ratio"] == pytest.approx(338.687, abs=1e-3)
    store.record({**lossy, "fingerprint": "1" * 64, "model": MODEL})
    store.record({**assessed[0], "model": MODEL})
    rows = {r["path"]: r for r in export_rows(store)}
    assert rows[path]["lossy"] is True and rows[path]["lossy_ratio"] == pytest.approx(338.687,
                                                                                      abs=1e-3)
    assert rows[assessed[0]["path"]]["lossy"] is False and rows[assessed[0]["path"]][
        "lossy_ratio"] is None
    assert export_rows(store, flat=False)[0]["lossy_compression"] is not None
    # a database made before the column: opening it adds the column, old rows read as unknown
    with store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE items DROP COLUMN lossy_compression"))
    reopened = Store(store.url)
    try:
        rows = {r["path"]: r for r in export_rows(reopened)}
        assert rows[path]["lossy"] is None and rows[path]["lossy_ratio"] is None
        reopened.record({**lossy, "fingerprint": "2" * 64, "model": MODEL})
        assert {r["path"]: r for r in export_rows(reopened)}[path]["lossy"] is True
    finally:
        reopened.close()


def test_upsert_keeps_one_row_per_path_and_model(store: Store, assessed: list[dict]) -> None:
    first = assessed[0]
    item_id = store.record(first)
    before = store.item(item_id)
    again = store.record({**first, "fingerprint": "0" * 64, "score": 1.2,
                          "verdict": verdict_for(1.2)})
    after = store.item(item_id)
    assert again == item_id and store.count() == 1
    assert after["fingerprint"] == "0" * 64 and after["score"] == pytest.approx(1.2)
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]  # microsecond stamps: the write moved it
    other = store.record({**first, "model": "cnniqa"})
    assert other != item_id and store.count() == 2
    assert store.count(model="cnniqa") == 1
    assert store.known(MODEL) == {first["path"]: "0" * 64}


def test_concurrent_writers_of_one_item_leave_one_row(store: Store, assessed: list[dict]
                                                      ) -> None:
    result = assessed[1]
    ids: list[int] = []
    failures: list[BaseException] = []

    def write(k: int) -> None:
        try:
            ids.append(store.record({**result, "score": 1.0 + k / 10}))
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            failures.append(e)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(set(ids)) == 1 and store.count() == 1


def _spread(assessed: list[dict]) -> list[dict]:
    """Rows at scores 1.0 … 4.6 (copies of the real CT and MR results) plus the error row."""
    rows = []
    for k in range(10):
        base = assessed[k % 2]
        score = 1.0 + 0.4 * k
        rows.append({**base, "path": f"{base['path']}#{k}", "score": score,
                     "verdict": verdict_for(score), "grade": grade_for(score)})
    return [*rows, assessed[2]]


def test_filters_sorting_and_paging(store: Store, assessed: list[dict]) -> None:
    rows = _spread(assessed)
    for row in rows:
        store.record(row)
    scores = sorted(r["score"] for r in rows if r["status"] == "ok")
    listed = store.items()
    assert [r["score"] for r in listed[:-1]] == pytest.approx(scores)
    assert listed[-1]["status"] == "error"  # empty scores sort last, both directions
    assert store.items(descending=True)[-1]["status"] == "error"
    assert [r["score"] for r in store.items(descending=True)[:-1]] == pytest.approx(scores[::-1])
    window = store.items(min_score=2.0, max_score=3.4)
    assert window and all(2.0 <= r["score"] <= 3.4 for r in window)
    assert len(window) == store.count(min_score=2.0, max_score=3.4) == sum(
        2.0 <= s <= 3.4 for s in scores)
    for verdict in ("good", "usable", "reject"):
        found = store.items(verdict=verdict)
        assert len(found) == sum(verdict_for(s) == verdict for s in scores)
        assert all(r["verdict"] == verdict for r in found)
    assert store.count(status="error") == 1 and store.count(status="ok") == len(scores)
    ct = store.items(modality="CT")
    assert ct and all(r["modality"] == "CT" for r in ct)
    assert [r["id"] for r in store.items(modality=" ct")] == [r["id"] for r in ct]  # any case
    assert store.count(modality="mr") == store.count(modality="MR") > 0
    pages = [store.items(sort="path", limit=4, offset=o) for o in range(0, len(rows), 4)]
    paths = [r["path"] for page in pages for r in page]
    assert paths == sorted(r["path"] for r in rows)
    with pytest.raises(InvalidParameter, match="cannot sort"):
        store.items(sort="no_such_column")
    # grades and verdicts sort by quality as the score does, worst first, not alphabetically:
    # each change of grade (verdict) down the list is to one of higher scores
    for column in ("grade", "verdict"):
        listed = [r for r in store.items(sort=column) if r["status"] == "ok"]
        changes = [(a, b) for a, b in zip(listed, listed[1:], strict=False)
                   if a[column] != b[column]]
        assert changes and all(a["score"] < b["score"] for a, b in changes), column
        assert len(listed) == len(scores)


def test_reviews_are_an_append_only_audit(store: Store, assessed: list[dict]) -> None:
    item_id = store.record(assessed[0])
    other = store.record(assessed[1])
    before = store.item(item_id)
    first = store.add_review(item_id, "dr. ada", "accept", "diagnostic")
    second = store.add_review(item_id, "dr. bo", "reject", "streaks")
    assert first["id"] != second["id"] and second["decision"] == "reject"
    assert [r["decision"] for r in store.reviews(item_id)] == ["accept", "reject"]
    row = store.item(item_id)
    assert row["reviewed"] and row["last_review"]["reviewer"] == "dr. bo"
    for key in ("score", "grade", "verdict", "findings", "status", "updated_at"):
        assert row[key] == before[key]
    assert [r["id"] for r in store.items(reviewed=True)] == [item_id]
    assert [r["id"] for r in store.items(reviewed=False)] == [other]
    assert store.count(reviewed=True) == 1
    with pytest.raises(InvalidParameter, match="decision"):
        store.add_review(item_id, "dr. ada", "maybe")
    with pytest.raises(InvalidParameter, match="no item"):
        store.add_review(other + 1000, "dr. ada", "accept")
    with pytest.raises(InvalidParameter, match="reviewer"):
        store.add_review(item_id, "  ", "comment", "who?")
    for empty in ("", "  \n"):
        with pytest.raises(InvalidParameter, match="needs a comment"):
            store.add_review(item_id, "dr. ada", "comment", empty)
    assert len(store.reviews(item_id)) == 2 and store.reviews(other) == []


def test_a_review_of_content_since_changed_is_history_not_the_items_review(
        store: Store, assessed: list[dict]) -> None:
    """A file reviewed, then changed and re-assessed, still counted as reviewed (export,
    report, the app's work queue) with the old decision; now it is unreviewed again, and the
    old decision stays in its history with the fingerprint it was made on. Re-recording the
    same content keeps the review; a review stored before fingerprints were kept still counts."""
    from medq.qc.export import export_rows

    item_id = store.record(assessed[0])
    old = store.add_review(item_id, "dr. ada", "reject", "motion")
    assert old["fingerprint"] == assessed[0]["fingerprint"]
    store.record(assessed[0])  # the same content again (e.g. --retry-errors): still reviewed
    assert store.item(item_id)["reviewed"] and store.summary()["reviewed"] == 1
    store.record({**assessed[0], "fingerprint": "f" * 64})  # the file changed: re-assessed
    row = store.item(item_id)
    assert not row["reviewed"] and row["last_review"] is None
    assert store.summary()["reviewed"] == 0 and store.count(reviewed=True) == 0
    assert item_id in [r["id"] for r in store.items(reviewed=False)]
    exported = {r["path"]: r for r in export_rows(store)}[assessed[0]["path"]]
    assert exported["review"] is None and exported["reviewer"] is None
    assert [(r["decision"], r["fingerprint"]) for r in store.reviews(item_id)] == [
        ("reject", assessed[0]["fingerprint"])]
    store.add_review(item_id, "dr. bo", "accept")
    assert store.item(item_id)["last_review"]["reviewer"] == "dr. bo"
    with store.engine.begin() as conn:  # a review stored by an earlier medq: no fingerprint
        conn.execute(sa.text("UPDATE reviews SET fingerprint = NULL"))
    assert store.item(item_id)["last_review"]["reviewer"] == "dr. bo"


def test_items_stored_without_measures_are_found_in_the_database(
        store: Store, assessed: list[dict]) -> None:
    """`unmeasured` filters in SQL (SQLite and PostgreSQL): ok items stored with no measures
    ({} or none), not those with measures, not errors, not another model's."""
    ok = [row for row in assessed if row["status"] == "ok"]
    assert len(ok) >= 2 and all(row["measures"] for row in ok)
    store.record(ok[0])
    store.record({**ok[1], "measures": {}})
    store.record({**ok[1], "model": "other", "measures": None})
    for row in assessed:
        if row["status"] == "error":
            store.record(row)
    assert store.again(MODEL, unmeasured=True) == {ok[1]["path"]}
    assert store.again("other", unmeasured=True) == {ok[1]["path"]}
    failed = {row["path"] for row in assessed if row["status"] == "error"}
    assert failed and store.again(MODEL, errors=True) == failed
    assert store.again(MODEL, unmeasured=True, errors=True) == failed | {ok[1]["path"]}
    assert store.again(MODEL) == set()  # the input's errors: the same file fails the same way
    bad = next(row for row in assessed if row["status"] == "error")
    assert bad["bad_input"] is True
    internal = {**bad, "path": "/a/internal.dcm", "bad_input": False,
                "error": "/a/internal.dcm: internal error: TypeError: oops"}
    store.record(internal)  # medq's own failure: a later run (a fixed medq) tries it again
    store.record({**bad, "path": "/a/old.dcm", "bad_input": None})  # cause not recorded
    assert store.again(MODEL) == {"/a/internal.dcm", "/a/old.dcm"}


def test_runs_and_summary(store: Store, assessed: list[dict]) -> None:
    first = store.start_run("/archive", MODEL, 1, None)
    second = store.start_run("/archive", MODEL, None, "tcp://scheduler:8786")
    for result in assessed:
        store.record({**result, "run_id": second})
    killed = store.runs()[0]  # killed (kill -9, out of memory) before it recorded its counts:
    assert (killed["ok"], killed["errors"], killed["counted"]) == (2, 1, True)  # it read 0 and 0
    store.finish_run(second, {"total": 3, "ok": 2, "errors": 1, "skipped": 0})
    runs = store.runs()
    assert [r["id"] for r in runs] == [second, first]
    assert runs[0]["finished_at"] is not None and runs[1]["finished_at"] is None  # interrupted
    assert runs[0]["scheduler"] == "tcp://scheduler:8786" and runs[0]["errors"] == 1
    assert runs[0]["medq_version"]
    store.finish_run(first, {"total": 5, "ok": 3, "errors": 1, "skipped": 0}, finished=False)
    interrupted = store.runs()[1]
    assert interrupted["finished_at"] is None  # the counts so far, still not finished
    assert (interrupted["total"], interrupted["ok"], interrupted["errors"]) == (5, 3, 1)
    assert store.values("model") == [MODEL] and store.values("modality") == ["CT", "MR"]
    first = store.items()[0]["id"]
    store.add_review(first, "dr. ada", "reject", "motion")
    store.add_review(first, "dr. bo", "comment", "check")  # a comment decides nothing
    summary = store.summary()
    ok = [r for r in assessed if r["status"] == "ok"]
    assert summary["total"] == 3 and summary["reviewed"] == 1
    standing = store.item(first)["last_review"]  # the reject stands, not the later comment
    assert (standing["decision"], standing["reviewer"]) == ("reject", "dr. ada")
    from medq.qc.export import export_rows

    exported = {r["path"]: r for r in export_rows(store)}[store.item(first)["path"]]
    assert (exported["review"], exported["review_comment"]) == ("reject", "motion")  # the why
    store.add_review(store.items()[1]["id"], "dr. bo", "comment", "only a note")
    assert store.summary()["reviewed"] == 1 and store.count(reviewed=True) == 1
    assert summary["status"] == {"ok": 2, "error": 1}
    assert summary["modality"] == {"CT": 1, "MR": 1}
    assert summary["verdict"] == dict(Counter(r["verdict"] for r in ok))


def test_sqlite_is_wal_and_a_reader_never_blocks_the_writer(tmp_path: Path,
                                                             assessed: list[dict]) -> None:
    path = tmp_path / "qc.sqlite"
    writer, reader = Store(str(path)), Store(f"sqlite:///{path}")
    assert writer.url == reader.url == f"sqlite:///{path.resolve()}"
    stop, counts, failures = threading.Event(), [], []

    def read() -> None:
        while not stop.is_set():
            try:
                counts.append(reader.count())
            except BaseException as e:  # noqa: BLE001 - collected and asserted below
                failures.append(e)
                return

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for k in range(150):
            writer.record({**assessed[0], "path": f"{assessed[0]['path']}#{k}"})
    finally:
        stop.set()
        thread.join()
    assert failures == [] and counts and counts == sorted(counts)
    assert writer.count() == 150
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer.close()
    reader.close()


def test_many_processes_may_open_a_new_database_at_once(tmp_path: Path) -> None:
    """The QC run, the report and the review app open the store concurrently."""
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    if os.environ.get(PG_ENV):  # also a fresh PostgreSQL schema
        schema = f"medq_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(os.environ[PG_ENV])
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        urls = [url, _pg_url(schema)]
    else:
        admin, urls = None, [url]
    try:
        for target in urls:
            barrier, failures, stores = threading.Barrier(6), [], []

            def open_store(target: str = target, barrier: threading.Barrier = barrier,
                           failures: list = failures, stores: list = stores) -> None:
                barrier.wait()
                try:
                    stores.append(Store(target))
                except BaseException as e:  # noqa: BLE001 - collected and asserted below
                    failures.append(e)

            threads = [threading.Thread(target=open_store) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert failures == [] and len(stores) == 6, target
            stores[0].record({"path": "/a.dcm", "model": MODEL, "fingerprint": "f",
                              "status": "error", "error": "/a.dcm: file is empty"})
            assert all(s.count() == 1 for s in stores)
            for s in stores:
                s.close()
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def test_unusable_databases_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="does not exist"):
        Store(tmp_path / "missing" / "qc.sqlite")
    with pytest.raises(MissingInput, match="no such results database"):
        Store(tmp_path / "qc.sqlite", create=False)
    assert not (tmp_path / "qc.sqlite").exists()
    with pytest.raises(InvalidParameter):
        Store("nosuchdialect://host/db")
    with pytest.raises(InvalidParameter, match="cannot open the results database"):
        Store("postgresql+psycopg://medq@127.0.0.1:1/none?connect_timeout=5")


def test_a_read_only_database_of_an_earlier_medq_is_read_as_this_ones(
        tmp_path: Path, assessed: list[dict], monkeypatch: pytest.MonkeyPatch) -> None:
    """A database made before this medq added columns, on read-only storage: opening it tried
    to add them (ALTER TABLE) and failed, so export, report and the review app could not read
    it; now it reads as this medq's, the added columns empty, and the file is not written."""
    from medq.qc import database as database_module
    from medq.qc.export import export_rows
    from medq.qc.schema import ADDED_COLUMNS

    path = tmp_path / "qc.sqlite"
    with Store(path) as writer:
        for row in assessed:
            writer.record(row)
        writer.finish_run(writer.start_run("/archive", MODEL, 1, None),
                          {"total": 1, "ok": 1, "errors": 0, "skipped": 0})
    con = sqlite3.connect(path)  # as an earlier medq left it
    for table, columns in ADDED_COLUMNS.items():
        for column in columns:
            con.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    con.commit()
    before = [r[1] for r in con.execute("PRAGMA table_info(items)")]
    con.close()
    monkeypatch.setattr(database_module, "writable", lambda database: False)
    with Store(path, create=False) as reader:
        rows = export_rows(reader)
        assert len(rows) == len(assessed) and all(r["modality_source"] is None for r in rows)
        assert reader.runs()[0]["stopped_at"] is None
        assert all(i["suspected"] is None for i in reader.items())
    con = sqlite3.connect(path)
    assert [r[1] for r in con.execute("PRAGMA table_info(items)")] == before
    con.close()


def test_a_database_this_user_may_not_write_is_read_but_never_written(
        tmp_path: Path, assessed: list[dict], monkeypatch: pytest.MonkeyPatch) -> None:
    """Results on read-only storage (a shared archive's): export, report and the review app read
    them through an immutable read-only connection, which leaves no WAL or shared-memory file
    beside the database; every write is refused by name, and `medq qc run` refuses to start.
    (Tests run as root, who may write anything, so the permission check is replaced.)"""
    from medq.qc import database as database_module
    from medq.qc.export import export_rows

    path = tmp_path / "qc.sqlite"
    with Store(path) as writer:
        for row in assessed:
            writer.record(row)
        first = writer.items()[0]["id"]
        writer.add_review(first, "Dr Rao", "accept")
    assert not (tmp_path / "qc.sqlite-wal").exists()  # the last connection checkpointed it
    monkeypatch.setattr(database_module, "writable", lambda database: False)
    with Store(path, create=False) as reader:
        assert reader.read_only and reader.count() == len(assessed)
        assert len(export_rows(reader)) == len(assessed)
        assert [r["reviewer"] for r in reader.reviews(first)] == ["Dr Rao"]
        assert not (tmp_path / "qc.sqlite-shm").exists()  # open, yet nothing written beside it
        with pytest.raises(InvalidParameter, match="read-only for this user"):
            reader.add_review(first, "Dr Rao", "reject")
        with pytest.raises(InvalidParameter, match="read-only for this user"):
            reader.record(assessed[0])
    with pytest.raises(InvalidParameter, match="read-only for this user"):
        Store(path)  # a writer: `medq qc run`
    from medq.qc.database import is_snapshot

    # while a writer has it open, a reader shares its journal and sees its later commits (an
    # immutable reader kept showing the results it opened on)
    with Store(path, create=False) as snapshot:
        assert is_snapshot(snapshot.url)
    monkeypatch.setattr(database_module, "writable", lambda database: True)
    with Store(path) as writer:
        writer.record({**assessed[0], "path": "/elsewhere/new.dcm"})
        monkeypatch.setattr(database_module, "writable", lambda database: False)
        with Store(path, create=False) as reader:
            assert not is_snapshot(reader.url) and reader.count() == len(assessed) + 1
            writer.add_review(first, "Dr Lee", "reject")
            writer.record({**assessed[0], "path": "/elsewhere/newer.dcm"})
            assert reader.count() == len(assessed) + 2
            assert [r["reviewer"] for r in reader.reviews(first)] == ["Dr Rao", "Dr Lee"]


def test_exports_have_the_same_columns_whatever_the_database_holds(
        store: Store, assessed: list[dict], tmp_path: Path) -> None:
    # a CT-only database lacked the MR measure columns and an all-errors one every measure
    # column, and its Parquet score column had no number type
    import pyarrow.parquet as pq

    from medq.assess.measures import MEASURE_NAMES
    from medq.qc.export import export_items

    failed = next(r for r in assessed if r["status"] == "error")
    store.record({**failed, "model": MODEL})
    headers, types = [], []
    for name in ("errors", "ct"):
        if name == "ct":
            store.record({**next(r for r in assessed if r.get("modality") == "CT"),
                          "model": MODEL})
        export_items(store, tmp_path / f"{name}.csv")
        headers.append((tmp_path / f"{name}.csv").read_text().splitlines()[0].split(","))
        export_items(store, tmp_path / f"{name}.parquet")
        schema = pq.read_schema(tmp_path / f"{name}.parquet")
        assert str(schema.field("score").type) == "double", name
        assert str(schema.field("ghosting_ratio").type) == "double", name
        assert {str(schema.field(f).type) for f in ("bad_input", "recall", "lossy")} == {"bool"}
        types.append({f.name: str(f.type) for f in schema})
    assert headers[0] == headers[1] and set(MEASURE_NAMES) <= set(headers[0])
    # nonfinite_fraction was text while every row was empty, noisy_slice_count a float
    assert types[0] == types[1], {k: (v, types[1][k]) for k, v in types[0].items()
                                  if v != types[1].get(k)}
    assert (types[1]["noisy_slice_count"], types[1]["nonfinite_fraction"]) == ("int64", "double")
    import csv

    rows = {r["path"]: r for r in csv.DictReader((tmp_path / "ct.csv").open())}
    assert rows[failed["path"]]["bad_input"] == str(bool(failed.get("bad_input")))  # whose fault
    assert headers[0].index("bad_input") == headers[0].index("error") + 1


def test_items_no_longer_in_the_archive_are_found_and_pruned_with_their_reviews(
        store: Store, assessed: list[dict], tmp_path: Path) -> None:
    # deleted or renamed files kept their rows: exports listed files that no longer exist, and
    # a renamed series twice; `medq qc run` now names them, and --prune removes them
    from medq.qc.planning import vanished

    ok = [r for r in assessed if r["status"] == "ok"]
    archive = Path(ok[0]["path"]).parent
    for row in ok:
        store.record({**row, "model": MODEL})
    outside = {**ok[0], "path": "/elsewhere/scan.dcm", "model": MODEL}
    series = {**ok[0], "path": f"{archive}#1.2.3", "model": MODEL}  # a series since regrouped
    store.record(outside)
    store.record(series)
    kept, deleted = Item(ok[0]["path"], (ok[0]["path"],)), ok[1]["path"]
    gone = vanished(store.known(MODEL), [kept], archive)
    assert gone == sorted([deleted, series["path"]])  # not the item of another archive
    item_id = next(r["id"] for r in store.items() if r["path"] == deleted)
    store.add_review(item_id, "Dr Ada", "accept")
    assert store.forget(gone, MODEL) == 2
    assert {r["path"] for r in store.items()} == {ok[0]["path"], "/elsewhere/scan.dcm"}
    assert store.reviews(item_id) == [] and store.forget([], MODEL) == 0


def test_siblings_named_like_the_archive_are_not_gone_and_a_file_that_changed_kind_is(
        tmp_path: Path) -> None:
    """`site@2/…` and `site#old/…` beside `site` are not under it (--prune deleted them and
    their reviews). A 4D file stored volume by volume is walked so again (`by_stored_volume`),
    so one walked whole is no longer 4D and its volume rows are gone, and the whole-file row of
    a file now walked volume by volume is gone (a 3D file's row beside its new volumes stayed
    through --prune); a volume a shrunk file no longer has is gone."""
    from medq.qc.planning import vanished

    site = tmp_path / "site"
    site.mkdir()
    own = [f"{site}/a.dcm", f"{site}#1.2.3", f"{site}/fmri.nii@volume=0",
           f"{site}/fmri.nii@volume=1", f"{site}/dwi.nii"]
    siblings = [f"{tmp_path}/site@2/b.dcm", f"{tmp_path}/site#old/c.dcm"]
    known = dict.fromkeys(own + siblings, "fp")
    whole = [Item(f"{site}/fmri.nii", (f"{site}/fmri.nii",))]
    volumes = [Item(f"{site}/dwi.nii@volume={k}", (f"{site}/dwi.nii",)) for k in (0, 1)]
    assert vanished(known, whole + volumes, site) == sorted([
        f"{site}/a.dcm", f"{site}#1.2.3", f"{site}/fmri.nii@volume=0",
        f"{site}/fmri.nii@volume=1", f"{site}/dwi.nii"])
    shrunk = [Item(f"{site}/fmri.nii@volume=0", (f"{site}/fmri.nii",))]
    assert f"{site}/fmri.nii@volume=1" in vanished(known, shrunk, site)


def test_a_folder_the_walk_may_not_list_is_an_error_and_what_it_held_is_not_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder without permission to list was skipped in silence, its stored items called
    gone (and `--prune` deleted them with their reviews). The tests run as root, whom no
    permission stops, so listing that folder is made to fail as it would for another user."""
    from pydicom.data import get_testdata_file

    from medq.qc.discover import UNLISTED, discover
    from medq.qc.planning import plan, vanished

    archive = tmp_path / "site"
    for name in ("open", "locked"):
        (archive / name).mkdir(parents=True)
        (archive / name / "ct.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm"))
                                                .read_bytes())
    locked = str((archive / "locked").resolve())
    real_scandir, real_listdir = os.scandir, os.listdir

    def refuse(real):  # as the system refuses a folder its user may not read
        def listing(path: str = ".") -> object:
            if str(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)
        return listing

    monkeypatch.setattr(os, "scandir", refuse(real_scandir))
    monkeypatch.setattr(os, "listdir", refuse(real_listdir))
    items = discover(archive)
    assert [(i.path, i.note) for i in items] == [(locked, UNLISTED),
                                                 (str(archive.resolve() / "open" / "ct.dcm"), "")]
    todo, unreadable, _ = plan(items, {})
    assert [i.path for i, _ in todo] == [items[1].path]
    (item, _, error), = unreadable
    assert item.path == locked and "cannot list the folder (permission denied)" in error.message
    known = {f"{locked}/ct.dcm": "fp", items[1].path: "fp"}
    assert vanished(known, items, archive) == []


def test_an_export_never_replaces_a_file_of_a_series_or_a_4d_file_stored_by_volume(
        store: Store, assessed: list[dict], tmp_path: Path) -> None:
    """The store names a series by its folder (`<folder>` or `<folder>#<uid>`) and a 4D file's
    volumes `<file>@volume=<k>`: their files were not recognised as images it reads, and an
    export replaced them."""
    row = next(r for r in assessed if r["status"] == "ok")
    for name in ("t1", "t2", "fmri.nii"):
        (tmp_path / name).mkdir() if "." not in name else (tmp_path / name).write_bytes(b"x")
    for folder in ("t1", "t2"):
        (tmp_path / folder / "IM1.dcm").write_bytes(b"slice")
    for path in (tmp_path / "t1", f"{tmp_path / 't2'}#1.2.3", f"{tmp_path / 'fmri.nii'}@volume=0"):
        store.record({**row, "path": str(path), "model": MODEL})
    for target in (tmp_path / "t1" / "IM1.dcm", tmp_path / "t2" / "IM1.dcm",
                   tmp_path / "fmri.nii"):
        with pytest.raises(InvalidParameter, match="write the output elsewhere"):
            store.refuse_output(target)
    store.refuse_output(tmp_path / "t1" / "new.csv")  # nothing there to replace
    store.refuse_output(tmp_path / "other.csv")
    # the sidecars medq reads beside them (a PET that lost its sidecar read as OT)
    store.record({**row, "path": str(tmp_path / "pet.nii.gz"), "model": MODEL})
    store.record({**row, "path": str(tmp_path / "x.png"), "model": MODEL})
    for sidecar in ("pet.json", "x.png.json", "x.json", "t1.json", "fmri.json"):
        with pytest.raises(InvalidParameter, match="or its sidecar"):
            store.refuse_output(tmp_path / sidecar)
    store.refuse_output(tmp_path / "pet_results.json")
    store.refuse_output(tmp_path / "t1" / "IM1.json")


def test_another_applications_sqlite_file_is_never_written_into(tmp_path: Path) -> None:
    """`medq serve --db` (or qc run, export) on another application's SQLite file added medq's
    tables to it; an empty file was turned into a results database by a reader."""
    import sqlite3

    from medq.errors import InvalidParameter

    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("create table notes(x)")
    for create in (True, False):
        with pytest.raises(InvalidParameter, match=r"not a medq results database: it holds "
                                                   r"other tables \(notes\)"):
            Store(foreign, create=create)
    with sqlite3.connect(foreign) as conn:
        assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["notes"]
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(InvalidParameter, match="holds no medq QC results"):
        Store(empty, create=False)
    Store(empty).close()  # a writer makes it a results database
    Store(empty, create=False).close()


def test_an_item_whose_file_states_no_modality_is_stored_as_graded() -> None:
    """A NIfTI MR was stored as OT (the file states no modality), so a filter by MR missed it
    though `medq assess` graded it as MR; a file's own modality stands."""
    from types import SimpleNamespace

    from medq.qc.rows import graded_as

    def item(modality: str, told: str | None) -> SimpleNamespace:
        return SimpleNamespace(modality=modality, prompts={"modality": told} if told else {})

    assert [graded_as(item("OT", "MR")), graded_as(item("OT", "XR")),
            graded_as(item("OT", "other")), graded_as(item("OT", None)),
            graded_as(item("CT", "MR"))] == ["MR", "DX", "OT", "OT", "CT"]


def test_a_write_lock_held_too_long_is_one_line_not_the_statement() -> None:
    """A run whose write met SQLite's lock held by another process past the busy timeout
    printed the whole INSERT with its parameters; it is one line, and other errors pass."""
    from medq.errors import DatabaseBusy, DatabaseUnavailable
    from medq.qc.database import locked_as_busy

    locked = sa.exc.OperationalError("INSERT INTO items …", {"findings": "x" * 2000},
                                     sqlite3.OperationalError("database is locked"))
    busy = pytest.raises(DatabaseBusy, match="held the results database's write lock")
    with busy as caught, locked_as_busy("qc.sqlite"):
        raise locked
    assert isinstance(caught.value, DatabaseUnavailable) and "INSERT" not in str(caught.value)
    other = sa.exc.OperationalError("SELECT", {}, sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(sa.exc.OperationalError), locked_as_busy("qc.sqlite"):
        raise other


def test_duplicates_are_byte_copies_not_volumes_of_one_file_nor_unread_items(
        store: Store, assessed: list[dict]) -> None:
    """`duplicate_of` names the first path holding the same bytes; the volumes of one 4D file
    share its bytes but are not copies, and items whose bytes could not be read (stored with
    the placeholder fingerprint) are not copies of each other; a non-finite ratio of noisy
    slices is stored as JSON any reader takes."""
    from medq.qc.export import export_rows
    from medq.qc.planning import UNREADABLE

    base = {**assessed[0], "model": MODEL}
    rows = [{**base, "path": "/a/one.dcm", "fingerprint": "1" * 64},
            {**base, "path": "/b/copy.dcm", "fingerprint": "1" * 64},
            *({**base, "path": f"/c/run.nii@volume={k}", "fingerprint": "2" * 64} for k in (0, 1)),
            *({"path": f"/d/{n}", "status": "error", "error": f"/d/{n}: unreadable",
               "fingerprint": UNREADABLE, "model": MODEL} for n in ("x", "y")),
            {**base, "path": "/e/odd.nii.gz", "fingerprint": "3" * 64,
             "noisy_slices": {"slices": [4], "runs": [[4, 4]], "ratio": float("inf"),
                              "sigma": 1.0, "reference": 0.0, "compared": 20}}]
    for row in rows:
        store.record(row)
    exported = {r["path"]: r for r in export_rows(store, flat=False)}
    assert exported["/b/copy.dcm"]["duplicate_of"] == "/a/one.dcm"
    assert exported["/a/one.dcm"]["duplicate_of"] is None
    assert exported["/c/run.nii@volume=1"]["duplicate_of"] is None
    assert exported["/d/y"]["duplicate_of"] is None
    assert exported["/e/odd.nii.gz"]["noisy_slices"]["ratio"] is None  # JSON-safe, not inf


def test_the_kept_copy_is_a_present_regular_file_whatever_the_model(tmp_path: Path) -> None:
    """Of the copies of one file, a curator keeps the file itself: not a link to it (deleting
    the copies would leave the link dangling), nor a path that is gone, and a path reaching it
    through a linked folder is no copy of it; the results of two models for the same paths name
    the same kept copy."""
    from medq.qc.duplicates import duplicate_of

    real = tmp_path / "b" / "scan.dcm"
    real.parent.mkdir()
    real.write_bytes(b"pixels")
    link = tmp_path / "a_link.dcm"
    link.symlink_to(real)
    copy = tmp_path / "c_copy.dcm"
    copy.write_bytes(b"pixels")
    folder_link = tmp_path / "a_set"
    folder_link.symlink_to(real.parent, target_is_directory=True)  # a set built of links
    through = folder_link / "scan.dcm"
    paths = [str(tmp_path / "0_gone.dcm"), str(link), str(real), str(copy), str(through)]
    models = ("mediqa-s", "cnniqa")
    items = [{"path": p, "status": "ok", "fingerprint": "f" * 64, "model": m}
             for p in paths for m in models]
    copies = duplicate_of(items)
    # the two paths that reach the scan itself through links are no copies of it
    named = {str(tmp_path / "0_gone.dcm"), str(copy)}
    assert set(copies) == {(p, m) for p in named for m in models}
    assert set(copies.values()) == {str(real)}
    # a file that changed between two models' runs: each model pairs the bytes it saw
    changed = [{"path": "/x/b", "fingerprint": "1" * 64, "model": "A", "status": "ok"},
               {"path": "/x/c", "fingerprint": "1" * 64, "model": "A", "status": "ok"},
               {"path": "/x/b", "fingerprint": "2" * 64, "model": "B", "status": "ok"},
               {"path": "/x/a", "fingerprint": "2" * 64, "model": "B", "status": "ok"}]
    assert duplicate_of(changed) == {("/x/c", "A"): "/x/b", ("/x/b", "B"): "/x/a"}
