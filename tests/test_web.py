"""The review app through FastAPI's test client, on a store filled with real assessments."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import dicom_testfile
from conftest_qc import fill_store, qc_results
from medq.image import MedImage
from medq.qc.store import Store
from medq.web.app import create_app

with warnings.catch_warnings():  # starlette suggests httpx2 for its test client; httpx works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


class Web:
    """A test client on a fresh database plus what the test needs to check against it."""

    def __init__(self, client: TestClient, db: Path, rows: list[dict], ids: dict[str, int],
                 uploads: Path) -> None:
        self.client, self.db, self.rows, self.ids, self.uploads = client, db, rows, ids, uploads

    def id_of(self, **match: Any) -> int:
        """Id of the first stored row whose fields equal `match`."""
        row = next(r for r in self.rows if all(r.get(k) == v for k, v in match.items()))
        return self.ids[row["path"]]

    def ids_where(self, test: Any) -> set[int]:
        """Ids of the rows for which `test(row)` is true."""
        return {self.ids[r["path"]] for r in self.rows if test(r)}


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Result rows of real assessments (samples, degraded samples, one broken file)."""
    return qc_results(tmp_path_factory.getbasetemp() / "qc-inputs")


@pytest.fixture
def web(rows: list[dict], tmp_path: Path) -> Iterator[Web]:
    """The app on a new database holding `rows`."""
    db = tmp_path / "qc.sqlite"
    ids = fill_store(db, rows)
    uploads = tmp_path / "uploads"
    with TestClient(create_app(db, uploads_dir=uploads)) as client:
        yield Web(client, db, rows, ids, uploads)


def listed_ids(html: str) -> list[int]:
    """Item ids of the list page's rows, in order."""
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


def png_pixels(data: bytes) -> np.ndarray:
    """Decode PNG bytes."""
    return np.asarray(Image.open(io.BytesIO(data)))


def test_list_page_shows_every_item(web: Web) -> None:
    r = web.client.get("/items")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert sorted(listed_ids(r.text)) == sorted(web.ids.values())
    assert f"<b>{len(web.rows)}</b> items match" in r.text
    for row in web.rows:
        assert row["path"] in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert web.client.get("/", follow_redirects=False).headers["location"] == "/items"


def test_list_filters_and_sorting(web: Web) -> None:
    get = web.client.get
    assert set(listed_ids(get("/items?verdict=reject").text)) == web.ids_where(
        lambda r: r.get("verdict") == "reject")
    assert set(listed_ids(get("/items?modality=MR").text)) == web.ids_where(
        lambda r: r.get("modality") == "MR")
    assert set(listed_ids(get("/items?status=error").text)) == web.ids_where(
        lambda r: r["status"] == "error")
    scores = sorted(r["score"] for r in web.rows if r["status"] == "ok")
    lo, hi = (scores[1] + scores[2]) / 2, (scores[-2] + scores[-1]) / 2
    page = get(f"/items?min_score={lo}&max_score={hi}")
    assert set(listed_ids(page.text)) == web.ids_where(  # scores shown to 2 decimals
        lambda r: r["status"] == "ok" and lo - 0.005 <= r["score"] <= hi + 0.005)
    lowest = min((r for r in web.rows if r["status"] == "ok"), key=lambda r: r["score"])
    shown = f"{lowest['score']:.2f}"  # "to <its shown score>" keeps it, above or below
    assert web.ids[lowest["path"]] in listed_ids(get(f"/items?max_score={shown}").text)
    assert web.ids[lowest["path"]] in listed_ids(get(f"/items?min_score={shown}").text)
    finer = f"{lowest['score'] + 0.001:.3f}"  # a bound finer than shown is exact
    assert web.ids[lowest["path"]] not in listed_ids(get(f"/items?min_score={finer}").text)
    descending = listed_ids(get("/items?status=ok&sort=score&order=desc").text)
    by_id = {web.ids[r["path"]]: r["score"] for r in web.rows if r["status"] == "ok"}
    assert [by_id[i] for i in descending] == sorted(by_id.values(), reverse=True)
    # a plain GET form sends empty boxes as empty strings: no filter
    blank = get("/items?modality=&verdict=&status=&min_score=&max_score=&reviewed=&sort=")
    assert blank.status_code == 200 and len(listed_ids(blank.text)) == len(web.rows)
    bad = get("/items?min_score=abc")
    assert bad.status_code == 400 and "minimum score must be a number" in bad.text


def test_reviewed_filter(web: Web) -> None:
    target = web.id_of(status="ok")
    with Store(web.db) as store:
        store.add_review(target, "Dr Test", "accept")
    assert listed_ids(web.client.get("/items?reviewed=yes").text) == [target]
    assert target not in listed_ids(web.client.get("/items?reviewed=no").text)


