"""examples/local-registry/demo.sh, as a new user runs it: from a fresh shell (issue 11 §5).

It must exit 0, print the plan, and leave nothing behind: no registry process, no
temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.datapaths import REPO

DEMO = REPO / "examples/local-registry/demo.sh"


def test_the_local_registry_demo_exits_0_and_cleans_up(tmp_path):
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is missing: apt-get install docker-registry")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # A fresh shell: no virtualenv active, nothing but a plain PATH.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path),
           "TMPDIR": str(scratch)}  # fmt: skip
    result = subprocess.run(
        ["bash", str(DEMO)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1:5000/demo/podinfo:5.0.3" in result.stdout
    assert list(scratch.iterdir()) == []  # its temporary directory is gone
    registries = subprocess.run(["pgrep", "-f", f"docker-registry serve {scratch}"], check=False)
    assert registries.returncode == 1  # no registry left running
    assert os.path.exists(REPO / ".venv/bin/python")
