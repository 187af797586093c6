"""A one-shot `plan` against a registry that does not answer says so plainly (issue 11 §5):
there is no earlier scan whose tags could stand in, and no message may suggest one."""

from __future__ import annotations

import socket

from tests.cli.runner import run_bot
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


def test_a_registry_that_never_answers(tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        repo = make_repo(
            tmp_path / "repo",
            config=config(port),
            files={"apps/app.yaml": MANIFEST.format(port=port)},
        )
        proc = run_bot("plan", repo, env={"REGISTRY_CREDENTIALS": ""})
    assert proc.returncode == 1, proc.stderr
    assert f"127.0.0.1:{port}/team/app: the registry did not answer within 1s" in proc.stderr
    assert "is it up?" in proc.stderr
    assert "last good" not in proc.stderr + proc.stdout


def test_a_registry_that_refuses_connections(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        repo = make_repo(
            tmp_path / "repo",
            config=config(port),
            files={"apps/app.yaml": MANIFEST.format(port=port)},
        )
        proc = run_bot("plan", repo)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot connect to 127.0.0.1:{port}" in proc.stderr and "is it up?" in proc.stderr
    assert "last good" not in proc.stderr + proc.stdout
