"""Issue 8 §2: what a repository makes `serve` contact goes through the address policy.

The SSRF tests themselves bind and connect to link-local, private, CGNAT and
ULA addresses, so they run in a network namespace with only loopback, where
nothing can leave the machine: this file starts them there (tests/netns, with
their own /etc/hosts) and checks that every one of them ran and passed. The
rest runs here, on loopback only: `plan` is not under the policy, and a bad
``REGISTRY_ALLOWED_ADDRESSES`` stops `serve` at start-up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from bot.config import CONFIG_PATH
from tests.cli.runner import run_bot
from tests.datapaths import REPO as CHECKOUT
from tests.e2e.served import Served, run_serve
from tests.manifests import POLICY, deployment, podinfo_config
from tests.netns.hostile import NETNS_VARIABLE, hosts_file_text, namespace_command
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import free_port, start_registry

pytestmark = pytest.mark.e2e

#: tests/netns/test_ssrf_netns.py: the control, the hostile registries, two allowed ones.
INNER_TESTS = 4


def test_the_ssrf_tests_pass_in_a_loopback_only_network_namespace(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("the SSRF tests need root, unshare and ip (util-linux, iproute2)")
    hosts = tmp_path / "hosts"
    hosts.write_text(hosts_file_text())
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/netns"]
    result = subprocess.run(
        namespace_command(hosts, argv),
        cwd=CHECKOUT,
        env={**os.environ, NETNS_VARIABLE: "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    summary = output.strip().splitlines()[-1]
    assert re.fullmatch(rf"{INNER_TESTS} passed in [0-9.]+s(?: \([0-9:]+\))?", summary), output[
        -8000:
    ]


def test_the_netns_tests_are_not_collected_outside_the_namespace():
    """Not skipped, not run: they do not exist for a normal run."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", "tests/netns"],
        cwd=CHECKOUT,
        env={k: v for k, v in os.environ.items() if k != NETNS_VARIABLE},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 5, result.stdout + result.stderr  # no tests collected
    assert "test_ssrf_netns" not in result.stdout


def test_plan_is_not_under_the_policy_and_reads_a_localhost_registry(tmp_path):
    registry = start_registry()
    try:
        Pusher(registry.host).image("team/app", ["5.0.0", "5.0.3"], salt="ssrf-plan")
        image = f"localhost:{registry.port}/team/app"
        checkout = tmp_path / "repo"
        (checkout / "deploy").mkdir(parents=True)
        (checkout / CONFIG_PATH).parent.mkdir(parents=True)
        (checkout / CONFIG_PATH).write_text(
            podinfo_config(image=image, update_path="./deploy", labels=())
        )
        (checkout / "deploy/app.yaml").write_bytes(deployment("5.0.0", image=image))
        # Even a value serve would refuse to start with: plan does not read it.
        proc = run_bot("plan", checkout, "--json", env={"REGISTRY_ALLOWED_ADDRESSES": "not a host"})
    finally:
        registry.stop()
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["policyErrors"] == {}
    assert plan["observedPolicies"][POLICY]["tag"] == "5.0.3"


@pytest.mark.parametrize("value", ["10.0.0.1/8", "registry.internal:99999", "127.1"])
def test_a_bad_allowed_addresses_entry_stops_serve_at_start_up(
    tmp_path, github_sim, app_key, value
):
    env = Served(tmp_path, github_sim, app_key).env
    env["PORT"] = str(free_port())
    env["REGISTRY_ALLOWED_ADDRESSES"] = f"registry.ok, {value}"
    result = run_serve(env)
    assert result.returncode == 2, result.stderr
    assert f"REGISTRY_ALLOWED_ADDRESSES: entry {value!r}" in result.stderr
    assert "Traceback" not in result.stderr
