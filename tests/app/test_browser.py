"""The upload page in a real browser (Playwright + Debian's chromium) against gunicorn."""

from pathlib import Path

import accounts
import pytest
from helpers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-output"
# Every class a Radio model may name (models before version 8 have the first three).
CLASSES = ("COVID", "Viral Pneumonia", "Normal", "Other Abnormal")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # a dev dependency: never skipped

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


def _new_page(browser, url, **viewport):
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
    page = _new_page(browser, url)
    login(page, url, username, one_time)
    page.get_by_role("heading", name="Change your password").wait_for()
    page.get_by_label("Current password").fill(one_time)
    page.get_by_label("New password (at least 12 characters)").fill(accounts.PASSWORD)
    page.get_by_label("New password again").fill(accounts.PASSWORD)
    page.get_by_role("button", name="Save").click()
    page.get_by_label("Chest X-ray image").wait_for()
    page.context.close()
    return username, accounts.PASSWORD


@pytest.fixture(scope="module")
def clinician(browser, gunicorn_app) -> tuple[str, str]:
    return first_login(browser, gunicorn_app["url"], gunicorn_app["env"], "browser-clin",
                       "clinician")


def _page(browser, url, credentials, **viewport):
    page = _new_page(browser, url, **viewport)
    login(page, url, *credentials)
    page.wait_for_url(url + "/")
    # The page's deferred scripts must have run before the form is used, or a submit would
    # be a plain form post instead of app.js's fetch.
    page.wait_for_load_state("load")
    page.get_by_label("Chest X-ray image").wait_for()
    return page


def test_upload_shows_label_bars_and_heatmap(browser, gunicorn_app, clinician, xray_path):
    page = _page(browser, gunicorn_app["url"], clinician)
    assert page.get_by_text("Decision support, not a diagnosis.").is_visible()
    page.get_by_label("Chest X-ray image").set_input_files(str(xray_path))
    page.get_by_role("button", name="Analyse").click()
    page.locator("#result-heading").wait_for(state="visible", timeout=60_000)
    assert page.locator("#message").inner_text() == ""
    headline = page.locator("#result-headline").inner_text()
    if headline == "Not a chest X-ray":
        pytest.fail("the model called a real chest X-ray 'not a chest X-ray'")
    label, shown = headline.split(" \u2014 ")
    assert label in CLASSES and shown.endswith("%")
    # One bar per class of the answer, the named class highlighted with the headline's value.
    assert page.locator("#bars .bar").count() >= 3
    best = page.locator("#bars .bar.best")
    assert best.locator(".bar-name").inner_text() == label
    assert best.locator(".bar-value").inner_text() == shown
    assert label in page.locator("#result-why").inner_text()
    assert page.locator("#result-model").inner_text().startswith("radio-cxr version ")
    assert "ms" in page.locator("#result-time").inner_text()
    canvas = page.locator("#heatmap")
    assert canvas.is_visible()
    # The heatmap was really painted: the canvas holds opaque-ish coloured pixels.
    painted = page.evaluate("""() => {
        const c = document.getElementById('heatmap');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; }
        return {w: c.width, h: c.height, n: n};
    }""")
    assert painted["w"] > 0 and painted["n"] == painted["w"] * painted["h"]
    slider = page.get_by_label("Heatmap opacity")
    slider.fill("80")
    assert canvas.evaluate("c => c.style.opacity") == "0.8"
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "browser-result.png"), full_page=True)
    page.context.close()


def _jpeg_and_dicom(xray_path, folder):
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


def _analyse(page, path) -> str:
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


def test_png_jpeg_and_16bit_monochrome1_dicom_show_image_answer_heatmap(
        browser, gunicorn_app, clinician, xray_path, tmp_path):
    jpeg, dcm = _jpeg_and_dicom(xray_path, tmp_path)
    page = _page(browser, gunicorn_app["url"], clinician)
    for path in (xray_path, jpeg, dcm):
        pred_id = _analyse(page, path)
        assert page.locator("#result-headline").inner_text().strip()
    # The DICOM is shown as the server renders it, not as a broken browser preview.
    src = page.locator("#preview").get_attribute("src")
    assert src == f"/predictions/{pred_id}/image"
    import io

    import numpy as np
    from PIL import Image

    shown = page.request.get(gunicorn_app["url"] + src)
    assert shown.ok and shown.headers["content-type"] == "image/png"
    size = (64, 64)
    served = np.asarray(Image.open(io.BytesIO(shown.body())).convert("L").resize(size), float)
    original = np.asarray(Image.open(jpeg).convert("L").resize(size), float)
    # MONOCHROME1 turned back: the picture the clinician sees is the film, not its negative.
    assert np.corrcoef(served.ravel(), original.ravel())[0, 1] > 0.9
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "browser-dicom.png"), full_page=True)
    page.context.close()


