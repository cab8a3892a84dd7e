"""app/datasets/contribution_gate.py through POST /contribute, with the real model server: an image
the "not a chest X-ray" gate refuses is not added and the contributor is told why; a chest
X-ray is added with the gate's score; with the model server down the image is kept and
marked unchecked."""

from __future__ import annotations

import html
import io

import accounts
import helpers
import pytest
from sqlalchemy import select

from app.datasets.contribution_gate import NOT_RUN
from app.store.db import web as dbweb
from app.store.db.models import Prediction

# The real model server (session fixture) answers each contribution.
pytestmark = pytest.mark.slow


def _radiologist(app):
    accounts.add_user(app, "rad", "radiologist")
    client = app.test_client()
    accounts.login(client, "rad")
    return client, accounts.csrf_from(client.get("/history").get_data(as_text=True))


def _contribute(client, csrf, data: bytes, name: str, label: str = "Normal"):
    resp = client.post("/contribute", content_type="multipart/form-data", data={
        "file": (io.BytesIO(data), name), "label": label, "csrf_token": csrf})
    return resp.status_code, html.unescape(resp.get_data(as_text=True))


def _rows(app) -> list[Prediction]:
    with app.app_context():
        return list(dbweb.session().scalars(select(Prediction)))


def test_images_the_gate_refuses_are_not_added(make_app, model_server, not_chest_xray):
    app = make_app(mlflow_url=model_server)
    client, csrf = _radiologist(app)
    hand = sorted((not_chest_xray / "val" / "hand_xray").glob("*.png"))[0]
    for data, name in ((hand.read_bytes(), "hand.png"),
                       (helpers.synthetic_image("PNG", (512, 512)), "noise.png")):
        status, page = _contribute(client, csrf, data, name)
        assert status == 422, name
        assert 'Not added: the "not a chest X-ray" check refused this image (' in page
        assert "Contribute frontal chest X-rays only." in page
    assert helpers.stored_images(app.config["RADIO"]) == [] and _rows(app) == []


def test_a_chest_xray_passes_the_gate_and_is_added(make_app, model_server, xray_path):
    app = make_app(mlflow_url=model_server)
    client, csrf = _radiologist(app)
    status, page = _contribute(client, csrf, xray_path.read_bytes(), "cxr.png")
    assert status == 201 and "Image stored (labelled Normal)." in page
    assert "could not run" not in page
    (row,) = _rows(app)
    assert (row.kind, row.status) == ("contribution", "contributed")
    assert row.review_reasons is None
    assert row.ood_score is not None and row.ood_score <= 1.0  # above 1: refused
    assert len(helpers.stored_images(app.config["RADIO"])) == 1


def test_with_the_model_server_down_the_image_is_kept_and_marked(make_app):
    app = make_app(mlflow_url=f"http://127.0.0.1:{helpers.free_port()}")
    client, csrf = _radiologist(app)
    status, page = _contribute(client, csrf, helpers.synthetic_image(), "x.png")
    assert status == 201
    assert ('Image stored (labelled Normal). The "not a chest X-ray" check could not run '
            "(the model server did not answer): the image was kept unchecked, and its "
            "record says so.") in page
    (row,) = _rows(app)
    assert row.review_reasons == [
        'The "not a chest X-ray" check did not run on this contribution (the model server '
        "did not answer)."]
    assert row.review_reasons == [NOT_RUN]
    case = html.unescape(client.get(f"/predictions/{row.id}").get_data(as_text=True))
    assert "check did not run on this contribution" in case
