"""app/datasets/dataset_versions.py: dataset versions listed with their contents, one shown, its
manifest and (production) its images downloaded; a snapshot identical to the latest
version is said, not made."""

from __future__ import annotations

import csv
import html
import io
import zipfile

import accounts
import helpers

from app.datasets import service as datasets
from app.store import db, images


def _contribute(app, side: int, label: str) -> None:
    rad, csrf = accounts.client_as(app, "rad")
    resp = rad.post("/contribute", content_type="multipart/form-data", data={
        "file": (io.BytesIO(helpers.synthetic_image("PNG", (side, side))), "x.png"),
        "label": label, "csrf_token": csrf})
    assert resp.status_code == 201


def _snapshot(client, csrf):
    resp = client.post("/datasets/snapshot", data={"csrf_token": csrf})
    return resp.status_code, html.unescape(resp.get_data(as_text=True))


def test_an_identical_snapshot_is_said_not_made(app):
    _contribute(app, 300, "Normal")
    _contribute(app, 310, "COVID")
    admin, csrf = accounts.client_as(app, "boss")
    assert _snapshot(admin, csrf)[0] == 201
    status, page = _snapshot(admin, csrf)
    assert status == 409
    assert ("Nothing changed since production version 1: the same images with the same "
            "labels. No new version was made.") in page
    data_dir = app.config["RADIO"].data_dir
    with db.session_scope(app.config["RADIO"].db_url) as s:
        assert [v["version"] for v in datasets.versions(s, "production")] == [1]
    assert not (datasets.root(data_dir) / "production" / "v2").exists()
    _contribute(app, 320, "Viral Pneumonia")  # one more validated image: a new version
    status, page = _snapshot(admin, csrf)
    assert status == 201 and "Production version 2: 3 images." in page


def test_versions_listed_shown_and_downloaded(app):
    _contribute(app, 300, "Normal")
    _contribute(app, 310, "COVID")
    _contribute(app, 320, "COVID")
    admin, csrf = accounts.client_as(app, "boss")
    assert _snapshot(admin, csrf)[0] == 201
    overview = html.unescape(admin.get("/datasets").get_data(as_text=True))
    assert '<a href="/datasets/production/v1">production v1</a>' in overview
    assert "Site B / COVID: 2; Site B / Normal: 1" in overview

    page = html.unescape(admin.get("/datasets/production/v1").get_data(as_text=True))
    assert '<dd id="version-images">3</dd>' in page and "<dt>By</dt><dd>boss</dd>" in page
    assert "<tr><td>Site B</td><td>2</td><td>1</td></tr>" in page  # COVID, Normal
    assert "<tr><th>All</th><th>2</th><th>1</th></tr>" in page
    assert page.count('<td class="mono">COVID/') == 2

    resp = admin.get("/datasets/production/v1/manifest.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "radio-production-v1-manifest.csv" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert sorted(r["label"] for r in rows) == ["COVID", "COVID", "Normal"]
    assert {r["validated_by"] for r in rows} == {"rad"}

    resp = admin.get("/datasets/production/v1.zip")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(resp.get_data()))
    assert sorted(archive.namelist()) == sorted(["manifest.csv", *(r["file"] for r in rows)])
    store = app.config["RADIO"].data_dir / "images"
    for row in rows:  # the images themselves, byte for byte
        assert archive.read(row["file"]) == images.load(store, row["sha256"], "PNG")


def test_a_reference_version_downloads_as_its_manifest(app):
    _contribute(app, 300, "Normal")
    admin, csrf = accounts.client_as(app, "boss")
    assert _snapshot(admin, csrf)[0] == 201
    with db.session_scope(app.config["RADIO"].db_url) as s:
        datasets.build_reference(s, app.config["RADIO"].data_dir, [], [1], "ops")
    page = html.unescape(admin.get("/datasets/reference/v1").get_data(as_text=True))
    assert '<a href="/datasets/production/v1">v1</a>' in page
    assert "<tr><td>production-site-b</td><td>1</td></tr>" in page
    assert "links the public sources instead of copying them" in page and ".zip" not in page
    resp = admin.get("/datasets/reference/v1/manifest.csv")
    assert resp.status_code == 200 and b"production-site-b" in resp.get_data()
    assert admin.get("/datasets/reference/v1.zip").status_code == 404


def test_unknown_versions_and_other_roles(app):
    admin, _ = accounts.client_as(app, "boss")
    for path in ("/datasets/production/v9", "/datasets/production/v9.zip",
                 "/datasets/other/v1", "/datasets/production/v9/manifest.csv"):
        assert admin.get(path).status_code == 404, path
    rad, _ = accounts.client_as(app, "rad")
    assert rad.get("/datasets/production/v1").status_code == 403
    assert rad.get("/datasets/production/v1.zip").status_code == 403