def test_phone_keyboard_and_error_message(browser, gunicorn_app, clinician, tmp_path):
    fake = tmp_path / "scan.png"
    fake.write_text("this is a text file renamed to .png\n")
    page = _page(browser, gunicorn_app["url"], clinician, width=390, height=844)
    # Keyboard only: tab to the file input, then to the button.
    page.get_by_label("Chest X-ray image").set_input_files(str(fake))
    page.get_by_label("Chest X-ray image").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "submit"
    page.keyboard.press("Enter")
    # "Analysing..." shows first; wait for the answer's error message.
    message = page.locator("#message.error")
    message.wait_for(state="visible", timeout=60_000)
    # The server's own sentence, plus the request id for support.
    assert message.inner_text().startswith(
        "The file is not a PNG or JPEG image (its content says otherwise). (reference ")
    assert page.locator("#answer").is_hidden()
    # Nothing overflows sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "browser-phone-error.png"), full_page=True)
    page.context.close()


def test_not_xray_answer_replaces_the_diagnosis(browser, gunicorn_app, clinician, tmp_path):
    # A real non-X-ray (a generated text document) through the real app and model.
    from training.nonxray import generated

    name, img = next(generated(seed=1))
    document = tmp_path / "letter.png"
    img.save(document)
    page = _page(browser, gunicorn_app["url"], clinician)
    SHOTS.mkdir(exist_ok=True)
    page.get_by_label("Chest X-ray image").set_input_files(str(document))
    page.get_by_role("button", name="Analyse").click()
    page.locator("#result-heading").wait_for(state="visible", timeout=60_000)
    assert page.locator("#result-headline").inner_text() == "Not a chest X-ray"
    # The model's reason, then that no diagnosis is given.
    assert page.locator("#result-why").inner_text().endswith("No diagnosis is given for it.")
    assert page.locator("#diagnosis").is_hidden() and page.locator("#bars .bar").count() == 0
    assert page.locator("#heatmap").is_hidden()
    assert page.locator("#result-model").inner_text().startswith("radio-cxr version ")
    page.screenshot(path=str(SHOTS / "browser-not-xray.png"), full_page=True)
    page.context.close()


@pytest.fixture(scope="module")
def radiologist(browser, gunicorn_app) -> tuple[str, str]:
    return first_login(browser, gunicorn_app["url"], gunicorn_app["env"], "browser-rad",
                       "radiologist")


@pytest.fixture(scope="module")
def admin(browser, gunicorn_app) -> tuple[str, str]:
    return first_login(browser, gunicorn_app["url"], gunicorn_app["env"], "browser-admin",
                       "admin")


def _variant(xray_path, folder, n: int):
    """The real X-ray with one pixel changed: another image by content (its own case in the
    queue, where copies of one image are merged)."""
    from PIL import Image

    img = Image.open(xray_path).convert("L")
    img.putpixel((0, 0), (img.getpixel((0, 0)) + n) % 256)
    path = folder / f"variant-{n}.png"
    img.save(path)
    return path


