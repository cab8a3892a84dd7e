"""The documentation tells the truth: every `make` target, `python -m` module and subcommand,
`./deploy.sh` action, HTTP route, environment, Terraform and Ansible variable that README.md
and docs/*.md name exists in the code; the README links every page under docs/, links
resolve, and every page reads at once."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]

README_MAX_LINES = 300
PAGE_MAX_LINES = 400

# Where a documented name may be found: the project's source, build and deployment files
# (not the documentation, and not the test modules: a test that merely sets a variable
# does not make the code read it).
CODE_SUFFIXES = {".py", ".sh", ".j2", ".tf", ".tftpl", ".yml", ".yaml", ".toml", ".ini",
                 ".cfg", ".mako", ""}
# A path whose first folder is one of these names a file on a host, not an HTTP route.
HOST_FOLDERS = {"bin", "dev", "etc", "home", "mnt", "opt", "proc", "run", "srv", "sys",
                "tmp", "usr", "var"}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _fenced_and_prose(text: str) -> tuple[list[str], str]:
    """The fenced code blocks of a Markdown text, and the text without them."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return blocks, prose


def _code(text: str) -> list[str]:
    """Every piece of code in a Markdown text: fenced blocks and `inline spans`."""
    blocks, prose = _fenced_and_prose(text)
    return blocks + re.findall(r"`([^`]+)`", prose)


def _mentions(pattern: str, *, code_only: bool = False, group: int = 1) -> dict[str, set[str]]:
    """{what the pattern captured: {the documents naming it}} over README and docs/."""
    found: dict[str, set[str]] = {}
    for doc in DOCUMENTS:
        text = _text(doc)
        pieces = _code(text) if code_only else [text]
        for piece in pieces:
            for m in re.finditer(pattern, piece):
                found.setdefault(m.group(group), set()).add(doc.relative_to(ROOT).as_posix())
    return found


@cache
def _code_corpus() -> str:
    """The text of every tracked source, build and deployment file."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    texts = []
    for name in filter(None, listed):
        path = ROOT / name
        if (path.suffix not in CODE_SUFFIXES or name.startswith(("docs/", "mlflow/artifacts/"))
                or re.search(r"(^|/)test_[^/]*\.py$", name) or not path.is_file()):
            continue
        texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


def _in_code(name: str, *, prefix: bool = False) -> bool:
    """The name appears in the code as a whole word (or, as a prefix, at a word's start)."""
    end = "" if prefix else "(?![A-Za-z0-9_])"
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}{end}", _code_corpus()) is not None


# --- the README is a map of short pages -----------------------------------------------------


def test_readme_is_short() -> None:
    assert len(_text(README).splitlines()) < README_MAX_LINES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_each_page_reads_at_once(page: Path) -> None:
    assert len(_text(page).splitlines()) < PAGE_MAX_LINES


def test_every_page_is_linked_from_the_readme() -> None:
    linked = set(re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)", _text(README)))
    assert {p.relative_to(ROOT).as_posix() for p in PAGES} - linked == set()
    assert {"docs/model-card.md", "docs/api.md", "docs/deploy.md",
            "docs/configuration.md", "docs/development.md"} <= linked


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    _, prose = _fenced_and_prose(_text(path))
    return {_slug(h) for h in re.findall(r"^#+\s+(.*)$", prose, flags=re.M)}


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: p.name)
def test_links_between_pages_resolve(doc: Path) -> None:
    """Every relative link names a file that exists and, with #anchor, a heading in it."""
    _, prose = _fenced_and_prose(_text(doc))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(target)
    assert broken == []


# --- commands -------------------------------------------------------------------------------


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", _text(ROOT / "Makefile"), flags=re.M))


def test_documented_make_targets_exist() -> None:
    documented = _mentions(r"\bmake ([a-z][\w-]*)", code_only=True)
    assert {"run", "test", "train", "bench"} <= set(documented)
    missing = {t: docs for t, docs in documented.items() if t not in _makefile_targets()}
    assert missing == {}


PYTHON_M = r"python3?(?:\.\d+)? -m\s+([A-Za-z_][\w.]*[A-Za-z0-9_])"


def _runnable(module: str) -> bool:
    """`python -m module` finds a file of the repository (a package needs __main__.py)."""
    parts = module.split(".")
    as_file = ROOT.joinpath(*parts).with_suffix(".py")
    as_package = ROOT.joinpath(*parts, "__main__.py")
    return as_file.is_file() or as_package.is_file()


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return not (ROOT / top).exists() and importlib.util.find_spec(top) is not None


def test_documented_python_modules_exist() -> None:
    documented = _mentions(PYTHON_M)
    assert {"training", "lifecycle", "app.accounts.users"} <= set(documented)
    missing = {m: docs for m, docs in documented.items()
               if not (_runnable(m) or _third_party(m))}
    assert missing == {}


def _module_source(module: str) -> str:
    """The source of a runnable module: its file, or every file of its package."""
    parts = module.split(".")
    as_file = ROOT.joinpath(*parts).with_suffix(".py")
    if as_file.is_file():
        return _text(as_file)
    return "\n".join(_text(p) for p in sorted(ROOT.joinpath(*parts).glob("*.py")))


def test_documented_subcommands_exist() -> None:
    """`python -m lifecycle deploy`, `./deploy.sh backup`: the command knows the word."""
    documented = _mentions(rf"{PYTHON_M}\s+[a-z][a-z-]*\b(?!\.)", code_only=True, group=0)
    assert any("lifecycle deploy" in d for d in documented)
    missing = {}
    for command, docs in documented.items():
        module, sub = command.split()[-2:]
        if _runnable(module) and f'"{sub}"' not in _module_source(module):
            missing[command] = docs
    deploy_sh = _text(ROOT / "deploy.sh")
    actions = _mentions(r"\./deploy\.sh\s+([a-z][a-z-]*)", code_only=True)
    assert {"deploy", "destroy", "rollback"} <= set(actions)
    missing |= {f"./deploy.sh {a}": docs for a, docs in actions.items()
                if not re.search(rf"^\s*{re.escape(a)}\)", deploy_sh, flags=re.M)}
    assert missing == {}


