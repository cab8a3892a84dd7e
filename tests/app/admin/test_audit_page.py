"""app/admin/audit_page.py: the audit log for admins, filtered by user, action and dates, paged
in SQL, human dates; entries written by the real actions (a login) and by app.accounts.audit.log."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import accounts

from app.store.db import web as dbweb
from app.store.db.models import AuditEntry


def _entries(html: str) -> list[str]:
    return re.findall(r'<tr data-entry="(\d+)">', html)


def _setup(make_app):
    app = make_app(mlflow_url="http://127.0.0.1:9")
    boss = accounts.add_user(app, "boss", "admin")
    doc = accounts.add_user(app, "dr-ann", "radiologist")
    with app.app_context():
        session = dbweb.session()
        for day in range(1, 31):  # 30 reviews by dr-ann, one a day in November
            session.add(AuditEntry(action="review", user_id=doc, target=f"case-{day}",
                                   at=datetime(2026, 11, day, 9, 30, tzinfo=UTC),
                                   detail={"verdict": "agree"}))
        for day in range(1, 31):  # 30 forced deploys by the admin, at 16:20
            session.add(AuditEntry(action="model_force", user_id=boss, target="7",
                                   at=datetime(2026, 11, day, 16, 20, tzinfo=UTC),
                                   ip="10.0.0.9", detail={"reason": "hotfix"}))
        session.commit()
    client = app.test_client()
    # creating each user wrote 2 entries (created, password set); this login writes one
    accounts.login(client, "boss")
    return app, client


def test_entries_newest_first_with_human_dates_and_pages(make_app):
    _, client = _setup(make_app)
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "65 entries, page 1 of 2." in html
    assert len(_entries(html)) == 50
    body = html[html.index('<tbody>'):]
    first_row = body[:body.index("</tr>")]
    assert ">login<" in first_row and ">boss<" in first_row  # today's login is newest
    assert "30 Nov 2026, 16:20 UTC" in html and "1764" not in html  # no Unix timestamps
    assert "reason: hotfix" in html
    older = client.get("/admin/audit?page=2").get_data(as_text=True)
    assert len(_entries(older)) == 15 and "1 Nov 2026, 09:30 UTC" in older
    assert not set(_entries(html)) & set(_entries(older))
    assert "page=3" not in older and "Newer" in older


def test_filters_by_user_action_and_dates(make_app, monkeypatch):
    from app.admin import audit_page

    _, client = _setup(make_app)
    html = client.get("/admin/audit?user=dr-ann").get_data(as_text=True)
    # her 30 reviews and the password set when her account was made
    assert "31 entries." in html and "model_force" not in html.split("<tbody>")[1]
    html = client.get("/admin/audit?action=model_force&from=2026-11-10&to=2026-11-12"
                      ).get_data(as_text=True)
    assert "3 entries." in html
    assert [d in html for d in ("10 Nov 2026, 16:20", "11 Nov", "12 Nov", "9 Nov", "13 Nov")
            ] == [True, True, True, False, False]
    # the pager keeps the filters
    monkeypatch.setattr(audit_page, "PAGE_SIZE", 10)
    html = client.get("/admin/audit?action=review&user=dr-ann&page=2").get_data(as_text=True)
    assert "30 entries, page 2 of 3." in html
    assert 'href="/admin/audit?page=3&amp;user=dr-ann&amp;action=review"' in html
    assert "20 Nov 2026, 09:30 UTC" in html and "21 Nov 2026" not in html
    html = client.get("/admin/audit?action=nothing-like-it").get_data(as_text=True)
    assert "No entry matches these filters." in html


def test_bad_filters_are_said_not_crashed(make_app):
    _, client = _setup(make_app)
    resp = client.get("/admin/audit?from=2026-11-20&to=2026-11-10&user=nobody")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "&#39;From&#39; is after &#39;To&#39;" in html
    assert "No user named &#39;nobody&#39;." in html and "0 entries." in html
    html = client.get("/admin/audit?from=yesterday&page=x").get_data(as_text=True)
    assert "is not a date (YYYY-MM-DD): ignored." in html and "65 entries" in html


def test_only_admins_see_it(make_app):
    app, _ = _setup(make_app)
    client = app.test_client()
    accounts.login(client, "dr-ann")
    assert client.get("/admin/audit").status_code == 403
    assert app.test_client().get("/admin/audit").status_code in (302, 401)