def test_clinical_loop_upload_correct_snapshot(browser, gunicorn_app, clinician, radiologist,
                                               admin, xray_path, tmp_path):
    """A clinician uploads, a radiologist corrects, an admin snapshots production: the
    image is in the new version with its source and the radiologist's label."""
    import csv

    url = gunicorn_app["url"]
    upload = _variant(xray_path, tmp_path, 1)
    page = _page(browser, url, clinician)
    page.get_by_label("Chest X-ray image").set_input_files(str(upload))
    page.get_by_role("button", name="Analyse").click()
    page.locator("#result-heading").wait_for(state="visible", timeout=60_000)
    pred_id = page.locator("#result-id").inner_text().strip()
    model_label = page.locator("#result-headline").inner_text().split(" \u2014 ")[0]
    page.get_by_role("link", name="History").click()
    assert page.locator(f'a[href="/predictions/{pred_id}"]').count() == 1
    page.context.close()

    page = _page(browser, url, radiologist, width=390, height=844)  # on a phone
    page.get_by_role("link", name="Review queue").click()
    page.locator(f'a.queue-answer[href="/predictions/{pred_id}"]').click()
    # The stored image and its stored heatmap are shown again.
    wait_for(page, "() => document.getElementById('heatmap').width > 0")
    # The image loads on its own request, possibly after the heatmap is drawn: wait for it
    # (bounded by wait_for's timeout: an image that never loads still fails here).
    wait_for(page, "() => document.getElementById('preview').naturalWidth > 0")
    new_label = next(c for c in ("COVID", "Normal", "Viral Pneumonia") if c != model_label)
    page.get_by_label("Correct to").check()
    page.get_by_label("Correct label").select_option(new_label)
    page.get_by_label("Comment").fill("reviewed in the browser test")
    page.get_by_role("button", name="Save", exact=True).click()
    assert page.locator("#review-state").inner_text() == (
        f"Corrected by a radiologist to {new_label} (Radio said {model_label})")
    assert f"correction to {new_label}" in page.locator("#reviews").inner_text()
    assert page.locator(".flag").count() == 0  # the red banner is gone once reviewed
    page.screenshot(path=str(SHOTS / "browser-review.png"), full_page=True)
    page.context.close()

    page = _page(browser, url, admin)
    page.get_by_role("link", name="Datasets").click()
    page.get_by_role("button", name="Snapshot production").click()
    message = page.locator("#dataset-message").inner_text()
    version = message.split("Production version ")[1].split(":")[0]
    page.context.close()
    folder = gunicorn_app["data_dir"] / "datasets" / "production" / f"v{version}"
    with open(folder / "manifest.csv", newline="") as fh:
        rows = {r["prediction_id"]: r for r in csv.DictReader(fh)}
    row = rows[pred_id]
    assert row["label"] == new_label and row["source"] == "Test Hospital"
    assert row["validated_by"] == "browser-rad"
    assert (folder / row["file"]).read_bytes() == upload.read_bytes()


def _db_url(gunicorn_app) -> str:
    from app.db import default_url

    return gunicorn_app["env"].get("DATABASE_URL") or default_url(gunicorn_app["data_dir"])


def _stored_case(gunicorn_app, username: str, xray_path, **fields) -> str:
    """A prediction of ``username`` written straight into the app's database (the answer of
    a model version that is not the one served); its id."""
    import uuid

    from sqlalchemy import select

    from app import db, images
    from app.db.models import Prediction, User

    data = xray_path.read_bytes()
    sha = images.store(gunicorn_app["data_dir"] / "images", data, "PNG")
    pred_id = uuid.uuid4().hex
    with db.session_scope(_db_url(gunicorn_app)) as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        s.add(Prediction(id=pred_id, user_id=user.id, image_sha256=sha, image_format="PNG",
                         image_bytes=len(data), model_name="radio-cxr", model_version="8",
                         **fields))
    return pred_id


def test_covid_above_its_threshold_but_under_half_is_the_headline_with_why(
        browser, gunicorn_app, clinician, xray_path):
    pred_id = _stored_case(
        gunicorn_app, clinician[0], xray_path, status="ok", label="COVID", confidence=0.3,
        needs_review=True, heatmap=[[0.1, 0.9], [0.4, 0.2]],
        probabilities={"COVID": 0.3, "Viral Pneumonia": 0.1, "Other Abnormal": 0.05,
                       "Normal": 0.55},
        decision={"covid_threshold": 0.24, "review_threshold": 0.6})
    url = gunicorn_app["url"]
    page = _page(browser, url, clinician)
    page.goto(f"{url}/predictions/{pred_id}")
    assert page.locator("#result-headline").inner_text() == "COVID \u2014 30.0%"
    why = page.locator("#result-why").inner_text()
    assert why.startswith("The COVID probability, 30.0%, is above the COVID threshold of 24%.")
    assert "even when another class is more probable" in why
    assert page.locator("#review-flag").inner_text().startswith(
        "Needs radiologist review: the model's probability for its answer, 30.0%, is below 60%")
    # Four bars, in the model's order; the named class is the highlighted one.
    assert page.locator("#bars .bar-name").all_inner_texts() == [
        "COVID", "Viral Pneumonia", "Other Abnormal", "Normal"]
    assert page.locator("#bars .bar.best .bar-name").inner_text() == "COVID"
    wait_for(page, "() => document.querySelector('.bar.best .bar-fill').style.width === '30%'")
    page.get_by_role("link", name="History").click()
    assert page.locator(f'a[href="/predictions/{pred_id}"]').count() == 1
    assert "COVID \u2014 30.0%" in page.locator("table.list").inner_text()
    page.context.close()


