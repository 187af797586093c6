"""A one-shot `plan` against a registry that does not answer says so plainly (issue 11 §5):
there is no earlier scan whose tags could stand in, and no message may suggest one."""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys

from tests.cli.runner import REPO, run_bot
from tests.cli.test_cli import make_repo

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: 127.0.0.1:{port}/team/app:1.0.0 # {{"$imagepolicy": "flux-system:app"}}
"""


def config(port: int) -> str:
    return f"""\
version: 1
namespace: flux-system
imageRepositories:
  - name: app
    image: 127.0.0.1:{port}/team/app
    timeout: 1s
imagePolicies:
  - name: app
    imageRepositoryRef: app
    policy: {{semver: {{range: '>=1.0.0'}}}}
imageUpdateAutomations:
  - name: apps
    update: {{path: ./apps, strategy: Setters}}
"""


def repo_of(tmp_path, port: int):
    """A repository whose one image lives on 127.0.0.1:`port`."""
    return make_repo(
        tmp_path / "repo", config=config(port), files={"apps/app.yaml": MANIFEST.format(port=port)}
    )


def test_a_registry_that_never_answers(tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        repo = repo_of(tmp_path, port)
        proc = run_bot("plan", repo, env={"REGISTRY_CREDENTIALS": ""})
    assert proc.returncode == 1, proc.stderr
    assert f"127.0.0.1:{port}/team/app: the registry did not answer within 1s" in proc.stderr
    assert "is it up?" in proc.stderr
    assert "last good" not in proc.stderr + proc.stdout


def test_a_registry_that_refuses_connections(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        repo = repo_of(tmp_path, port)
        proc = run_bot("plan", repo)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot connect to 127.0.0.1:{port}" in proc.stderr and "is it up?" in proc.stderr
    assert "last good" not in proc.stderr + proc.stdout


def run_on_a_terminal(*args: object) -> tuple[int, str]:
    """`python -m bot ARGS` with stderr on a pseudo-terminal: (exit status, what it showed)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return process.wait(timeout=60), shown.decode()


def test_on_a_terminal_plan_shows_which_registry_it_waits_for(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        repo = repo_of(tmp_path, port)
        status, shown = run_on_a_terminal("plan", repo)
        piped = run_bot("plan", repo)
    assert status == 1
    assert f"\rscanning registries: 0/1 images, waiting for 127.0.0.1:{port}/team/app" in shown
    assert "\rscanning registries: 1/1 images" in shown
    # The line is wiped before the plan prints: the error starts on a clean line.
    assert shown.index("1/1 images") < shown.index("did not answer within 1s")
    assert "scanning registries" not in piped.stderr  # a pipe gets no progress line


def test_plan_logs_with_verbose_or_log_level(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        repo = repo_of(tmp_path, port)
        quiet = run_bot("plan", repo)
        verbose = run_bot("plan", "-v", repo)
        by_level = run_bot("plan", repo, env={"LOG_LEVEL": "debug", "LOG_FORMAT": "json"})
    assert " DEBUG " not in quiet.stderr
    assert " DEBUG " in verbose.stderr
    assert '"level": "debug"' in by_level.stderr
    bad = run_bot("plan", repo, env={"LOG_LEVEL": "info", "LOG_FORMAT": "xml"})
    assert bad.returncode == 2 and "LOG_FORMAT must be one of text, json" in bad.stderr
