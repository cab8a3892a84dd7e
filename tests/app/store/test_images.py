"""app/store/images.py: images stored once by content, in a folder or in S3 (moto)."""

from __future__ import annotations

import hashlib
import io
import os
import time

import accounts
import helpers
import pytest

from app.store import images


def test_local_store_is_by_content_and_idempotent(tmp_path):
    data = helpers.synthetic_image()
    sha = images.store(tmp_path, data, "PNG")
    assert sha == hashlib.sha256(data).hexdigest()
    path = tmp_path / sha[:2] / f"{sha}.png"
    os.utime(path, (1e9, 1e9))
    inode = path.stat().st_ino
    # Stored again: the same file (not rewritten), marked as just stored.
    assert images.store(tmp_path, data, "PNG") == sha
    assert path.stat().st_ino == inode and path.stat().st_mtime > time.time() - 60
    assert images.load(tmp_path, sha, "PNG") == data
    with pytest.raises(images.ImageMissing):
        images.load(tmp_path, "0" * 64, "PNG")
    with pytest.raises(images.ImageMissing):
        images.load(tmp_path, "../../etc/passwd", "PNG")  # never a path from outside


def test_s3_store(s3):
    data = helpers.synthetic_image()
    sha = images.store("s3://radio-images/site-a", data, "PNG")
    obj = s3.get_object(Bucket="radio-images", Key=f"site-a/{sha[:2]}/{sha}.png")
    assert obj["Body"].read() == data and obj["ServerSideEncryption"] == "AES256"
    assert images.load("s3://radio-images/site-a", sha, "PNG") == data
    with pytest.raises(images.ImageMissing):
        images.load("s3://radio-images/site-a", "1" * 64, "PNG")


def test_listing_and_remove_in_a_folder(tmp_path):
    png, jpeg = helpers.synthetic_image(), helpers.synthetic_image("JPEG")
    a, b = images.store(tmp_path, png, "PNG"), images.store(tmp_path, jpeg, "JPEG")
    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / "notes.txt").write_text("not an image")  # not Radio's: ignored
    found = {s.sha256: s for s in images.listing(tmp_path)}
    assert set(found) == {a, b} and found[b].fmt == "JPEG" and found[a].size == len(png)
    assert not images.remove(tmp_path, a, "PNG", stored_before=found[a].mtime)  # too new
    assert images.remove(tmp_path, a, "PNG", stored_before=time.time() + 1)
    assert not images.remove(tmp_path, a, "PNG", stored_before=time.time() + 1)  # gone
    assert [s.sha256 for s in images.listing(tmp_path)] == [b]
    assert list(images.listing(tmp_path / "missing")) == []


def test_listing_and_remove_in_s3(s3):
    where = "s3://radio-images/site-a"
    sha = images.store(where, helpers.synthetic_image(), "PNG")
    s3.put_object(Bucket="radio-images", Key="site-a/readme.txt", Body=b"x")
    (found,) = images.listing(where)
    assert found.sha256 == sha and found.fmt == "PNG"
    assert not images.remove(where, sha, "PNG", stored_before=found.mtime)
    assert images.remove(where, sha, "PNG", stored_before=time.time() + 1)
    assert list(images.listing(where)) == []
    assert not images.remove(where, sha, "PNG", stored_before=time.time() + 1)


def test_app_with_an_s3_store_serves_and_snapshots_from_it(s3, make_app):
    app = make_app(mlflow_url="http://127.0.0.1:9", image_store="s3://radio-images/x")
    accounts.add_user(app, "rad", "radiologist")
    accounts.add_user(app, "boss", "admin")
    rad = app.test_client()
    accounts.login(rad, "rad")
    csrf = accounts.csrf_from(rad.get("/contribute").get_data(as_text=True))
    data = helpers.synthetic_image()
    resp = rad.post("/contribute", content_type="multipart/form-data", data={
        "file": (io.BytesIO(data), "a.png"), "label": "Normal", "csrf_token": csrf})
    assert resp.status_code == 201
    assert not (app.config["RADIO"].data_dir / "images").exists()  # nothing stored locally
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="radio-images")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("x/")
    admin = app.test_client()
    accounts.login(admin, "boss")
    csrf = accounts.csrf_from(admin.get("/datasets").get_data(as_text=True))
    assert admin.post("/datasets/snapshot", data={"csrf_token": csrf}).status_code == 201
    snap = app.config["RADIO"].data_dir / "datasets" / "production" / "v1" / "Normal"
    assert [p.read_bytes() for p in snap.iterdir()] == [data]


def test_radio_config_alone_tells_a_bucket_from_a_folder(tmp_path):
    s3_store = images.open_store("s3://radio-images/site-a/")
    assert isinstance(s3_store, images.S3Store)
    assert (s3_store.bucket, s3_store.prefix) == ("radio-images", "site-a")
    local = images.open_store(tmp_path / "images")
    assert isinstance(local, images.LocalStore) and local.folder == tmp_path / "images"
    assert images.open_store(local) is local
    # A folder whose name merely contains "s3" is a folder.
    assert isinstance(images.open_store(str(tmp_path / "s3:" / "x")), images.LocalStore)


def test_a_local_store_checks_its_own_folder(tmp_path):
    ok, detail = images.open_store(tmp_path / "images").check(min_free_mb=1)
    assert ok and detail.startswith("writable, ") and detail.endswith(" MB free")
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the folder should be
    ok, detail = images.open_store(blocker / "images").check(min_free_mb=1)
    assert not ok and detail.startswith("image folder unusable: ")


def test_an_s3_store_checks_its_bucket(s3):
    assert images.open_store("s3://radio-images/site-a").check(min_free_mb=1e12) == (
        True, "bucket radio-images reachable")  # a bucket has no free space to fall short
    ok, detail = images.open_store("s3://no-such-bucket/x").check(min_free_mb=1)
    assert not ok and detail == "bucket no-such-bucket refused (404)"


def test_an_s3_store_has_no_temporary_files_and_nothing_set_aside(s3, tmp_path):
    where = images.open_store("s3://radio-images/site-a")
    images.store(where, helpers.synthetic_image(), "PNG")
    assert where.remove_temp_files(grace_s=0, now=time.time() + 3600) == 0
    assert images.put_back(where) == 0
    assert len(s3.list_objects_v2(Bucket="radio-images")["Contents"]) == 1
