"""The clinical pages in a real browser: the answer's statement, error pages, the review
queue, phone widths, confirmations of destructive actions."""

import pytest
from web_browser import (
    CHROMIUM,
    MISSING,
    analyse,
    awaiting_read,
    drift_reports,
    first_login,
    new_page,
    open_page,
    production_version,
    stored_case,
    variant,
    wait_for,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)


def test_covid_above_its_threshold_but_under_half_is_the_headline_with_why(
        browser, gunicorn_app, clinician, xray_path):
    pred_id = stored_case(
        gunicorn_app, clinician[0], xray_path, status="ok", label="COVID", confidence=0.3,
        needs_review=True, heatmap=[[0.1, 0.9], [0.4, 0.2]],
        probabilities={"COVID": 0.3, "Viral Pneumonia": 0.1, "Other Abnormal": 0.05,
                       "Normal": 0.55},
        decision={"covid_threshold": 0.24, "review_threshold": 0.6})
    url = gunicorn_app["url"]
    page = open_page(browser, url, clinician)
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
    # Reading the film: zoom doubles the image inside its scrolling box, the heatmap stays
    # on it; brightness and contrast change the image, not the heatmap.
    wait_for(page, "() => document.getElementById('preview').naturalWidth > 0")
    page.get_by_label("Zoom").fill("200")
    page.get_by_label("Brightness").fill("150")
    sizes = page.evaluate("""() => {
        const box = (id) => document.getElementById(id).getBoundingClientRect();
        const stage = document.getElementById('stage');
        return {stage: stage.clientWidth, scroll: stage.scrollWidth, img: box('preview').width,
                canvas: box('heatmap').width,
                filter: document.getElementById('preview').style.filter,
                heat: document.getElementById('heatmap').style.filter};
    }""")
    assert abs(sizes["img"] - 2 * sizes["stage"]) <= 2 and sizes["scroll"] > sizes["stage"]
    assert abs(sizes["canvas"] - sizes["img"]) <= 1
    assert sizes["filter"] == "brightness(1.5) contrast(1)" and sizes["heat"] == ""
    page.get_by_role("button", name="Reset view").click()
    assert page.evaluate("document.getElementById('zoom').style.width") == "100%"
    page.get_by_role("link", name="History").click()
    assert page.locator(f'a[href="/predictions/{pred_id}"]').count() == 1
    assert "COVID \u2014 30.0%" in page.locator("table.list").inner_text()
    page.context.close()


def test_404_and_another_users_case_are_html_pages(browser, gunicorn_app, clinician,
                                                   xray_path):
    url = gunicorn_app["url"]
    other = first_login(browser, url, gunicorn_app["env"], "browser-clin2", "clinician")
    pred_id = stored_case(gunicorn_app, other[0], xray_path, status="ok", label="Normal",
                           confidence=0.9, probabilities={"COVID": 0.1, "Normal": 0.9})
    page = open_page(browser, url, clinician)
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
    page = open_page(browser, url, clinician)
    for n in (2, 3):
        analyse(page, variant(xray_path, tmp_path, n))
    page.context.close()
    page = open_page(browser, url, radiologist)
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


def test_no_page_is_wider_than_a_phone(browser, gunicorn_app, admin, xray_path, tmp_path):
    url = gunicorn_app["url"]
    case = dict(status="ok", label="Normal", confidence=0.9,
                probabilities={"COVID": 0.1, "Normal": 0.9})
    pred_id = stored_case(gunicorn_app, admin[0], xray_path, **case)
    blinded = stored_case(gunicorn_app, admin[0], variant(xray_path, tmp_path, 7), **case)
    awaiting_read(gunicorn_app, admin[0], blinded)
    version = production_version(gunicorn_app, admin[0], pred_id)
    drift_reports(gunicorn_app)
    # Logged out first: the log-in page itself.
    page = new_page(browser, url, width=390, height=844)
    page.goto(url + "/login")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.context.close()
    page = open_page(browser, url, admin, width=390, height=844)
    wide = {}
    # Every page a GET route of the app draws (app/*/*.py), with a case, a dataset version
    # and both drift reports to show.
    for path in ("/", "/history", "/queue", "/contribute", "/datasets", "/admin/models",
                 "/admin/monitoring", "/admin/users", "/admin/audit", "/account/tokens", "/docs",
                 f"/predictions/{pred_id}", "/teaching", "/no/such/page",
                 f"/datasets/production/v{version}", f"/predictions/{blinded}/read",
                 "/account/password", "/admin/monitoring/data.html",
                 "/admin/monitoring/model.html"):
        page.goto(url + path)
        assert page.url == url + path, path  # the page itself, not a redirect elsewhere
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
    page = open_page(browser, url, admin)
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


