"""Fixtures of the app's tests: an S3 bucket (moto); for the browser tests one Chromium, and
one account per role, for the session (the accounts are made once on the session's gunicorn
app)."""

from __future__ import annotations

import pytest
import web_browser as browser_helpers


@pytest.fixture()
def s3(monkeypatch):
    """The bucket ``radio-images`` in moto's S3 (the only mocked part: AWS); its client."""
    import moto  # a dev dependency, like boto3 (deploy extra)

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-3"}.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket="radio-images",
                             CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        yield client


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
