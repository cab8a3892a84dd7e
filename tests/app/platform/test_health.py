"""app/platform/health.py: GET /health (dependencies, 503, public up/down only) and GET /version."""

import io
import sys
import threading
import time

import accounts
import helpers
import pytest

PUBLIC = {"REMOTE_ADDR": "203.0.113.7"}  # a caller on the internet (TEST-NET-3)


def test_health_ok_with_details_on_loopback(client, model_server):
    resp = client.get("/health")
    assert resp.status_code == 200
    body = resp.json
    assert body["status"] == "ok"
    assert body["checks"]["model_server"] == {"ok": True, "detail": "ping ok",
                                              "url": model_server, "breaker_open": False}
    assert body["checks"]["storage"]["ok"] is True
    assert "MB free" in body["checks"]["storage"]["detail"]
    # The default image store: the folder under the data directory, checked by itself.
    assert body["checks"]["image_store"]["ok"] is True
    assert body["checks"]["image_store"]["detail"].startswith("writable, ")
    assert body["checks"]["database"] == {"ok": True, "detail": "query ok"}


def test_public_health_says_only_up_or_down(client, offline_client, model_server):
    assert client.get("/health", environ_base=PUBLIC).json == {"status": "ok"}
    # Loopback through a proxy (nginx) is the public too.
    via_proxy = client.get("/health", headers={"X-Forwarded-For": "203.0.113.7"})
    assert via_proxy.json == {"status": "ok"}
    down = offline_client.get("/health", environ_base=PUBLIC)
    assert down.status_code == 503 and down.json == {"status": "down"}
    assert "127.0.0.1" not in down.get_data(as_text=True)


def test_health_token_shows_details_off_loopback(make_app, model_server):
    client = make_app(mlflow_url=model_server, health_token="s3cret").test_client()
    good = client.get("/health", environ_base=PUBLIC, headers={"Authorization": "Bearer s3cret"})
    assert good.json["checks"]["model_server"]["url"] == model_server
    bad = client.get("/health", environ_base=PUBLIC, headers={"Authorization": "Bearer nope"})
    assert bad.json == {"status": "ok"}


def test_health_503_when_model_server_down(offline_client):
    resp = offline_client.get("/health")
    assert resp.status_code == 503 and resp.json["status"] == "down"
    assert resp.json["checks"]["model_server"]["ok"] is False
    assert "unreachable" in resp.json["checks"]["model_server"]["detail"]
    assert resp.json["checks"]["storage"]["ok"] is True


