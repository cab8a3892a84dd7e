"""app/errors.py: every error is JSON with a sentence, never HTML or a traceback."""


def test_404_and_405_are_json(offline_client):
    resp = offline_client.get("/no-such-thing")
    assert resp.status_code == 404 and resp.json == {
        "error": "There is no such page or API endpoint."}
    resp = offline_client.get("/predict")
    assert resp.status_code == 405 and resp.json == {"error": "GET is not allowed here."}
    assert "POST" in resp.headers["Allow"]


def test_unexpected_exception_is_a_json_500_without_traceback(make_app):
    app = make_app()
    app.testing = False  # let the handler run instead of re-raising

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    resp = app.test_client().get("/boom")
    assert resp.status_code == 500 and resp.is_json
    assert "secret" not in resp.get_data(as_text=True)
    assert "Traceback" not in resp.get_data(as_text=True)