# --- HTTP routes ----------------------------------------------------------------------------


def _shape(route: str) -> str:
    """`/predictions/<int:pid>` and `/predictions/<id>` alike: `/predictions/<>`."""
    return re.sub(r"<[^>]*>", "<>", route)


def _documented_routes() -> dict[str, set[str]]:
    routes = _mentions(r"\b(?:GET|POST|PUT|PATCH|DELETE|HEAD)\s+`?(/[\w.<>/-]*)")
    for route, docs in _mentions(r"^(/[a-z.][\w.<>/-]*)$", code_only=True).items():
        first = route.strip("/").split("/")[0]
        if first not in HOST_FOLDERS and "." not in route.rsplit("/", 1)[-1]:
            routes.setdefault(route, set()).update(docs)
    return routes


@cache
def _model_server_source() -> str:
    """MLflow's scoring server, which the model host runs (read, not imported: heavy)."""
    spec = importlib.util.find_spec("mlflow")
    assert spec is not None and spec.origin is not None, "mlflow is a dependency of the tests"
    return (Path(spec.origin).parent / "pyfunc" / "scoring_server" / "__init__.py").read_text()


def _proxy_locations() -> set[str]:
    """The nginx `location` paths of the roles' templates."""
    found = set()
    for template in (ROOT / "roles").rglob("*.j2"):
        found |= set(re.findall(r"location\s+(?:=\s*)?(/\S*)\s*\{", _text(template)))
    return found


def test_documented_routes_exist(make_app) -> None:
    app = make_app()
    flask_routes = {_shape(rule.rule) for rule in app.url_map.iter_rules()}
    documented = _documented_routes()
    assert {"/predict", "/health", "/version", "/history", "/invocations"} <= set(documented)

    def served(route: str) -> bool:
        shape = _shape(route)
        if shape in flask_routes or shape.rstrip("/") in flask_routes:
            return True
        if route.endswith("/") and any(r.startswith(route) for r in flask_routes):
            return True  # `/static/` names the folder of `/static/<path:filename>`
        return f'"{route}"' in _model_server_source() or route in _proxy_locations()

    assert {r: docs for r, docs in documented.items() if not served(r)} == {}


# --- environment variables and settings -----------------------------------------------------

ENV_NAME = r"(?:RADIO|MLFLOW|MODEL_SERVER)_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL|FORWARDED_ALLOW_IPS"


def _documented_variables() -> dict[str, set[str]]:
    names = _mentions(rf"(?<![A-Za-z0-9_])({ENV_NAME})(?![A-Za-z0-9_*])")
    # `MODEL_SERVER_HOST/PORT/WORKERS`: the same prefix, another last word each.
    for text, docs in _mentions(rf"(?<![A-Za-z0-9_])((?:{ENV_NAME})(?:/[A-Z][A-Z0-9_]*)+)").items():
        first, *others = text.split("/")
        prefix = first.rsplit("_", 1)[0] + "_"
        for other in others:
            names.setdefault(prefix + other, set()).update(docs)
    # `NAME=value` in code: a variable a command is given.
    for name, docs in _mentions(r"(?<![\w$-])([A-Z][A-Z0-9_]{2,})=", code_only=True).items():
        names.setdefault(name, set()).update(docs)
    # The first column of a table of variables.
    for doc in DOCUMENTS:
        for table in re.findall(r"^\| *[Vv]ariable *\|.*\n((?:\|.*\n)+)", _text(doc), flags=re.M):
            for name in re.findall(r"^\| *`([A-Z][A-Z0-9_]+)`", table, flags=re.M):
                names.setdefault(name, set()).add(doc.relative_to(ROOT).as_posix())
    return names


def test_documented_environment_variables_are_read_by_the_code() -> None:
    documented = _documented_variables()
    assert {"RADIO_MAX_UPLOAD_MB", "MLFLOW_URL", "DATABASE_URL", "MLFLOW_TRACKING_URI",
            "PORT", "MODEL_SERVER_WORKERS"} <= set(documented)
    assert {n: docs for n, docs in documented.items() if not _in_code(n)} == {}


def test_documented_variable_families_exist() -> None:
    """`RADIO_FOLLOW_*`: at least one variable of the family is read."""
    families = _mentions(r"`((?:RADIO|MLFLOW|MODEL_SERVER)_[A-Z0-9_]*_?)\*`")
    assert {f: docs for f, docs in families.items() if not _in_code(f, prefix=True)} == {}


def test_documented_terraform_variables_exist() -> None:
    declared = set(re.findall(r'^variable "(\w+)"', _text(ROOT / "variables.tf"), flags=re.M))
    documented = _mentions(r"\bTF_VAR_([a-z]\w*)")
    assert "registry_backend" in documented
    assert {v: docs for v, docs in documented.items() if v not in declared} == {}


def test_documented_ansible_names_exist() -> None:
    """`radio_max_upload_mb`, `radio_smtp_host`, `roles/radio_monitoring`: the playbooks, the
    roles or the deploy helpers use every `radio_...` name the pages give."""
    documented = _mentions(r"(?<![\w/.-])(radio_[a-z0-9_]*[a-z0-9])(?![\w*/.])", code_only=True)
    assert {"radio_max_upload_mb", "radio_smtp_host"} <= set(documented)
    assert {n: docs for n, docs in documented.items() if not _in_code(n)} == {}