def test_health_503_when_data_dir_unusable(make_app, model_server, tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    resp = make_app(mlflow_url=model_server, data_dir=blocker / "d").test_client().get("/health")
    assert resp.status_code == 503
    assert resp.json["checks"]["storage"]["detail"].startswith("data directory")
    assert resp.json["checks"]["model_server"]["ok"] is True


def test_health_503_when_free_space_is_below_the_minimum(make_app, model_server):
    # More free space than any disk has: the real statvfs figure must fall short.
    client = make_app(mlflow_url=model_server, min_free_mb=1e12).test_client()
    resp = client.get("/health")
    assert resp.status_code == 503
    assert "below the 1,000,000,000,000 MB minimum" in resp.json["checks"]["storage"]["detail"]


def test_hung_model_server_costs_health_one_bounded_ping(make_app):
    server = helpers.SilentServer()
    try:
        app = make_app(mlflow_url=server.url, health_timeout_s=1)
        answers: list = []

        def ask() -> None:
            answers.append(app.test_client().get("/health"))

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(answers) == 6 and all(r.status_code == 503 for r in answers)
        assert {r.json["checks"]["model_server"]["detail"] for r in answers} == {
            "no answer to /ping within 1 s"}
        # Six concurrent /health calls, one connection to the hung server.
        assert len(server.accepted) == 1
    finally:
        server.close()


def test_version_public_and_detailed(client, model_server, xray_path):
    from app import __version__

    public = client.get("/version", environ_base=PUBLIC).json
    assert public == {"app": __version__, "last_model": None}
    resp = client.post("/predict", data={"file": (io.BytesIO(xray_path.read_bytes()), "x.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200
    detailed = client.get("/version").json
    assert detailed["last_model"] == resp.json["model"]
    assert detailed["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert detailed["model_server"]["url"] == model_server
    assert detailed["model_server"]["mlflow"]


def test_state_lives_on_each_app(make_app, model_server, offline_client, xray_path):
    client = accounts.bearer_client(make_app(mlflow_url=model_server))
    resp = client.post("/predict", data={"file": (io.BytesIO(xray_path.read_bytes()), "x.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200
    assert client.get("/version").json["last_model"] == resp.json["model"]
    # Another app in the same process has its own state.
    assert offline_client.get("/version").json["last_model"] is None
    assert offline_client.get("/version").json["model_server"]["mlflow"] is None


def test_health_503_when_the_database_is_down(make_app, model_server, tmp_path):
    """Every request needs the database: a stopped PostgreSQL makes /health say down."""
    import pg

    reason = pg.missing_reason()
    if reason:
        pytest.skip(reason)
    server = pg.PostgresServer(helpers.free_port())
    try:
        client = make_app(mlflow_url=model_server,
                          database_url=server.new_database()).test_client()
        assert client.get("/health").json["checks"]["database"]["ok"] is True
    finally:
        server.stop()
    resp = client.get("/health")
    assert resp.status_code == 503 and resp.json["status"] == "down"
    assert resp.json["checks"]["database"]["ok"] is False
    assert resp.json["checks"]["database"]["detail"].startswith("database unreachable")
    assert resp.json["checks"]["model_server"]["ok"] is True


def test_health_503_while_the_breaker_fails_predictions_fast(make_app, model_server):
    app = make_app(mlflow_url=model_server, breaker_failures=1, breaker_cooldown_s=60)
    from app.platform import state

    with app.app_context():
        breaker = state.get().breaker
    breaker.record(ok=False)  # a model call timed out: the breaker opens
    resp = app.test_client().get("/health")
    assert resp.status_code == 503 and resp.json["status"] == "down"
    assert resp.json["checks"]["model_server"] == {"ok": False, "detail": "ping ok",
                                                   "url": model_server, "breaker_open": True}


def test_a_worker_idle_since_an_outage_closes_its_breaker_on_a_good_ping(make_app,
                                                                         model_server):
    """After the cooldown, a worker that got no prediction since the outage must not let one
    probe through and refuse the rest: the model server's good /ping closes it."""
    app = make_app(mlflow_url=model_server, breaker_failures=1, breaker_cooldown_s=0.2)
    from app.platform import state

    with app.app_context():
        breaker = state.get().breaker
    breaker.record(ok=False)
    time.sleep(0.3)  # past the cooldown, no /predict since
    assert app.test_client().get("/health").status_code == 200
    assert [breaker.allow() for _ in range(8)] == [None] * 8  # all go, not one probe


def test_health_asks_the_s3_image_store_itself(s3, make_app, model_server):
    """With images in S3, /health checks the bucket (not a local image folder): up while
    the bucket answers, 503 once it is gone, the data directory still fine."""
    app = make_app(mlflow_url=model_server, image_store="s3://radio-images/site-a")
    client = app.test_client()
    resp = client.get("/health")
    assert resp.status_code == 200, resp.json
    assert resp.json["checks"]["image_store"] == {"ok": True,
                                                  "detail": "bucket radio-images reachable"}
    assert not (app.config["RADIO"].data_dir / "images").exists()
    s3.delete_bucket(Bucket="radio-images")
    resp = client.get("/health")
    assert resp.status_code == 503 and resp.json["status"] == "down"
    assert resp.json["checks"]["image_store"] == {"ok": False,
                                                  "detail": "bucket radio-images refused (404)"}
    assert resp.json["checks"]["storage"]["ok"] is True
    assert resp.json["checks"]["model_server"]["ok"] is True


def test_health_503_when_the_local_image_folder_is_unusable(make_app, model_server, tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    resp = make_app(mlflow_url=model_server,
                    image_store=str(blocker / "images")).test_client().get("/health")
    assert resp.status_code == 503
    assert resp.json["checks"]["image_store"]["detail"].startswith("image folder unusable")
    assert resp.json["checks"]["storage"]["ok"] is True
