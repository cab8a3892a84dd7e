"""The datasets pages' tests: an app (no model server) with a radiologist and an admin."""

import accounts
import pytest


@pytest.fixture()
def app(make_app):
    app = make_app(mlflow_url="http://127.0.0.1:9", site="Site B")
    accounts.add_user(app, "rad", "radiologist")
    accounts.add_user(app, "boss", "admin")
    return app
