"""GET / (the page) and its static files: labels, notice, no external resources."""

import re


def test_page_has_form_labels_and_notice(offline_client):
    resp = offline_client.get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Decision support, not a diagnosis." in html
    assert '<label for="file"' in html and 'id="file" name="file"' in html
    assert '<label for="opacity">Heatmap opacity</label>' in html
    assert 'name="viewport"' in html
    assert 'data-max-mb="20"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # no CDN


def test_static_files_are_served(offline_client):
    for name in ("app.js", "heatmap.js", "app.css"):
        resp = offline_client.get(f"/static/{name}")
        assert resp.status_code == 200 and resp.data
        resp.close()
    js = offline_client.get("/static/app.js").get_data(as_text=True)
    assert "fetch(" in js and "/predict" not in js.split("form.action")[0][-5:]