def test_404_and_another_users_case_are_html_pages(browser, gunicorn_app, clinician,
                                                   xray_path):
    url = gunicorn_app["url"]
    other = first_login(browser, url, gunicorn_app["env"], "browser-clin2", "clinician")
    pred_id = _stored_case(gunicorn_app, other[0], xray_path, status="ok", label="Normal",
                           confidence=0.9, probabilities={"COVID": 0.1, "Normal": 0.9})
    page = _page(browser, url, clinician)
    resp = page.goto(f"{url}/predictions/{pred_id}")
    assert resp.status == 403 and resp.headers["content-type"].startswith("text/html")
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    assert page.get_by_role("link", name="History", exact=True).is_visible()  # the site
    resp = page.goto(f"{url}/no/such/page")
    assert resp.status == 404 and page.get_by_role("heading", name="Page not found").is_visible()
    page.context.close()


def test_review_from_the_queue_lands_on_the_next_case(browser, gunicorn_app, clinician,
                                                      radiologist, xray_path, tmp_path):
    url = gunicorn_app["url"]
    page = _page(browser, url, clinician)
    for n in (2, 3):
        _analyse(page, _variant(xray_path, tmp_path, n))
    page.context.close()
    page = _page(browser, url, radiologist)
    page.get_by_role("link", name="Review queue").click()
    counts = page.locator("#queue-counts").inner_text()
    assert int(counts.split()[0]) >= 2 and "images to review" in counts
    first = page.locator(".queue-item a.queue-answer").first.get_attribute("href")
    assert page.locator(".queue-item img.thumb").count() >= 2
    page.locator(".queue-item a.queue-answer").first.click()
    page.get_by_label("Don't know").check()
    page.get_by_role("button", name="Save and next case").click()
    saved = page.locator("#saved")
    saved.wait_for(state="visible")
    assert saved.inner_text().startswith("Review saved for the case of")
    assert page.url.split("?")[0] != url + first and "/predictions/" in page.url
    page.goto(url + first)
    assert page.locator("#review-state").inner_text() == (
        "Reviewed: the radiologist could not tell")
    page.goto(url + "/queue")
    assert page.locator(f'.queue-item a[href="{first}"]').count() == 0
    page.context.close()


def test_no_page_is_wider_than_a_phone(browser, gunicorn_app, admin, xray_path):
    url = gunicorn_app["url"]
    pred_id = _stored_case(gunicorn_app, admin[0], xray_path, status="ok", label="Normal",
                           confidence=0.9, probabilities={"COVID": 0.1, "Normal": 0.9})
    page = _page(browser, url, admin, width=390, height=844)
    wide = {}
    for path in ("/", "/history", "/queue", "/contribute", "/datasets", "/admin/models",
                 "/admin/monitoring", "/admin/users", "/account/tokens", "/docs",
                 f"/predictions/{pred_id}", "/no/such/page"):
        page.goto(url + path)
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            # Name the culprits: the innermost elements that end past the screen's edge.
            wide[path] = (width, page.evaluate("""() => Array.from(
                document.querySelectorAll('body *')).filter(e =>
                e.getBoundingClientRect().right > 391 && !Array.from(e.children).some(
                    c => c.getBoundingClientRect().right > 391)).slice(0, 5).map(e =>
                e.tagName + '.' + e.className + ' ' + Math.round(
                    e.getBoundingClientRect().right))"""))
    assert wide == {}
    page.context.close()


def test_destructive_actions_ask_first(browser, gunicorn_app, admin):
    url = gunicorn_app["url"]
    first_login(browser, url, gunicorn_app["env"], "browser-victim", "clinician")
    page = _page(browser, url, admin)
    page.goto(url + "/admin/users")
    row = page.locator("tr", has_text="browser-victim")
    asked, posted = [], []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)

    def answer(dialog, accept: bool):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    row.get_by_role("button", name="Reset password").click()
    assert asked == ["Reset the password of browser-victim? Their current password stops "
                     "working."]
    # Dismissed: nothing was sent (the dialog is answered before click() returns, and a
    # form submission would issue its POST at once).
    assert posted == [] and page.locator("#one-time-password").count() == 0
    page.once("dialog", lambda d: answer(d, True))
    row.get_by_role("button", name="Reset password").click()
    page.locator("#one-time-password").wait_for()
    assert len(asked) == 2 and len(posted) == 1
    page.goto(url + "/admin/models")
    for name in ("Force deploy", "Roll back"):
        page.once("dialog", lambda d: answer(d, False))
        page.get_by_role("button", name=name).click()
    assert asked[2:] == ["Force this version into production without the quality gate?",
                         "Roll production back to the previous version?"]
    assert len(posted) == 1  # neither was sent
    page.context.close()