def test_item_pages_2d_3d_and_error(web: Web) -> None:
    flat = next(r for r in web.rows if r["status"] == "ok" and r["dimension"] == "2D")
    page = web.client.get(f"/items/{web.ids[flat['path']]}").text
    assert flat["path"] in page and f"{flat['score']:.2f}" in page
    assert flat["description"] in page and 'id="slice"' not in page
    for name in flat["measures"]:
        assert f"<th>{name}</th>" in page
    volume = next(r for r in web.rows if r["dimension"] == "3D")
    page = web.client.get(f"/items/{web.ids[volume['path']]}").text
    assert f'max="{volume["shape"][0] - 1}"' in page
    for finding in volume["findings"]:
        assert finding["type"].replace("_", " ") in page
    broken = next(r for r in web.rows if r["status"] == "error")
    page = web.client.get(f"/items/{web.ids[broken['path']]}").text
    assert broken["error"] in page and 'id="view"' not in page


def test_an_item_whose_file_changed_since_its_assessment_says_so(web: Web,
                                                                   tmp_path: Path) -> None:
    # the page showed the new pixels beside the old score, and a review there was of neither
    from medq.qc.fingerprint import fingerprint

    scan = tmp_path / "scan.dcm"
    shutil.copy(dicom_testfile("CT_small.dcm"), scan)
    row = next(r for r in web.rows if r["status"] == "ok" and r["dimension"] == "2D")
    with Store(web.db) as store:
        item_id = store.record({**row, "path": str(scan), "fingerprint": fingerprint([scan])})
    assert 'id="changed"' not in web.client.get(f"/items/{item_id}").text
    web.client.post(f"/api/items/{item_id}/review", json={"reviewer": "erin",
                                                          "decision": "accept"})
    shutil.copy(dicom_testfile("MR_small.dcm"), scan)
    assert 'id="changed"' in web.client.get(f"/items/{item_id}").text
    assert "of earlier content" not in web.client.get(f"/items/{item_id}").text
    with Store(web.db) as store:  # assessed again: the review is of the old content
        store.record({**row, "path": str(scan), "fingerprint": fingerprint([scan])})
    page = web.client.get(f"/items/{item_id}").text
    assert 'id="changed"' not in page and "of earlier content: no longer counts" in page
    # a volume of a 4D file, and a series whose member is rewritten in place (its folder's
    # own mtime unchanged): neither was seen to change
    import nibabel as nib

    from medq.io import save
    from medq.web.images import changed_since

    data = np.random.default_rng(0).random((24, 24, 6, 2)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "f.nii.gz")
    volume = {"path": f"{tmp_path / 'f.nii.gz'}@volume=1",
              "fingerprint": fingerprint([tmp_path / "f.nii.gz"])}
    assert not changed_since(volume) and changed_since({**volume, "fingerprint": "old"})
    folder = save(MedImage(np.random.default_rng(1).random((4, 32, 32)).astype(np.float32) * 100,
                           (2.0, 1.0, 1.0), "CT"), tmp_path / "series")
    members = sorted(folder.iterdir())
    series = {"path": str(folder.resolve()), "fingerprint": fingerprint(members)}
    assert not changed_since(series)
    before = folder.stat()
    written = members[1].stat()
    with open(members[1], "r+b") as fh:  # the same size, other bytes
        fh.seek(-64, os.SEEK_END)
        fh.write(bytes(64))
    # a second later: a rewrite within one tick of the file system's clock after the save
    # left the member's stamp as it was, and the fingerprint cached under it was read
    os.utime(members[1], ns=(written.st_atime_ns, written.st_mtime_ns + 10**9))
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert changed_since(series)


def test_a_newline_in_a_path_is_shown_not_hidden(web: Web) -> None:
    # `retina<newline>x.png` was shown as `retina x.png`, another file's name
    row = next(r for r in web.rows if r["status"] == "ok")
    with Store(web.db) as store:
        item_id = store.record({**row, "path": "/scans/retina\nx.png"})
    assert "/scans/retina\\nx.png" in web.client.get(f"/items/{item_id}").text
    assert "/scans/retina\\nx.png" in web.client.get("/items?sort=id&order=desc").text


