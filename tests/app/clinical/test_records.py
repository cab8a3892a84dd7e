"""app/clinical/records.py + app/store/images.py: every answered /predict is a row, the image kept
once."""

from __future__ import annotations

import hashlib
import io

import accounts
import helpers
from sqlalchemy import select

from app.store import db
from app.store.db.models import Prediction, User


def _post(client, data: bytes):
    return client.post("/predict", data={"file": (io.BytesIO(data), "Doe_Jane.png")},
                       content_type="multipart/form-data")


def test_prediction_is_recorded_with_who_where_and_what(make_app, model_server, db_url):
    app = make_app(mlflow_url=model_server, database_url=db_url, site="St Example")
    client = accounts.bearer_client(app, "dr-rec", "clinician")
    data = helpers.synthetic_image("PNG", (300, 280))
    first, second = _post(client, data).json, _post(client, data).json
    sha = hashlib.sha256(data).hexdigest()
    with db.session_scope(db_url) as s:
        rows = {p.id: p for p in s.scalars(select(Prediction))}
        who = s.scalar(select(User).where(User.username == "dr-rec"))
    assert set(rows) == {first["id"], second["id"]}
    row = rows[first["id"]]
    assert row.user_id == who.id and row.site == "St Example"
    assert row.image_sha256 == sha and row.image_format == "PNG" and row.image_bytes == len(data)
    assert row.status == first["status"] and row.label == first["label"]
    assert row.probabilities == first["probabilities"]
    assert row.model_name == first["model"]["name"]
    assert row.model_version == first["model"]["version"]
    assert row.latency_ms == first["latency_ms"] and row.needs_review == first["needs_review"]
    assert row.ood_score == first["ood_score"] and isinstance(row.ood_score, float)
    assert row.created_at is not None
    # Stored once by content, under its hash: the same image twice is one file.
    stored = list((app.config["RADIO"].data_dir / "images").rglob("*.png"))
    assert [p.name for p in stored] == [f"{sha}.png"] and stored[0].read_bytes() == data
    assert "Doe" not in str(stored)


def test_model_server_down_is_recorded_as_an_error(make_app, db_url):
    app = make_app(mlflow_url=f"http://127.0.0.1:{helpers.free_port()}", database_url=db_url)
    client = accounts.bearer_client(app)
    resp = _post(client, helpers.synthetic_image())
    assert resp.status_code == 503
    with db.session_scope(db_url) as s:
        row = s.get(Prediction, resp.json["id"])
    assert row.status == "error" and row.error and row.label is None
