"""The shape of app/ (issue 25): a few feature packages at the top, short modules, each
blueprint in the file of its name, and Flask only in the views and the web platform."""

import ast
import subprocess
import sys

from helpers import ROOT

APP = ROOT / "app"

# The modules that may import Flask: the views (one per blueprint), the pages' filters and
# the web platform around them (factory, error pages, headers, request class and timing,
# per-app state, the database session of a request, the gunicorn worker writing JSON
# errors). Everything else is domain or storage code and must import without Flask.
FLASK_MODULES = {
    "app.platform.factory", "app.platform.errors", "app.platform.headers",
    "app.platform.health", "app.platform.openapi", "app.platform.web", "app.platform.wsgi",
    "app.platform.request", "app.platform.request_timing", "app.platform.state",
    "app.platform.gunicorn_worker",
    "app.clinical.predict", "app.clinical.clinical", "app.clinical.presentation",
    "app.clinical.teaching",
    "app.accounts.auth", "app.accounts.accounts",
    "app.datasets.datasets", "app.datasets.dataset_versions",
    "app.admin.models", "app.admin.monitoring", "app.admin.audit_page",
    "app.admin.monitoring_runs",
    "app.store.db.web",
}


def _tracked(under: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", under], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def _modules() -> dict[str, str]:
    """Dotted name -> path of every importable module of app/ (not the migrations, which
    Alembic loads by path, nor gunicorn.conf.py, which gunicorn does)."""
    found = {}
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if "migrations" in rel.parts or path.name == "gunicorn.conf.py":
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = str(rel)
    return found


def test_app_top_has_the_feature_packages_and_nothing_else():
    top = {path.split("/")[1] for path in _tracked("app")}
    assert top == {"__init__.py", "platform", "intake", "clinical", "accounts", "datasets",
                   "admin", "store", "templates", "static"}
    assert len(top) <= 10


def test_every_module_is_under_400_lines():
    long = {path: n for path in _tracked("app") if path.endswith(".py")
            if (n := len((ROOT / path).read_text().splitlines())) >= 400}
    assert long == {}


def test_every_blueprint_is_in_the_file_of_its_name():
    blueprints = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Blueprint"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                blueprints[node.args[0].value] = name
    assert blueprints == {
        "web": "app.platform.web", "health": "app.platform.health",
        "openapi": "app.platform.openapi", "predict": "app.clinical.predict",
        "clinical": "app.clinical.clinical", "auth": "app.accounts.auth",
        "accounts": "app.accounts.accounts", "datasets": "app.datasets.datasets",
        "models": "app.admin.models", "monitoring": "app.admin.monitoring",
        "audit_page": "app.admin.audit_page", "monitoring_runs": "app.admin.monitoring_runs",
        "dataset_versions": "app.datasets.dataset_versions",
        "teaching": "app.clinical.teaching",
    }
    for blueprint, module in blueprints.items():
        assert module.rsplit(".", 1)[1] == blueprint


def test_the_allowed_list_names_real_modules():
    # A module renamed away must leave the list, or the list would allow a ghost.
    assert FLASK_MODULES <= set(_modules())


CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print("flask" in sys.modules)
"""


def _loads_flask(names: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-c", CHECK, *names], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={"PATH": "/usr/bin:/bin",
                                                      "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "True"


def test_no_module_outside_the_views_and_platform_imports_flask():
    """In a fresh interpreter (another test may have loaded Flask here): all the domain and
    storage modules together; on failure, each alone, to name the culprits."""
    domain = sorted(set(_modules()) - FLASK_MODULES)
    assert {"app", "app.intake.intake", "app.intake.dicom", "app.store.storage",
            "app.store.images", "app.clinical.records", "app.platform.model_client",
            "app.platform.failures", "app.platform.metrics"} <= set(domain)
    if _loads_flask(domain):
        culprits = [name for name in domain if _loads_flask([name])]
        raise AssertionError(f"these modules load Flask: {culprits}")


def test_the_check_sees_flask_when_a_view_is_imported():
    # The check itself works: a view does load Flask in the same kind of interpreter.
    assert _loads_flask(["app.clinical.predict"])


def test_the_gunicorn_master_loads_no_metrics():
    """gunicorn's master imports the worker class before ``on_starting`` prepares the metrics
    folder; a metric created then fails to start the app (and leaves the master's own
    files). So the worker module reaches neither prometheus_client nor app.platform.metrics."""
    code = ("import sys, app.platform.gunicorn_worker\n"
            "print(sorted(m for m in ('prometheus_client', 'app.platform.metrics') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    assert out.stdout.strip() == "[]"
