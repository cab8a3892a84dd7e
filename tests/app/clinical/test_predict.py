"""POST /predict in-process (Flask test client) against the real model server."""

import io
import logging

import accounts
import helpers
import pytest
import requests
from sqlalchemy import select, text

from app.store import db
from app.store.db.models import Prediction
from serving.preprocessing import ImageError, preprocess

PHI_NAME = "Doe_Jane_1957-03-02_MRN123456.png"


def _refuse_rows(url: str) -> None:
    """Make the real database refuse every new prediction row."""
    engine = db.get_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON predictions "
                              "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                              "RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON predictions "
                              "FOR EACH ROW EXECUTE FUNCTION refuse()"))


def _post(client, data: bytes, name: str = "x.png"):
    return client.post("/predict", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_real_xray_is_analysed_and_stored(client, xray_path, data_dir, caplog):
    caplog.set_level(logging.INFO, logger="radio")
    data = xray_path.read_bytes()
    resp = _post(client, data, PHI_NAME)
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert set(body) >= {"id", "status", "label", "probabilities", "confidence",
                         "needs_review", "heatmap", "model", "latency_ms"}
    assert len(body["id"]) == 32 and body["status"] in ("ok", "not_xray")
    assert isinstance(body["needs_review"], bool) and body["latency_ms"] > 0
    assert body["model"]["name"] and body["model"]["version"]
    if body["status"] == "ok":
        assert body["label"] in body["probabilities"]
        assert abs(sum(body["probabilities"].values()) - 1) < 1e-3
        assert body["heatmap"] and all(0 <= v <= 1 for row in body["heatmap"] for v in row)
    else:
        assert body["label"] is None and body["probabilities"] is None
    # The upload is kept once, byte for byte, with the row of the answer; never its name.
    row, image = helpers.kept(client.application.config["RADIO"], body["id"])
    assert image == data and row["image_bytes"] == len(data) and row["image_format"] == "PNG"
    assert row["status"] == body["status"] and row["label"] == body["label"]
    assert row["probabilities"] == body["probabilities"] and row["heatmap"] == body["heatmap"]
    assert len(helpers.stored_images(client.application.config["RADIO"])) == 1
    stored = repr(row) + "".join(p.name for p in data_dir.rglob("*"))
    assert "Doe" not in stored and "MRN" not in stored
    assert "Doe" not in caplog.text and body["id"] in caplog.text
    assert f"bytes={len(data)}" in caplog.text and "status=200" in caplog.text


# name -> (bytes, HTTP status, words the message must contain)
BAD_INPUTS = {
    "empty": (b"", 400, "empty"),
    "text renamed .png": (b"Patient notes, not an image\n" * 10, 415, "PNG or JPEG"),
    "truncated JPEG": (helpers.truncated_jpeg(), 400, "truncated"),
    "tiny image": (helpers.synthetic_image("PNG", (16, 16)), 400, "16x16"),
    "100 MP PNG": (helpers.bomb_png(10000), 400, "pixels"),
    "20000x20000 decompression bomb": (None, 400, "pixels"),
}


def _user_message(data: bytes) -> str:
    """What the shared preprocessing says about ``data``: the app must pass it on verbatim."""
    try:
        preprocess(data)
    except ImageError as exc:
        return str(exc)
    raise AssertionError("preprocess accepted a bad input")


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gets_a_clear_4xx_and_nothing_is_stored(client, data_dir, name,
                                                          bomb_png_bytes):
    data, status, words = BAD_INPUTS[name]
    data = bomb_png_bytes if data is None else data
    resp = _post(client, data)
    assert resp.status_code == status
    assert resp.is_json and resp.json["error"] == _user_message(data)
    assert words in resp.json["error"]
    assert helpers.stored_images(client.application.config["RADIO"]) == []
    assert client.get("/health").status_code == 200  # still serving


def test_file_over_the_limit_is_413(make_app, model_server):
    client = accounts.bearer_client(make_app(mlflow_url=model_server, max_upload_mb=1))
    resp = _post(client, b"\x89PNG\r\n\x1a\n" + bytes(1024 * 1024 + 10))
    assert resp.status_code == 413
    assert resp.json == {"error": "The file is too large; the limit is 1 MB."}


def test_chunked_upload_over_the_limit_is_413(gunicorn_app):
    """Sent in chunks (no Content-Length), a body over RADIO_MAX_UPLOAD_MB (5 MB here) is
    the size, not "too many fields" (issue 26: it got 400)."""
    def chunks():
        yield b"--B0undary\r\nContent-Disposition: form-data; name=\"file\"; "
        yield b'filename="x.png"\r\n\r\n\x89PNG\r\n\x1a\n'
        for _ in range(6):
            yield bytes(2**20)
        yield b"\r\n--B0undary--\r\n"

    resp = requests.post(f"{gunicorn_app['url']}/predict", data=chunks(), timeout=60,
                         headers={**gunicorn_app["auth"],
                                  "Content-Type": "multipart/form-data; boundary=B0undary"})
    assert resp.status_code == 413
    assert resp.json()["error"] == "The file is too large; the limit is 5 MB."


def test_missing_field_and_wrong_encoding(client):
    resp = client.post("/predict", data={"other": (io.BytesIO(b"x"), "x.png")})
    assert resp.status_code == 400 and "field 'file'" in resp.json["error"]
    resp = client.post("/predict", json={"image": "..."})
    assert resp.status_code == 415 and "multipart/form-data" in resp.json["error"]


def test_model_server_down_is_503_and_upload_kept(offline_client, xray_path):
    data = xray_path.read_bytes()
    resp = _post(offline_client, data)
    assert resp.status_code == 503
    assert resp.json["error"] == (
        "The model server is unreachable; the service cannot analyse images now.")
    row, image = helpers.kept(offline_client.application.config["RADIO"], resp.json["id"])
    assert image == data and row["status"] == "error" and row["error"] == resp.json["error"]


def test_hung_model_server_is_504_within_the_timeout(make_app, xray_path):
    server = helpers.SilentServer()
    try:
        client = accounts.bearer_client(make_app(mlflow_url=server.url, mlflow_timeout_s=1))
        resp = _post(client, xray_path.read_bytes())
        assert resp.status_code == 504
        assert resp.json["error"].startswith("The model server did not answer within 1 s")
    finally:
        server.close()


def test_unwritable_data_dir_is_507_and_app_keeps_serving(make_app, model_server, tmp_path,
                                                         xray_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    # The database lives elsewhere (DATABASE_URL), so only the image store is unwritable.
    app = make_app(mlflow_url=model_server, data_dir=blocker / "data",
                   database_url=db.default_url(tmp_path / "db"))
    client = accounts.bearer_client(app)
    resp = _post(client, xray_path.read_bytes())
    # The image is stored while the model analyses it: the answer is withheld.
    assert resp.status_code == 507
    assert resp.json["error"].startswith("Radio analysed the image but cannot store the result")
    assert "nothing was kept" in resp.json["error"]  # the image could not be stored
    assert resp.json["id"] and helpers.kept(app.config["RADIO"], resp.json["id"])[0] is None
    assert client.get("/").status_code == 200
    assert client.get("/health").status_code == 503


def _raw_multipart(parts: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    """A multipart body from (Content-Disposition tail, content) pairs, byte for byte."""
    body = b"".join(b"--B0undary\r\nContent-Disposition: form-data; " + head + b"\r\n\r\n"
                    + content + b"\r\n" for head, content in parts) + b"--B0undary--\r\n"
    return body, "multipart/form-data; boundary=B0undary"


def test_non_utf8_file_name_gets_its_own_message(client):
    body, ctype = _raw_multipart([(b'name="file"; filename="R\xf6ntgen.png"', b"\x89PNG")])
    resp = client.post("/predict", data=body, content_type=ctype)
    assert resp.status_code == 400 and "not UTF-8" in resp.json["error"]


def test_second_file_in_the_field_is_refused(client, xray_path, data_dir):
    data = xray_path.read_bytes()
    resp = client.post("/predict", data={"file": [(io.BytesIO(data), "a.png"),
                                                  (io.BytesIO(data), "b.png")]},
                       content_type="multipart/form-data")
    assert resp.status_code == 400
    assert resp.json["error"].startswith("2 files were sent in the field 'file'")
    assert helpers.stored_images(client.application.config["RADIO"]) == []


def test_many_form_fields_are_not_called_a_large_file(client):
    body, ctype = _raw_multipart([(b'name="f%d"' % i, b"x") for i in range(5000)])
    resp = client.post("/predict", data=body, content_type=ctype)
    assert resp.status_code == 400
    assert resp.json["error"].startswith("The form has too many fields")


def test_malformed_multipart_is_named(client):
    resp = client.post("/predict", data=b"--B0undary\r\nno headers at all",
                       content_type="multipart/form-data; boundary=B0undary")
    assert resp.status_code == 400 and resp.json["error"]


def test_record_step_failure_is_507_analysed_and_the_image_goes(client, xray_path):
    # The database refuses the row, as a full disk would, after the model answered (a
    # trigger of the real database: works on SQLite and PostgreSQL alike, and as root).
    cfg = client.application.config["RADIO"]
    _refuse_rows(cfg.db_url)
    resp = _post(client, xray_path.read_bytes())
    assert resp.status_code == 507
    assert resp.json["error"].startswith("Radio analysed the image but cannot store the result")
    # The image was stored first: the message must not say that nothing was kept.
    assert "the image stays on the server until the next clean-up removes it" in \
        resp.json["error"] and "nothing was kept" not in resp.json["error"]
    assert helpers.kept(cfg, resp.json["id"])[0] is None  # no row: no answer to account for
    # The image stored before the model was asked has no row: the next pass removes it.
    (orphan,) = helpers.stored_images(cfg)
    from dataclasses import replace

    from app.store import retention

    assert retention.clean(replace(cfg, orphan_grace_s=0), now=orphan.mtime + 1).orphans == 1
    assert helpers.stored_images(cfg) == []
    assert client.get("/health").status_code == 200  # still serving


def test_breaker_fails_fast_after_repeated_timeouts(make_app, xray_path, data_dir):
    server = helpers.SilentServer()
    try:
        client = accounts.bearer_client(make_app(
            mlflow_url=server.url, mlflow_timeout_s=0.5, breaker_failures=2, breaker_cooldown_s=60
        ))
        data = xray_path.read_bytes()
        assert [_post(client, data).status_code for _ in range(2)] == [504, 504]
        resp = _post(client, data)
        assert resp.status_code == 503 and "not answering" in resp.json["error"]
        assert len(server.accepted) == 2  # the third call never reached the hung server
        # Only the attempted uploads have rows (with their errors); the image is kept once.
        cfg = client.application.config["RADIO"]
        with db.session_scope(cfg.db_url) as s:
            assert [r.status for r in s.scalars(select(Prediction))] == ["error", "error"]
        assert len(helpers.stored_images(cfg)) == 1
        assert client.get("/health").json["checks"]["model_server"]["breaker_open"] is True
    finally:
        server.close()


def test_busy_worker_answers_503_without_reading(make_app, model_server, xray_path):
    app = make_app(mlflow_url=model_server, predict_slots=1)
    from app.platform import state

    with app.app_context():
        slots = state.get().predict_slots
    assert slots.acquire(blocking=False)  # another request holds the only slot
    try:
        resp = _post(accounts.bearer_client(app), xray_path.read_bytes())
        assert resp.status_code == 503 and resp.json["error"].startswith("Radio is busy")
        assert resp.headers["Retry-After"] == "5"
    finally:
        slots.release()
    assert _post(accounts.bearer_client(app), xray_path.read_bytes()).status_code == 200


def test_decodes_wait_for_the_per_worker_decode_slot(make_app, model_server, xray_path):
    app = make_app(mlflow_url=model_server, decode_slots=1, decode_wait_s=0.2)
    from app.platform import state

    with app.app_context():
        slots = state.get().decode_slots
    assert slots.acquire(blocking=False)  # another thread is decoding a large image
    try:
        resp = _post(accounts.bearer_client(app), xray_path.read_bytes())
        assert resp.status_code == 503
        assert resp.json["error"].startswith("Radio is busy decoding other images")
    finally:
        slots.release()
    assert _post(accounts.bearer_client(app), xray_path.read_bytes()).status_code == 200
    with app.app_context():  # released after the decode, error or not
        assert state.get().decode_slots.acquire(blocking=False)
