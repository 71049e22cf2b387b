"""The documentation site (issue 25): ``mkdocs build --strict`` succeeds (no broken link, image,
anchor or missing page), the API reference is generated from the schema with every endpoint,
the diagrams and the model's figures are there, every README link resolves, and the commands,
modules, scripts and paths the pages name exist (with the options they are given), so that a
page cannot go stale against the code without a test failing.

One build per run (module fixture, a few seconds), into a temporary folder, without a network.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.data import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))
MARKDOWN = [README, *PAGES, REPO / "ml" / "MODEL_CARD.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def offline() -> list[str]:
    """``unshare -n``: the build in a network namespace of its own, with no network at all, so a
    theme or plugin that fetched something (fonts, a schema, a CDN) would fail the build. Where
    the namespace cannot be made (no root, no unshare), the build runs as it is."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["NO_MKDOCS_2_WARNING"] = "1"  # mkdocs-material's notice about its successor
    started = time.monotonic()
    result = subprocess.run(
        [*offline(), sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"mkdocs build --strict: {seconds:.1f} s")
    return site_dir


def built_page(site_dir: Path, page: Path) -> Path:
    """The HTML file mkdocs writes for a Markdown page (directory URLs)."""
    relative = page.relative_to(DOCS).with_suffix("")
    if relative.name == "index":
        return site_dir / relative.parent / "index.html"
    return site_dir / relative / "index.html"


class Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name == "id" and value)


def ids_of(html_file: Path) -> set:
    parser = Ids()
    parser.feed(html_file.read_text())
    return parser.ids


def test_the_site_builds_strictly_with_every_page_in_the_navigation(site):
    assert (site / "index.html").is_file()
    for page in PAGES:
        assert built_page(site, page).is_file(), page
    # theme.font: false, so a reader's browser fetches no Google Fonts.
    assert "fonts.googleapis.com" not in (site / "index.html").read_text()


def test_the_api_reference_is_generated_from_the_served_schema(site):
    schema = json.loads((site / "api" / "openapi.json").read_text())
    reference = (site / "api" / "reference" / "index.html").read_text()
    assert "/api/v1/cases/" in schema["paths"]
    for path, operations in schema["paths"].items():
        for method in operations:
            if method in ("get", "post", "put", "patch", "delete"):
                assert f"{method.upper()} {path}" in reference, (method, path)
    for name in schema["components"]["schemas"]:
        assert f'id="schema-{name.lower()}"' in reference, name


def test_the_architecture_and_pacs_pages_hold_mermaid_diagrams(site):
    for page in ("develop/index.html", "operate/pacs/index.html"):
        html = (site / page).read_text()
        assert '<pre class="mermaid">' in html, page
    assert "flowchart" in (site / "develop" / "index.html").read_text()


def test_the_model_pages_show_the_model_card_and_its_figures(site):
    model = (site / "model" / "index.html").read_text()
    for figure in ("roc.png", "curves-stage7-512-bf16.png"):
        assert f"figures/{figure}" in model
        assert (site / "model" / "figures" / figure).read_bytes() == \
            (REPO / "ml" / "model-card" / figure).read_bytes()
    card = (site / "model" / "card" / "index.html").read_text()
    assert "Intended use" in card and "Stage 7" in card


def test_every_readme_link_resolves(site):
    text = README.read_text()
    links = [target for target in LINK.findall(text) if "://" not in target]
    assert any(target.startswith("docs/") for target in links)
    for target in links:
        path, _, anchor = target.partition("#")
        file = REPO / path
        assert file.exists(), target
        if file.is_relative_to(DOCS) and file.suffix == ".md":
            page = built_page(site, file)
            assert page.is_file(), target
            if anchor:
                assert anchor in ids_of(page), target


def test_the_readme_is_a_front_page_with_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    assert "scripts/run     # installs into .venv, migrates, starts web + worker, prints the URL" in text
    assert "scripts/test    # installs into .venv" in text
    assert "mkdocs serve" in text
    assert "not for clinical use" in text
    assert "ml/MODEL_CARD.md" in text


# --- the commands and paths the pages name ------------------------------------------------

def command_lines():
    """Each shell line of the fenced code blocks and inline code spans, continuations joined."""
    for file in MARKDOWN:
        blocks, prose, fence = [], [], None
        for line in file.read_text().splitlines():
            if line.strip().startswith("```"):
                if fence is None:
                    fence = [] if line.strip() in ("```", "```bash", "```sh", "```console") else False
                else:
                    if fence is not False:
                        blocks.append("\n".join(fence))
                    fence = None
            elif fence is None:
                prose.append(line)
            elif fence is not False:
                fence.append(line)
        blocks += re.findall(r"`([^`\n]+)`", "\n".join(prose))
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                yield file, line.split(" #")[0]


