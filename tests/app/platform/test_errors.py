"""app/platform/errors.py: every error is JSON with a sentence, never HTML or a traceback."""


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


def test_a_browser_gets_html_pages_an_api_client_json(offline_client):
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    resp = offline_client.get("/no-such-thing", headers=browser)
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "Page not found" in html and "There is no such page or API endpoint." in html
    # fetch() and curl send */*: JSON; API paths stay JSON even for a browser.
    assert offline_client.get("/no-such-thing", headers={"Accept": "*/*"}).is_json
    assert offline_client.get("/api/nothing", headers=browser).is_json
    resp = offline_client.get("/predict", headers=browser)
    assert resp.status_code == 405 and resp.is_json


def test_an_unexpected_error_is_an_html_page_for_a_browser(make_app):
    app = make_app()
    app.testing = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    resp = app.test_client().get("/boom", headers={"Accept": "text/html"})
    assert resp.status_code == 500 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "Internal error in the Radio web app; please try again." in html
    assert "secret" not in html and "Traceback" not in html


def test_domain_errors_get_their_status_and_sentence_in_one_place():
    from app.platform.errors import describe
    from app.platform.failures import Busy, Malformed, NotAccepted, StorageFull, UnsupportedFormat
    from app.platform.model_client import ModelServerError

    assert describe(Malformed("damaged")) == (400, "damaged")
    assert describe(UnsupportedFormat("a PDF")) == (415, "a PDF")
    assert describe(NotAccepted("a lateral view")) == (422, "a lateral view")
    assert describe(Busy("busy")) == (503, "busy")
    assert describe(StorageFull())[0] == 507
    statuses = {kind: describe(ModelServerError("m", kind=kind))[0]
                for kind in ("unreachable", "breaker_open", "timeout", "http", "not_json",
                             "contract")}
    assert statuses == {"unreachable": 503, "breaker_open": 503, "timeout": 504, "http": 502,
                        "not_json": 502, "contract": 502}


def test_a_domain_error_raised_below_a_view_is_answered_as_json(make_app):
    from app.platform.failures import Busy, NotAccepted

    app = make_app()

    @app.post("/api/refuse")
    def refuse():
        raise NotAccepted("This is a lateral view.", "req1")

    @app.post("/api/busy")
    def busy():
        raise Busy("Radio is busy.")

    client = app.test_client()
    resp = client.post("/api/refuse")
    assert resp.status_code == 422
    assert resp.json == {"error": "This is a lateral view.", "id": "req1"}
    # Busy with a body: say when to retry, and close rather than drain the unread body.
    resp = client.post("/api/busy", data=b"x" * 10)
    assert resp.status_code == 503 and resp.json == {"error": "Radio is busy."}
    assert resp.headers["Retry-After"] == "5" and resp.headers["Connection"] == "close"
