"""The upload page in a real browser (Playwright + Debian's chromium) against gunicorn: every
kind of upload, refusals, errors, and the clinical loop to a dataset."""

import pytest
from web_browser import (
    CHROMIUM,
    CLASSES,
    MISSING,
    SHOTS,
    analyse,
    jpeg_and_dicom,
    open_page,
    variant,
    wait_for,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)


def test_upload_shows_label_bars_and_heatmap(browser, gunicorn_app, clinician, xray_path):
    page = open_page(browser, gunicorn_app["url"], clinician)
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


def test_png_jpeg_and_16bit_monochrome1_dicom_show_image_answer_heatmap(
        browser, gunicorn_app, clinician, xray_path, tmp_path):
    jpeg, dcm = jpeg_and_dicom(xray_path, tmp_path)
    page = open_page(browser, gunicorn_app["url"], clinician)
    for path in (xray_path, jpeg, dcm):
        pred_id = analyse(page, path)
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
    page = open_page(browser, gunicorn_app["url"], clinician, width=390, height=844)
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
    page = open_page(browser, gunicorn_app["url"], clinician)
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


def test_clinical_loop_upload_correct_snapshot(browser, gunicorn_app, clinician, radiologist,
                                               admin, xray_path, tmp_path):
    """A clinician uploads, a radiologist corrects, an admin snapshots production: the
    image is in the new version with its source and the radiologist's label."""
    import csv

    url = gunicorn_app["url"]
    upload = variant(xray_path, tmp_path, 1)
    page = open_page(browser, url, clinician)
    page.get_by_label("Chest X-ray image").set_input_files(str(upload))
    page.get_by_role("button", name="Analyse").click()
    page.locator("#result-heading").wait_for(state="visible", timeout=60_000)
    pred_id = page.locator("#result-id").inner_text().strip()
    model_label = page.locator("#result-headline").inner_text().split(" \u2014 ")[0]
    page.get_by_role("link", name="History").click()
    assert page.locator(f'a[href="/predictions/{pred_id}"]').count() == 1
    page.context.close()

    page = open_page(browser, url, radiologist, width=390, height=844)  # on a phone
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

    page = open_page(browser, url, admin)
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
