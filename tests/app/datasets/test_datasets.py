"""app/datasets/datasets.py: radiologists contribute images; admins see counts and snapshot."""

from __future__ import annotations

import html
import io

import accounts
import corpus
import dicom_files
import helpers


def _contribute(client, csrf, data: bytes, label: str = ""):
    return client.post("/contribute", content_type="multipart/form-data", data={
        "file": (io.BytesIO(data), "Doe_Jane.dcm"), "label": label, "csrf_token": csrf})


def test_contributed_images_feed_the_queue_and_the_dataset(app):
    rad, csrf = accounts.client_as(app, "rad")
    resp = _contribute(rad, csrf, helpers.synthetic_image(), "Viral Pneumonia")
    assert resp.status_code == 201 and "labelled Viral Pneumonia" in resp.get_data(as_text=True)
    resp = _contribute(rad, csrf, dicom_files.make(dicom_files.radiograph()))
    assert resp.status_code == 201 and "review queue" in resp.get_data(as_text=True)
    bad = _contribute(rad, csrf, dicom_files.make(dicom_files.radiograph(64, 64), view="LL"))
    assert bad.status_code == 422 and "lateral" in bad.get_data(as_text=True)
    admin, admin_csrf = accounts.client_as(app, "boss")
    # The unlabelled one waits in the queue (for someone else than its contributor too).
    assert "contributed" in admin.get("/queue").get_data(as_text=True)
    page = admin.get("/datasets").get_data(as_text=True)
    assert "1 image with an agreed label" in page and "Site B / Viral Pneumonia: 1" in page
    resp = admin.post("/datasets/snapshot", data={"csrf_token": admin_csrf})
    assert resp.status_code == 201
    html = resp.get_data(as_text=True)
    assert "Production version 1: 1 images." in html and "production v1" in html
    snap = app.config["RADIO"].data_dir / "datasets" / "production" / "v1"
    assert len(list((snap / "Viral Pneumonia").iterdir())) == 1


def test_snapshot_with_nothing_validated_is_400(app):
    admin, csrf = accounts.client_as(app, "boss")
    resp = admin.post("/datasets/snapshot", data={"csrf_token": csrf})
    assert resp.status_code == 400 and "nothing to snapshot" in resp.get_data(as_text=True)


def test_contributions_answer_the_hostile_corpus_like_predict(app):
    """The same intake as POST /predict (tests/app/intake/test_corpus.py sends these to it): every
    file case gets the same status and message, and nothing is stored."""
    rad, csrf = accounts.client_as(app, "rad")
    cfg = app.config["RADIO"]
    for case in corpus.file_cases():
        resp = _contribute(rad, csrf, case.file)
        page = html.unescape(resp.get_data(as_text=True)).lower()
        assert (resp.status_code, case.words.lower() in page) == (case.status, True), case.name
    assert helpers.stored_images(cfg) == []


def test_an_expired_image_is_left_out_of_the_snapshot_not_a_500(app):
    """Issue 26: one validated image removed by the retention pass made every snapshot 500."""
    rad, csrf = accounts.client_as(app, "rad")
    for side in (300, 310):
        resp = _contribute(rad, csrf, helpers.synthetic_image("PNG", (side, side)),
                           "Viral Pneumonia")
        assert resp.status_code == 201
    gone = sorted(helpers.stored_images(app.config["RADIO"]), key=lambda s: s.sha256)[0]
    store = app.config["RADIO"].data_dir / "images"
    (store / gone.sha256[:2] / f"{gone.sha256}.png").unlink()
    admin, admin_csrf = accounts.client_as(app, "boss")
    resp = admin.post("/datasets/snapshot", data={"csrf_token": admin_csrf})
    assert resp.status_code == 201
    assert ("Production version 1: 1 images. 1 validated images are no longer stored "
            "(removed after the retention period) and were left out.") in html.unescape(
                resp.get_data(as_text=True))
