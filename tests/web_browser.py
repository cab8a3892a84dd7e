"""Helpers of the browser tests (Playwright + Debian's chromium against gunicorn): pages,
log-ins, uploads, stored cases. The fixtures are in tests/app/conftest.py."""

from __future__ import annotations

from pathlib import Path

import accounts
from helpers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-output"
# Every class a Radio model may name (models before version 8 have the first three).
CLASSES = ("COVID", "Viral Pneumonia", "Normal", "Other Abnormal")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
MISSING = f"{CHROMIUM} is missing (apt-get install chromium)"


def new_page(browser, url, **viewport):
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    # Only ever talk to our own server.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
               else route.abort())
    return page


def wait_for(page, predicate: str, timeout_s: float = 30.0) -> None:
    """Poll the JavaScript function ``predicate`` until it returns true. Not
    ``page.wait_for_function``: it polls by ``eval``, which the app's Content Security
    Policy (no 'unsafe-eval') blocks whenever the first check is false; ``page.evaluate``
    of a function is not subject to it."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {predicate}"
        page.wait_for_timeout(100)


def login(page, url: str, username: str, password: str) -> None:
    """Fill the login form that an anonymous visit to ``/`` shows."""
    page.goto(url + "/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def first_login(browser, url: str, env: dict, username: str, role: str) -> tuple[str, str]:
    """An account made with the CLI, logged in once with its one-time password, which the
    app makes its owner replace; the lasting (username, password)."""
    one_time = accounts.cli_create(env, username, role)
    page = new_page(browser, url)
    login(page, url, username, one_time)
    page.get_by_role("heading", name="Change your password").wait_for()
    page.get_by_label("Current password").fill(one_time)
    page.get_by_label("New password (at least 12 characters)").fill(accounts.PASSWORD)
    page.get_by_label("New password again").fill(accounts.PASSWORD)
    page.get_by_role("button", name="Save").click()
    page.get_by_label("Chest X-ray image").wait_for()
    page.context.close()
    return username, accounts.PASSWORD


def open_page(browser, url, credentials, **viewport):
    page = new_page(browser, url, **viewport)
    login(page, url, *credentials)
    page.wait_for_url(url + "/")
    # The page's deferred scripts must have run before the form is used, or a submit would
    # be a plain form post instead of app.js's fetch.
    page.wait_for_load_state("load")
    page.get_by_label("Chest X-ray image").wait_for()
    return page


def jpeg_and_dicom(xray_path, folder):
    """The same real X-ray as a JPEG and as a 16-bit MONOCHROME1 DICOM (white is air)."""
    import numpy as np
    from dicom_files import make
    from PIL import Image

    grey = Image.open(xray_path).convert("L")
    grey.thumbnail((768, 768))
    jpeg = folder / "film.jpg"
    grey.save(jpeg, quality=92)
    pixels = np.asarray(grey, dtype=np.uint16) * 257  # the full 16-bit range
    dcm = folder / "film.dcm"
    dcm.write_bytes(make((65535 - pixels).astype(np.uint16), photometric="MONOCHROME1"))
    return jpeg, dcm


def analyse(page, path) -> str:
    """Upload ``path`` on the Analyse page; wait for the answer, its image and its heatmap;
    the prediction id."""
    page.get_by_label("Chest X-ray image").set_input_files(str(path))
    page.get_by_role("button", name="Analyse").click()
    page.locator("#result-heading").wait_for(state="visible", timeout=60_000)
    assert page.locator("#message").inner_text() == ""
    assert page.locator("#result").is_visible()
    # The image: the browser's own preview, or the server's rendering of a DICOM.
    wait_for(page, "() => document.getElementById('preview').naturalWidth > 0")
    assert page.locator("#preview-pending").is_hidden()
    wait_for(page, "() => document.getElementById('heatmap').width > 0")
    assert page.locator("#heatmap").is_visible()
    assert page.locator("#bars .bar").count() >= 3
    return page.locator("#result-id").inner_text().strip()


def variant(xray_path, folder, n: int):
    """The real X-ray with one pixel changed: another image by content (its own case in the
    queue, where copies of one image are merged)."""
    from PIL import Image

    img = Image.open(xray_path).convert("L")
    img.putpixel((0, 0), (img.getpixel((0, 0)) + n) % 256)
    path = folder / f"variant-{n}.png"
    img.save(path)
    return path


def db_url(gunicorn_app) -> str:
    from app.store.db import default_url

    return gunicorn_app["env"].get("DATABASE_URL") or default_url(gunicorn_app["data_dir"])


def stored_case(gunicorn_app, username: str, xray_path, **fields) -> str:
    """A prediction of ``username`` written straight into the app's database (the answer of
    a model version that is not the one served); its id."""
    import uuid

    from sqlalchemy import select

    from app.store import db, images
    from app.store.db.models import Prediction, User

    data = xray_path.read_bytes()
    sha = images.store(gunicorn_app["data_dir"] / "images", data, "PNG")
    pred_id = uuid.uuid4().hex
    with db.session_scope(db_url(gunicorn_app)) as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        s.add(Prediction(id=pred_id, user_id=user.id, image_sha256=sha, image_format="PNG",
                         image_bytes=len(data), model_name="radio-cxr", model_version="8",
                         **fields))
    return pred_id


def awaiting_read(gunicorn_app, username: str, pred_id: str) -> None:
    """Put a stored case of ``username`` in teaching mode: its answer hidden until a read."""
    from sqlalchemy import select

    from app.clinical import reads
    from app.store import db
    from app.store.db.models import Prediction, User

    with db.session_scope(db_url(gunicorn_app)) as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        reads.blind(s, s.get(Prediction, pred_id), user)


def production_version(gunicorn_app, username: str, pred_id: str) -> int:
    """``username`` validates a stored case, then a production dataset version is made of
    it (as the Datasets page's button does); its number."""
    from sqlalchemy import select

    from app.clinical import reviews
    from app.datasets import service
    from app.store import db
    from app.store.db.models import Prediction, User

    with db.session_scope(db_url(gunicorn_app)) as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        reviews.add(s, s.get(Prediction, pred_id), user, "validated", None, "")
        s.flush()
        return service.snapshot_production(s, gunicorn_app["data_dir"], by=username)["version"]


def drift_reports(gunicorn_app) -> None:
    """A data-drift and a model-drift report where the app reads them, as the jobs write
    them (figures included)."""
    from monitoring import model_drift, reports

    folder = Path(gunicorn_app["env"].get("RADIO_MONITORING_DIR")
                  or gunicorn_app["data_dir"] / "monitoring")
    groups = [{"group": g, "n": 40, "judged": True, "drift": p < 0.01, "p_value": p,
               "resembles": "nih-adult-normal", "permuted": "patients",
               "moved": [{"feature": "mean intensity", "shift_sd": 1.4}]}
              for g, p in (("overall", 0.2), ("Hôpital Saint-Louis, radiologie", 0.004))]
    data = reports.new_report("data", drift=True, summary="drift at one site",
                              model_version="11", window="last 7 days", alpha=0.05,
                              method="MMD", groups=groups, notes=["reference: 800 images"])
    reports.write(folder, data, reports.p_value_figure(groups, 0.05))
    cases = [model_drift.Case("Hôpital Saint-Louis, radiologie" if i % 2 else "St Elsewhere",
                              ("COVID", "Normal")[i % 3 == 0], ("COVID", "Normal")[i % 2])
             for i in range(60)]
    card = {"accuracy": 0.9, "covid_recall": 0.85, "normals_called_covid": 0.05}
    results = model_drift.as_dicts(model_drift.evaluate(cases, card))
    model = reports.new_report("model", drift=True, summary="model drift", card=card,
                               model_version="11", window="last 90 days", alpha=0.05,
                               method="binomial", groups=results, notes=["card: tag"])
    reports.write(folder, model, reports.interval_figure(results))