def test_teaching_mode_read_validation_and_the_three_reads(browser, gunicorn_app, clinician,
                                                            radiologist, xray_path, tmp_path):
    """A clinician in teaching mode records a read before seeing Radio's answer, notes the
    case and finds it again by the note; a radiologist validates; the clinician's case page
    and personal page show the three reads."""
    url = gunicorn_app["url"]
    page = open_page(browser, url, clinician)
    page.get_by_label("Teaching mode: record my own read before Radio's answer is shown").check()
    page.get_by_label("Chest X-ray image").set_input_files(str(variant(xray_path, tmp_path, 7)))
    with page.expect_response(lambda r: r.url.endswith("/teaching/predict")) as blinded:
        page.get_by_role("button", name="Analyse").click()
    body = blinded.value.json()
    assert body["status"] == "awaiting_read" and "probabilities" not in body
    page.locator("#read-panel").wait_for(state="visible")
    assert page.locator("#answer").is_hidden() and page.locator("#bars .bar").count() == 0
    assert page.locator("#result-headline").inner_text() == ""
    wait_for(page, "() => document.getElementById('preview').naturalWidth > 0")
    page.locator("#read-panel").get_by_label("Other Abnormal").check()
    page.get_by_role("button", name="Record my read and show Radio's answer").click()
    page.locator("#result-heading").wait_for(state="visible", timeout=60_000)
    assert page.locator("#read-panel").is_hidden() and page.locator("#bars .bar").count() >= 3
    wait_for(page, "() => document.getElementById('heatmap').width > 0")
    radio = page.locator("#result-headline").inner_text().split(" \u2014 ")[0]
    pred_id = page.locator("#result-id").inner_text().strip()
    # The choice is remembered in this browser.
    page.reload()
    assert page.get_by_label("Teaching mode: record my own read before Radio's answer "
                             "is shown").is_checked()

    page.goto(f"{url}/predictions/{pred_id}")
    assert page.locator("#read-radiologist").inner_text() == "not settled yet"
    page.get_by_label("Your study reference, to find this case again").fill("teach ref T-77")
    page.get_by_role("button", name="Save note").click()
    page.get_by_text("Note saved.").wait_for()
    page.goto(url + "/history")
    page.get_by_label("Note").fill("t-77")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("load")
    assert page.locator("table.list tbody tr").count() == 1
    assert "teach ref T-77" in page.locator("table.list tbody tr").inner_text()
    page.context.close()

    rad = open_page(browser, url, radiologist)
    rad.goto(f"{url}/predictions/{pred_id}")
    assert rad.locator("#note-text").inner_text() == "teach ref T-77"
    rad.locator("input[name=verdict][value=validated]").check()
    rad.get_by_role("button", name="Save", exact=True).click()
    rad.wait_for_load_state("load")
    assert rad.locator("#review-state").inner_text() == f"Validated by a radiologist: {radio}"
    rad.context.close()

    page = open_page(browser, url, clinician)
    page.goto(f"{url}/predictions/{pred_id}")
    reads = [page.locator(f"#read-{who}").inner_text()
             for who in ("mine", "radio", "radiologist")]
    assert reads == ["Other Abnormal", radio, radio]
    page.get_by_role("link", name="My reads").click()
    row = page.locator("#read-cases tbody tr").first
    assert row.locator("td").all_inner_texts()[1:] == ["Other Abnormal", radio, radio]
    assert page.locator("#radio-total").inner_text() == "1 of 1"
    assert page.locator("#mine-total").inner_text() == (
        "1 of 1" if radio == "Other Abnormal" else "0 of 1")
    page.context.close()