def options(words):
    """The long options among a command's words, up to the next shell operator."""
    for word in words:
        if word in ("|", "&&", ";", ">", "2>&1") or word.startswith(("$(", "|")):
            return
        if word.startswith("--") and len(word) > 2:
            yield word.split("=")[0]


def test_every_management_command_in_the_docs_exists_with_its_options():
    from django.core.management import get_commands, load_command_class

    commands = get_commands()
    checked = set()
    for file, line in command_lines():
        for match in re.finditer(r"manage\.py\s+([a-z_]+)(.*)", line):
            name, rest = match.groups()
            assert name in commands, f"{file.name}: manage.py {name}"
            parser = load_command_class(commands[name], name).create_parser("manage.py", name)
            known = {option for action in parser._actions for option in action.option_strings}
            for option in options(rest.split()):
                assert option in known, f"{file.name}: manage.py {name} {option}"
            checked.add(name)
    assert {"create_api_token", "add_dicom_node", "dicom_listener", "export_feedback"} <= checked


def source_of(module: str) -> str | None:
    base = REPO / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.is_file():
            return "\n".join(p.read_text() for p in candidate.parent.glob("*.py")) \
                if candidate.name == "__main__.py" else candidate.read_text()
    return None


def test_every_python_module_and_bench_script_in_the_docs_exists_with_its_options():
    checked = set()
    for file, line in command_lines():
        for match in re.finditer(r"-m\s+((?:ml|triage|bench)\.[\w.]+)(.*)", line):
            module, rest = match.groups()
            source = source_of(module)
            assert source is not None, f"{file.name}: python -m {module}"
            helpers = "\n".join(p.read_text() for p in (REPO / module.split(".")[0]).rglob("*.py"))
            for option in options(rest.split()):
                known = f'"{option}"' in source or f'"{option}"' in helpers
                assert known, f"{file.name}: python -m {module} {option}"
            checked.add(module)
        for match in re.finditer(r"(bench/\w+\.py)(.*)", line):
            script, rest = match.groups()
            path = REPO / script
            assert path.is_file(), f"{file.name}: {script}"
            source = path.read_text() + "\n".join(p.read_text() for p in (REPO / "tests" / "support").glob("*.py"))
            for option in options(rest.split()):
                known = f'"{option}"' in source
                assert known, f"{file.name}: {script} {option}"
            checked.add(script)
    assert {"ml.evaluate", "ml.train", "ml.cache", "triage.client", "bench/pipeline_latency.py"} <= checked


REPO_PATH = re.compile(r"`((?:webapp|ml|deploy|bench|tests|scripts|workers|triage|requirements|docs)/[^`\s]*)`")


def test_every_repository_path_the_pages_name_exists():
    missing = []
    for file in MARKDOWN:
        for path in REPO_PATH.findall(file.read_text()):
            path = path.split("::")[0].rstrip(".,;:")
            if any(mark in path for mark in "<>*{}$") or "..." in path:
                continue  # a pattern or a placeholder, not a path
            if "/." in path:
                continue  # a git-ignored folder that scripts/test installs (tests/e2e/.axe/)
            if not (REPO / path).exists():
                missing.append(f"{file.relative_to(REPO)}: {path}")
    assert not missing, missing


def test_every_setting_the_code_reads_is_documented():
    """Each variable the settings and gunicorn's configuration read from the environment is
    named on some page (the configuration page, or the page of its feature)."""
    sources = [*(REPO / "webapp" / "settings").glob("*.py"), REPO / "deploy" / "gunicorn.conf.py"]
    names = set()
    for source in sources:
        text = source.read_text()
        names |= set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', text))
        names |= set(re.findall(r'environ(?:\.get)?[\[(]\s*"([A-Z][A-Z0-9_]+)"', text))
    assert {"DATABASE_URL", "METRICS_TOKEN", "GUNICORN_BIND"} <= names
    documented = "\n".join(page.read_text() for page in PAGES)
    assert sorted(name for name in names if f"`{name}`" not in documented) == []


def test_every_module_the_pages_name_exists():
    """``webapp.x.y``, ``ml.x``, ``workers.x`` in the pages: a module of the repository, or a
    function, class or name defined (or imported) in one."""
    missing = []
    for file in MARKDOWN:
        for dotted in set(re.findall(r"`((?:webapp|ml|workers|triage)(?:\.[a-z_][a-z0-9_]*)+)`",
                                     file.read_text())):
            parts = dotted.split(".")
            for end in range(len(parts), 0, -1):
                base = REPO.joinpath(*parts[:end])
                module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
                if module.is_file():
                    rest = parts[end:]
                    found = not rest or re.search(
                        rf"(?:def|class)\s+{rest[0]}\b|^{rest[0]}\s*=|import.*\b{rest[0]}\b",
                        module.read_text(), re.M)
                    break
            else:
                found = False
            if not found:
                missing.append(f"{file.relative_to(REPO)}: {dotted}")
    assert not missing, missing
