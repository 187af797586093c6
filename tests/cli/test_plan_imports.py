"""`plan --tags` and `check-config` load only what they use (issue 9).

The registry client (aiohttp), the GitHub client (gidgethub) and JWT signing
cost a tenth of a second to import and are for `serve` and for plans that scan
registries. Checked in a fresh interpreter through ``sys.modules``: what was
imported, not how long it took.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.runner import REPO
from tests.cli.test_cli import DEPLOYMENT, TAGS, make_repo, write_tags

SERVER_ONLY = ("aiohttp", "gidgethub", "jwt", "multidict", "yarl")
#: A plan over a tags file never waits on I/O, so it runs without an event loop.
EVENT_LOOP = ("asyncio",)
#: Only a repository's own template is rendered with Jinja2; the default texts are not.
UNTIL_RENDERED = ("jinja2", "markupsafe")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def _loaded(modules: set[str], package: str) -> bool:
    return package in modules or any(m.startswith(package + ".") for m in modules)


def test_importing_the_cli_loads_no_server_library():
    modules = _modules_after("import bot.cli")
    assert "bot.cli" in modules
    assert [p for p in SERVER_ONLY + UNTIL_RENDERED if _loaded(modules, p)] == []
    assert not _loaded(modules, "bot.registry.scanner")
    assert not _loaded(modules, "bot.github")


def test_plan_with_a_tags_file_loads_no_server_library(tmp_path):
    repo = make_repo(tmp_path / "repo")
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    argv = ["plan", str(repo), "--tags", str(tags), "--write"]
    modules = _modules_after(
        "import contextlib, io, bot.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    status = bot.cli.main({argv!r})\n"
        "assert status == 0 and 'wrote 1 file(s)' in out.getvalue(), out.getvalue()"
    )
    assert [p for p in SERVER_ONLY + EVENT_LOOP + UNTIL_RENDERED if _loaded(modules, p)] == []
    assert "podinfo:5.0.3" in (repo / "apps/podinfo.yaml").read_text()


def test_a_plan_that_changes_nothing_renders_no_template(tmp_path):
    current = DEPLOYMENT.replace("podinfo:4.0.6", "podinfo:5.0.3")
    repo = make_repo(tmp_path / "repo", files={"apps/podinfo.yaml": current})
    unchanged = {"ghcr.io/stefanprodan/podinfo": ["5.0.3"], "nginx": ["1.25"]}
    tags = write_tags(tmp_path / "tags.json", unchanged)
    argv = ["plan", str(repo), "--tags", str(tags)]
    modules = _modules_after(
        "import contextlib, io, bot.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    status = bot.cli.main({argv!r})\n"
        "assert status == 0 and 'nothing to change' in out.getvalue(), out.getvalue()"
    )
    assert [p for p in SERVER_ONLY + UNTIL_RENDERED if _loaded(modules, p)] == []


def test_check_config_loads_no_server_library(tmp_path):
    repo = make_repo(tmp_path / "repo")
    modules = _modules_after(
        "import contextlib, io, bot.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert bot.cli.main(['check-config', {str(repo)!r}]) == 0"
    )
    assert [p for p in SERVER_ONLY + UNTIL_RENDERED if _loaded(modules, p)] == []


def test_a_plan_that_scans_registries_still_loads_the_registry_client(tmp_path):
    # The lazy import is where it is needed: without --tags the scanner is there.
    repo = make_repo(tmp_path / "repo")
    (repo / ".github/image-automation.yml").write_text(
        "version: 1\nimageUpdateAutomations:\n  - {name: apps, update: {path: ./apps}}\n"
    )
    modules = _modules_after(
        "import contextlib, io, bot.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert bot.cli.main(['plan', {str(repo)!r}]) == 0"
    )
    assert _loaded(modules, "aiohttp") and "bot.registry.scanner" in modules