def test_item_images_and_slices(web: Web) -> None:
    flat = next(r for r in web.rows if r["status"] == "ok" and r["modality"] == "CT")
    r = web.client.get(f"/items/{web.ids[flat['path']]}/image.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert png_pixels(r.content).shape[:2] == tuple(flat["shape"][:2])
    # a path passed by the client is ignored: the item's own image comes back
    other = web.client.get(f"/items/{web.ids[flat['path']]}/image.png?path=/etc/passwd")
    assert other.content == r.content
    volume = next(r for r in web.rows if r["dimension"] == "3D")
    vid, depth = web.ids[volume["path"]], volume["shape"][0]
    a = png_pixels(web.client.get(f"/items/{vid}/image.png?slice=40").content)
    b = png_pixels(web.client.get(f"/items/{vid}/image.png?slice=100").content)
    assert a.shape == b.shape == tuple(volume["shape"][1:]) and np.abs(
        a.astype(int) - b).mean() > 1
    last = web.client.get(f"/items/{vid}/image.png?slice={depth - 1}").content
    assert web.client.get(f"/items/{vid}/image.png?slice=100000").content == last
    for size in (0, -5, 100000):  # a 1-pixel or full-size PNG came back
        assert web.client.get(f"/items/{vid}/image.png?size={size}").status_code == 422
    thumb = png_pixels(web.client.get(f"/items/{vid}/thumb.png").content)
    assert max(thumb.shape[:2]) == 72


@pytest.mark.parametrize("url", [
    "/items/999999", "/items/999999/image.png", "/items/999999/restored.png",
    "/api/items/999999", "/api/items/999999/reviews", "/items/../../etc/passwd",
    "/items/%2e%2e/%2e%2e/etc/passwd", "/items/1/../../../../etc/passwd",
    "/items/..%2f..%2fetc%2fpasswd/image.png", "/api/items/..%2F..%2Fetc%2Fpasswd",
    "/items/-1/image.png", "/items/1%2F..%2F..%2Fetc%2Fpasswd",
    "/items/99999999999999999999999", "/api/items/99999999999999999999999",  # beyond int64
    "/api/items/99999999999999999999/reviews", "/items/99999999999999999999/image.png",
])
def test_unknown_ids_and_path_traversal_are_404(web: Web, url: str) -> None:
    r = web.client.get(url)
    assert r.status_code == 404, (url, r.status_code)
    assert "root:" not in r.text


def test_review_via_form_keeps_the_model_result(web: Web) -> None:
    target = web.id_of(status="ok", verdict="reject")
    with Store(web.db) as store:
        before = store.item(target)
    form = {"reviewer": "Dr Ada", "decision": "accept", "comment": "diagnostic after all"}
    r = web.client.post(f"/items/{target}/review", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/items/{target}#reviews"
    page = web.client.get(f"/items/{target}").text
    assert re.search(r'class="reviewer">Dr Ada<.*class="decision">accept<.*'
                     r'class="comment">diagnostic after all<', page, re.S)
    with Store(web.db) as store:
        after = store.item(target)
        assert len(store.reviews(target)) == 1
    for key in ("score", "grade", "verdict", "findings", "description", "updated_at"):
        assert after[key] == before[key]
    bad = web.client.post(f"/items/{target}/review", data={**form, "decision": "maybe"})
    assert bad.status_code == 400 and "Review not saved" in bad.text
    nameless = web.client.post(f"/items/{target}/review", data={**form, "reviewer": " "})
    assert nameless.status_code == 400
    bare = web.client.post(f"/items/{target}/review",
                           data={**form, "decision": "comment", "comment": ""})
    assert bare.status_code == 400 and "needs a comment" in bare.text
    # the form stored what the API refuses (a 20,000-character comment, a 500-character name
    # cut to 128): the item's API pages then failed with 500 for good
    for field, size in (("comment", 20_000), ("reviewer", 500)):
        long = web.client.post(f"/items/{target}/review", data={**form, field: "x" * size})
        assert long.status_code == 400 and f"{size} characters long" in long.text
    assert web.client.post("/items/999999/review", data=form).status_code == 404
    with Store(web.db) as store:
        assert len(store.reviews(target)) == 1
    assert web.client.get(f"/api/items/{target}/reviews").status_code == 200
    # two reviewers on one page: the second is told the first decided meanwhile (the last
    # write won in silence)
    page = web.client.get(f"/items/{target}").text
    seen = re.search(r'name="seen" value="(\d+)"', page).group(1)
    web.client.post(f"/items/{target}/review", data={**form, "reviewer": "Dr Bo",
                                                     "decision": "reject", "seen": seen})
    told = web.client.post(f"/items/{target}/review", data={**form, "seen": seen}).text
    assert 'id="meanwhile"' in told and "Dr Bo also reviewed this item" in told
    alone = web.client.post(f"/items/{target}/review", data={
        **form, "seen": re.search(r'name="seen" value="(\d+)"', told).group(1)}).text
    assert 'id="meanwhile"' not in alone


def test_review_via_api(web: Web) -> None:
    target = web.id_of(status="ok")
    verdict = web.client.get(f"/api/items/{target}").json()["verdict"]
    r = web.client.post(f"/api/items/{target}/review",
                        json={"reviewer": "Dr Bo", "decision": "reject", "comment": "motion"})
    assert r.status_code == 201
    review = r.json()
    assert (review["item_id"], review["reviewer"], review["decision"]) == (target, "Dr Bo",
                                                                          "reject")
    item = web.client.get(f"/api/items/{target}").json()
    assert item["reviewed"] and item["last_review"]["id"] == review["id"]
    assert [x["comment"] for x in item["reviews"]] == ["motion"]
    assert item["verdict"] == verdict  # the model's verdict stands
    assert web.client.get(f"/api/items/{target}/reviews").json() == item["reviews"]
    listed = web.client.get("/api/items?reviewed=true").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == target
    for body in ({"reviewer": "Dr Bo", "decision": "maybe"}, {"reviewer": "", "decision": "accept"},
                 {"reviewer": "   ", "decision": "accept"}, {"decision": "accept"}):
        assert web.client.post(f"/api/items/{target}/review", json=body).status_code == 422
    for comment in ("", "   "):  # a comment decision without a comment
        bare = web.client.post(f"/api/items/{target}/review",
                               json={"reviewer": "Dr Bo", "decision": "comment",
                                     "comment": comment})
        assert bare.status_code == 422 and "needs a comment" in bare.text
    assert len(web.client.get(f"/api/items/{target}/reviews").json()) == 1
    missing = web.client.post("/api/items/999999/review",
                              json={"reviewer": "Dr Bo", "decision": "accept"})
    assert missing.status_code == 404
    huge = web.client.post("/api/items/99999999999999999999999/review",
                           json={"reviewer": "Dr Bo", "decision": "accept"})
    assert huge.status_code == 404  # was a bare 500 (an id no database integer holds)
    # a lone surrogate (its echo in the 422 could not be encoded: 500) and a NUL in a name
    for body in ('{"reviewer": "Dr Bo", "decision": "comment", "comment": "\\ud800"}',
                 '{"reviewer": "Dr\\u0000Bo", "decision": "accept"}'):
        odd = web.client.post(f"/api/items/{target}/review", content=body,
                              headers={"content-type": "application/json"})
        assert odd.status_code == 422 and ("valid string" in odd.text
                                           or "control characters" in odd.text), odd.text
    far = web.client.get("/api/items?offset=99999999999999999999999")
    assert far.status_code == 200 and far.json()["items"] == []
    assert web.client.get("/items?page=99999999999999999999").status_code == 200


def test_review_persists_across_a_new_app_instance(web: Web) -> None:
    target = web.id_of(modality="MR")
    web.client.post(f"/api/items/{target}/review", json={"reviewer": "Dr Cy", "decision":
                                                         "comment", "comment": "check again"})
    with TestClient(create_app(web.db, uploads_dir=web.uploads)) as fresh:
        reviews = fresh.get(f"/api/items/{target}/reviews").json()
        assert [(x["reviewer"], x["comment"]) for x in reviews] == [("Dr Cy", "check again")]
        assert "Dr Cy" in fresh.get(f"/items/{target}").text


def test_a_read_only_database_is_browsed_but_reviews_and_uploads_are_refused(
        web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app on results it may not write (tests run as root, so the permission check is
    replaced): pages and the API read them; a review or an upload is refused with the reason
    and no file is kept."""
    from medq.qc import database as database_module

    monkeypatch.setattr(database_module, "writable", lambda database: False)
    target = web.id_of(status="ok")
    with TestClient(create_app(web.db, uploads_dir=web.uploads)) as app:
        assert app.get(f"/items/{target}").status_code == 200
        assert app.get("/api/items").json()["total"] == len(web.rows)
        r = app.post(f"/api/items/{target}/review", json={"reviewer": "Dr Bo",
                                                          "decision": "accept"})
        assert r.status_code == 400 and "read-only for this user" in r.text
        form = app.post(f"/items/{target}/review", data={"reviewer": "Dr Bo",
                                                         "decision": "accept"})
        assert form.status_code == 400 and "read-only for this user" in form.text
        data = Path(web.rows[0]["path"]).read_bytes()
        up = app.post("/api/upload", files={"file": ("scan.dcm", data)})
        assert up.status_code == 400 and "read-only for this user" in up.text
    assert not web.uploads.exists() or not any(web.uploads.iterdir())
    assert web.client.get(f"/api/items/{target}/reviews").json() == []


def test_api_items_filters_and_pages(web: Web) -> None:
    first = web.client.get("/api/items?limit=3&offset=0&sort=id").json()
    rest = web.client.get("/api/items?limit=100&offset=3&sort=id").json()
    assert first["total"] == rest["total"] == len(web.rows)
    ids = [x["id"] for x in first["items"] + rest["items"]]
    assert ids == sorted(web.ids.values())
    rejects = web.client.get("/api/items?verdict=reject&sort=score&order=desc").json()
    assert {x["id"] for x in rejects["items"]} == web.ids_where(
        lambda r: r.get("verdict") == "reject")
    scores = [x["score"] for x in rejects["items"]]
    assert scores == sorted(scores, reverse=True)
    assert web.client.get("/api/items?verdict=bad").status_code == 422
    mr = web.ids_where(lambda r: r.get("modality") == "MR")
    for value in ("MR", "mr", "Mr"):  # modalities are stored upper-case; any case finds them
        found = web.client.get(f"/api/items?modality={value}&limit=100").json()
        assert mr and found["total"] == len(mr) and {x["id"] for x in found["items"]} == mr
    assert web.client.get("/api/items?limit=0").status_code == 422
    # a second model's results: each file is two items, told apart and filtered by model
    assert 'id="f-model"' not in web.client.get("/items").text
    with Store(web.db) as store:
        extra = store.record({**web.rows[0], "model": "cnniqa"})
    one = web.client.get("/api/items?model=cnniqa").json()
    assert [x["id"] for x in one["items"]] == [extra] and one["total"] == 1
    assert web.client.get("/api/items?model=mediqa-s").json()["total"] == len(web.rows)
    past = web.client.get("/items?page=40").text  # past the end: a way back
    assert 'id="past-end"' in past and 'First page</a>' in past
    page = web.client.get("/items?model=cnniqa").text
    assert 'id="f-model"' in page and listed_ids(page) == [extra] and "cnniqa" in page


def test_token_protects_api_and_pages(rows: list[dict], tmp_path: Path) -> None:
    db = tmp_path / "qc.sqlite"
    fill_store(db, rows)
    with TestClient(create_app(db, token="s3cret", uploads_dir=tmp_path / "up")) as client:
        denied = client.get("/api/items")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        assert client.get("/api/items", headers={"Authorization": "Bearer nope"}
                          ).status_code == 401
        ok = client.get("/api/items", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["total"] == len(rows)
        assert client.get("/items").status_code == 401
        assert client.get("/items/1/image.png").status_code == 401
        assert client.get("/items?token=nope").status_code == 401
        entry = client.get("/items?token=s3cret&verdict=reject", follow_redirects=False)
        assert entry.status_code == 303 and entry.headers["location"] == "/items?verdict=reject"
        cookie = entry.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert client.get("/items").status_code == 200  # the cookie now carries the token
        assert client.get("/api/items").status_code == 401  # the API wants the header
        assert client.get("/docs").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_openapi_docs_work_offline(web: Web) -> None:
    docs = web.client.get("/docs").text
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs and "cdn" not in docs
    assert web.client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    spec = web.client.get("/openapi.json").json()
    for path in ("/api/items", "/api/items/{item_id}", "/api/items/{item_id}/review",
                 "/api/items/{item_id}/reviews", "/api/upload"):
        assert path in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert web.client.get("/static-offline-docs/../../../etc/passwd").status_code == 404


def test_upload_is_assessed_like_the_batch(web: Web) -> None:
    source = next(r for r in web.rows if r["status"] == "ok" and r["path"].endswith(".dcm"))
    data = Path(source["path"]).read_bytes()
    r = web.client.post("/api/upload", files={"file": ("../../evil name.dcm", data)})
    assert r.status_code == 201, r.text
    item = r.json()
    stored = Path(item["path"])  # <uploads>/<random id>/<the client's name, sanitised>
    assert stored.parent.parent == web.uploads.resolve() and stored.read_bytes() == data
    assert stored.name == "evil_name.dcm" and re.fullmatch(r"[0-9a-f]{32}", stored.parent.name)
    assert item["fingerprint"] == source["fingerprint"] and item["model"] == source["model"]
    assert item["score"] == pytest.approx(source["score"], abs=1e-3)
    assert item["verdict"] == source["verdict"]
    assert web.client.get(f"/items/{item['id']}/image.png").status_code == 200
    form = web.client.post("/upload", files={"file": ("scan.dcm", data)},
                           follow_redirects=False)
    assert form.status_code == 303 and re.fullmatch(r"/items/\d+", form.headers["location"])
    assert len(list(web.uploads.iterdir())) == 2
    assert "scan.dcm" in web.client.get(form.headers["location"]).text  # the page shows it


def test_upload_of_a_metaimage_is_stored_as_one(web: Web, tmp_path: Path) -> None:
    import SimpleITK as sitk

    from medq.qc.discover import load_item

    source = next(r for r in web.rows if r["status"] == "ok" and r["modality"] == "CT")
    img = sitk.GetImageFromArray(load_item(source["path"]).array)  # HU: read as CT
    sitk.WriteImage(img, str(tmp_path / "scan.mha"), True)
    data = (tmp_path / "scan.mha").read_bytes()
    r = web.client.post("/api/upload", files={"file": ("scan", data)})  # no suffix: by content
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["path"].endswith("/scan.mha") and item["modality"] == "CT"
    assert item["status"] == "ok" and item["named_modality"] is None  # its values said CT
    named = web.client.post("/api/upload", files={"file": ("named", data)},
                            data={"modality": "ct"})
    assert named.status_code == 201, named.text
    assert named.json()["named_modality"] == "CT"  # as `qc run --modality` records it


def test_upload_of_a_freesurfer_volume_keeps_its_compression(web: Web, tmp_path: Path,
                                                            mni_t1: MedImage) -> None:
    from medq.io import save

    data = save(mni_t1, tmp_path / "T1.mgz").read_bytes()
    r = web.client.post("/api/upload", files={"file": ("T1.mgz", data)})
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["path"].endswith("/T1.mgz") and item["status"] == "ok", item


def test_upload_rejects_what_is_not_an_image(web: Web) -> None:
    cases = [("notes.txt", b"just some text\n" * 20), ("fake.png", b"not a png at all" * 10),
             ("empty.dcm", b""), ("page.html", b"<html><body>hi</body></html>"),
             ("study.zip", b"PK\x03\x04" + b"\0" * 64)]
    for name, data in cases:
        r = web.client.post("/api/upload", files={"file": (name, data)})
        assert r.status_code == 400, (name, r.text)
        assert r.json()["detail"].startswith(f"{name}: ")
    assert "one image per upload" in r.json()["detail"]  # the archive says what to do
    buffer = io.BytesIO()
    np.save(buffer, np.full((64, 64), 3.0))  # read, but blank: refused by the assessment
    blank = web.client.post("/api/upload", files={"file": ("const.npy", buffer.getvalue())})
    assert blank.status_code == 400 and blank.json()["detail"].startswith("const.npy: ")
    assert web.client.post("/api/upload", data={"modality": "CT"}).status_code == 400
    # a modality medq does not grade, refused as everywhere else (US was graded and stored)
    dicom = Path(dicom_testfile("CT_small.dcm")).read_bytes()
    us = web.client.post("/api/upload", files={"file": ("ct.dcm", dicom)}, data={"modality": "US"})
    assert us.status_code == 400 and "not a modality medq grades" in us.json()["detail"]
    page = web.client.post("/upload", files={"file": ("notes.txt", b"text" * 50)})
    assert page.status_code == 400 and 'id="upload-error"' in page.text
    assert not web.uploads.exists() or not any(web.uploads.iterdir())
    with Store(web.db) as store:
        assert store.count() == len(web.rows)


def test_upload_size_limit(rows: list[dict], tmp_path: Path) -> None:
    db = tmp_path / "qc.sqlite"
    fill_store(db, rows)
    uploads = tmp_path / "up"
    big = Path(next(r["path"] for r in rows if r["dimension"] == "3D")).read_bytes()
    assert len(big) > 100_000
    with TestClient(create_app(db, upload_limit_mb=0.05, uploads_dir=uploads)) as client:
        r = client.post("/api/upload", files={"file": ("mni.nii.gz", big)})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        page = client.post("/upload", files={"file": ("mni.nii.gz", big)})
        assert page.status_code == 413

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted while it streams
            yield (b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.nii.gz"'
                   b"\r\nContent-Type: application/octet-stream\r\n\r\n")
            for i in range(0, len(big), 16_384):
                yield big[i:i + 16_384]
            yield b"\r\n--xx--\r\n"

        streamed = client.post("/api/upload", content=chunked(),
                               headers={"Content-Type": "multipart/form-data; boundary=xx"})
        assert streamed.status_code == 413
    assert not uploads.exists() or not any(uploads.iterdir())
    with Store(db) as store:
        assert store.count() == len(rows)


def test_an_upload_that_fails_after_it_is_stored_keeps_no_file(tmp_path: Path) -> None:
    # a model that would not load, or a database that refused the row, left the patient file
    from medq.errors import MedqError
    from medq.web.uploads import Uploader

    dicom = Path(dicom_testfile("CT_small.dcm")).read_bytes()
    with Store(tmp_path / "qc.sqlite") as store:
        uploader = Uploader(store, tmp_path / "up", limit=10 << 20,
                            model=str(tmp_path / "no-such-model.pt"))
        with pytest.raises(MedqError):
            uploader.assess_and_record(io.BytesIO(dicom), "ct.dcm")
    assert not any(p.is_file() for p in (tmp_path / "up").rglob("*"))


def test_restored_preview(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    import medq.web.restored as restored

    target = web.id_of(status="ok", modality="CT")
    url = f"/items/{target}/restored.png"

    def unavailable() -> Any:
        raise ImportError("No module named 'medq.restore'")

    monkeypatch.setattr(restored, "_restorer", unavailable)
    r = web.client.get(url)
    assert r.status_code == 501 and "restoration is not available" in r.json()["detail"]

    def broken(image: Any, **_: Any) -> Any:
        raise RuntimeError("weights missing")

    monkeypatch.setattr(restored, "_restorer", lambda: broken)
    r = web.client.get(url)
    assert r.status_code == 503 and "weights missing" in r.json()["detail"]

    def refused(image: Any, **_: Any) -> Any:
        from medq.errors import UnsupportedImage

        raise UnsupportedImage("too small to restore", "/srv/archive/patient/scan.dcm")

    monkeypatch.setattr(restored, "_restorer", lambda: refused)
    detail = web.client.get(url).json()["detail"]  # the reason, not the server's paths
    assert detail == "restoration failed: too small to restore"

    class Result:
        def __init__(self, image: Any) -> None:
            from scipy.ndimage import median_filter

            self.image = image.evolve(array=median_filter(image.array, size=5))
            self.note = "Restored with a 5×5 median."

    monkeypatch.setattr(restored, "_restorer", lambda: lambda image, **_: Result(image))
    r = web.client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    original = png_pixels(web.client.get(f"/items/{target}/image.png").content)
    smoothed = png_pixels(r.content)
    assert smoothed.shape == original.shape
    assert np.abs(np.diff(smoothed.astype(float), axis=1)).mean() < np.abs(
        np.diff(original.astype(float), axis=1)).mean()
    assert "median" in r.headers["x-medq-note"]


def test_real_restoration_serves_the_restored_plane_and_its_note(web: Web) -> None:
    target = web.id_of(status="ok", modality="CT")
    r = web.client.get(f"/items/{target}/restored.png")  # the shipped restoration, no stand-in
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    original = png_pixels(web.client.get(f"/items/{target}/image.png").content)
    assert png_pixels(r.content).shape == original.shape
    assert r.headers["x-medq-note"].strip(), r.headers  # what was done, or why nothing was


def test_restoration_that_fails_answers_503_with_the_reason(web: Web, monkeypatch) -> None:
    from medq.web import restored

    def broken(image: Any, **_: Any) -> Any:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(restored, "_restorer", lambda: broken)
    r = web.client.get(f"/items/{web.id_of(status='ok', modality='CT')}/restored.png")
    assert r.status_code == 503 and r.json()["detail"] == (
        "restoration failed: RuntimeError: out of memory")


def test_serve_cli_bad_database(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "medq.cli", "serve", "--db",
                          str(tmp_path / "missing" / "qc.sqlite"), "--port", "8999"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medq: error:"), res.stderr


def _serve(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medq.cli", "serve", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=120)


def test_serve_refuses_a_sqlite_file_that_does_not_exist(tmp_path: Path) -> None:
    db = tmp_path / "nosuch.sqlite"
    res = _serve(db, "--port", "8998")
    assert res.returncode == 2 and not db.exists()
    assert res.stderr.strip() == (f"medq: error: {db}: no such results database "
                                  "(run `medq qc run` first)")


def test_serve_refuses_an_address_it_cannot_listen_on(tmp_path: Path) -> None:
    import socket

    db = tmp_path / "qc.sqlite"
    Store(db).close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = _serve(db, "--port", str(port))
    bad_host = _serve(db, "--host", "999.1.1.1", "--port", "8997")
    for res, where in ((taken, f"127.0.0.1:{port}: the port is in use"),
                       (bad_host, "999.1.1.1:8997: cannot listen on this address")):
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip().splitlines() == [res.stderr.strip()]  # one line, no banner
        assert res.stderr.startswith(f"medq: error: {where}"), res.stderr


def test_item_page_and_api_show_lossy_storage(web: Web) -> None:
    from medq.qc.store import Store

    row = next(r for r in web.rows if r["status"] == "ok")
    assert row["lossy_compression"] == {}  # the test archive is stored losslessly
    stated = {"stated_by": "LossyImageCompression", "ratio": 338.687, "method": None,
              "transfer_syntax": "JPEG 2000 Image Compression"}
    with Store(web.db) as store:
        item_id = store.record({**row, "path": row["path"] + ".j2k", "lossy_compression": stated})
    page = web.client.get(f"/items/{item_id}").text
    assert 'id="lossy">lossy compression, 339:1' in page
    assert web.client.get(f"/api/items/{item_id}").json()["lossy_compression"] == stated
    plain = web.client.get(f"/items/{web.ids[row['path']]}").text
    assert 'id="lossy"' not in plain


def test_pages_of_other_sites_can_neither_post_nor_rebind(tmp_path: Path) -> None:
    """Without a token, a page elsewhere could submit a review in the reviewer's name (CSRF) or,
    rebinding its own name to 127.0.0.1, read the API (DNS rebinding): a POST from another
    origin (or the `null` origin) gets 403, a request for another host name 421; the app's own
    pages, local names and clients that state no origin (curl) pass."""
    from fastapi.testclient import TestClient

    from medq.web.app import create_app

    db = tmp_path / "qc.sqlite"
    Store(db).close()
    review = {"reviewer": "Dr A", "decision": "accept"}
    with TestClient(create_app(db, host="127.0.0.1"), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/items").status_code == 200
        assert c.get("/api/items", headers={"host": "localhost:8000"}).status_code == 200
        assert c.get("/api/items", headers={"host": "rebind.example"}).status_code == 421
        for origin in ("https://evil.example", "null"):
            refused = c.post("/items/1/review", data=review, headers={"origin": origin})
            assert refused.status_code == 403, origin
        own = c.post("/items/1/review", data=review, headers={"origin": "http://127.0.0.1:8000"})
        assert own.status_code == 404  # past the check: no item 1 in an empty database
        assert c.post("/items/1/review", data=review).status_code == 404  # no origin: curl
        huge = c.post("/api/items/1/review", content=b"x" * 2_000_000,
                      headers={"content-type": "application/json"})
        assert huge.status_code == 413 and "request larger than" in huge.json()["detail"]


def test_numbers_no_database_holds_are_answered_not_crashed_on(web: Web) -> None:
    """A page number "²" (a digit to str.isdigit, no number to int) and ids of thousands of
    digits (beyond what Python reads) were 500s."""
    many = "1" * 5000
    assert web.client.get("/items?page=²").status_code == 200  # the first page
    for path in (f"/api/items/{many}", f"/items/{many}", f"/items/{many}/thumb.png"):
        answer = web.client.get(path)
        assert answer.status_code == 404, path
    assert web.client.get(f"/api/items/{many}").json() == {"detail": "no such item"}
    assert web.client.get(f"/items?page={many}").status_code == 400
    low = web.client.get("/items?min_score=0")  # the range its message states (0–6 passed)
    assert low.status_code == 400 and "between 1 and 5" in low.text


def test_the_access_log_never_holds_the_token() -> None:
    """uvicorn's access log printed `GET /items?token=s3cr3t`; `medq serve` redacts it."""
    import logging

    from medq.web.security import TokenRedaction

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:1", "GET",
                                                          "/items?page=2&token=s3cr3t&x=1",
                                                          "1.1", 303), None)
    assert TokenRedaction().filter(record)
    assert "s3cr3t" not in record.getMessage()
    assert "/items?page=2&token=***&x=1" in record.getMessage()


def test_a_review_after_the_database_file_was_removed_is_refused_not_lost(tmp_path: Path) -> None:
    """The database file deleted while serving: a review answered 201 and was lost with the
    old file's remains; it is now 503, and a new database in its place is not written through
    the old connection either."""
    from fastapi.testclient import TestClient

    from medq.web.app import create_app

    db = tmp_path / "qc.sqlite"
    with Store(db) as store:
        item = store.record({"path": "/a.dcm", "model": "mediqa-s", "fingerprint": "f",
                             "status": "ok", "score": 3.0})
    review = {"reviewer": "Dr A", "decision": "accept"}
    with TestClient(create_app(db)) as client:
        assert client.post(f"/api/items/{item}/review", json=review).status_code == 201
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        gone = client.post(f"/api/items/{item}/review", json=review)
        assert gone.status_code == 503 and "deleted or replaced" in gone.json()["detail"]
        page = client.post(f"/items/{item}/review", data=review)
        assert page.status_code == 503
        # reading it was no better: the pages served the old file's remains with 200
        for url in ("/items", f"/items/{item}", f"/api/items/{item}", "/api/items", "/nowhere"):
            assert client.get(url).status_code == 503, url


def test_an_upload_stating_a_huge_image_is_refused_before_it_is_read(web: Web) -> None:
    """A 1 MB gzipped NIfTI whose header says 1024³ voxels of zeros took the server to 5.8 GB
    before it was refused as blank; its stated size is refused first, and nothing is kept."""
    import gzip

    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape((1024, 1024, 1024))
    header.set_data_dtype(np.uint8)
    bomb = gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 1_000_000)
    before = web.client.get("/api/items").json()["total"]
    r = web.client.post("/api/upload", files={"file": ("bomb.nii.gz", bomb)})
    assert r.status_code == 400 and "1,073,741,824 pixel values" in r.json()["detail"]
    assert r.json()["detail"].startswith("bomb.nii.gz: ")
    assert web.client.get("/api/items").json()["total"] == before
    assert not [p for p in web.uploads.rglob("*") if p.is_file()]
