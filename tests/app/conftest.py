"""Fixtures of the browser tests: one Chromium, and one account per role, for the session
(the accounts are made once on the session's gunicorn app)."""

from __future__ import annotations

import pytest
import web_browser as browser_helpers


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright  # a dev dependency: never skipped
    from web_browser import ARGS, CHROMIUM, MISSING

    if not CHROMIUM.exists():
        pytest.skip(MISSING)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def clinician(browser, gunicorn_app) -> tuple[str, str]:
    return browser_helpers.first_login(browser, gunicorn_app["url"], gunicorn_app["env"],
                                       "browser-clin", "clinician")


@pytest.fixture(scope="session")
def radiologist(browser, gunicorn_app) -> tuple[str, str]:
    return browser_helpers.first_login(browser, gunicorn_app["url"], gunicorn_app["env"],
                                       "browser-rad", "radiologist")


@pytest.fixture(scope="session")
def admin(browser, gunicorn_app) -> tuple[str, str]:
    return browser_helpers.first_login(browser, gunicorn_app["url"], gunicorn_app["env"],
                                       "browser-admin", "admin")


@pytest.fixture()
def s(db_url):
    """A database session on a migrated database (each test database of ``db_url``)."""
    from app.store import db

    db.migrate(db_url)
    with db.session_scope(db_url) as session:
        yield session
