"""Issue 8 §2 end to end, inside a loopback-only network namespace (see conftest.py).

`python -m bot serve` runs against the GitHub simulator; a repository's config
names registries on link-local, private, CGNAT, loopback, unspecified and ULA
addresses, as IP literals, as names resolving to them (one public-looking), by
default port, and behind an allowed registry that redirects to them or names
them as its token realm. The bot says for each image that the address is not
allowed, and a listener on every one of those addresses sees no connection.
Registries the operator allows still work.
"""

from __future__ import annotations

import json
import socket

import pytest

from bot.config import CONFIG_PATH
from bot.registry.addresses import AddressNotAllowed, AddressPolicy, registry_session
from tests.e2e.served import Served
from tests.manifests import deployment, podinfo_config
from tests.netns.hostile import (
    HOSTS,
    LEAK_TAG,
    LEAK_VERSION,
    Edge,
    realm,
    redirect,
)
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import start_registry

REPOSITORY = "octo-org/app"
VARIABLE = "REGISTRY_ALLOWED_ADDRESSES"


def _targets(port: int) -> list[str]:
    """Every hostile address and name, as http URLs on ``port``."""
    literals = ["169.254.169.254", "10.0.0.5", "172.16.0.1", "192.168.1.1", "100.64.0.1"]
    literals += ["127.0.0.1", "0.0.0.0", "[::1]", "[fd00::5]", "[::ffff:a9fe:a9fe]"]
    return [f"http://{host}:{port}/v2/" for host in [*literals, *HOSTS]]


async def test_the_namespace_is_what_the_tests_assume_and_the_listener_is_reachable(hostile):
    """Control: without the policy every hostile target reaches the listener; with it, none."""
    assert socket.getaddrinfo("metadata.evil.test", 80)[0][4][0] == "169.254.169.254"
    assert socket.getaddrinfo("registry.example.com", 80)[0][4][0] == "10.0.0.5"
    targets = [*_targets(hostile.port), "http://metadata.evil.test/v2/"]
    async with registry_session(None) as session:
        for url in targets:
            async with session.get(url) as response:
                assert LEAK_TAG in await response.text(), url
    reached = len(hostile.connections)
    assert reached == len(targets)
    async with registry_session(AddressPolicy()) as session:
        for url in [*targets, "https://metadata.evil.test/v2/"]:
            with pytest.raises(AddressNotAllowed):
                async with session.get(url):
                    pass
    assert len(hostile.connections) == reached


def _hostile_images(port: int, edge: str) -> dict[str, tuple[str, str, bool]]:
    """policy name -> (image, what the check run must say, insecure)."""
    h = port
    return {
        "link-local": (f"169.254.169.254:{h}/team/app", "it is a link-local address", True),
        "private-10": (f"10.0.0.5:{h}/team/app", "it is a private address", True),
        "private-172": (f"172.16.0.1:{h}/team/app", "it is a private address", True),
        "private-192": (f"192.168.1.1:{h}/team/app", "it is a private address", True),
        "cgnat": (f"100.64.0.1:{h}/team/app", "it is a CGNAT address", True),
        "loopback": (f"127.0.0.1:{h}/team/app", "it is a loopback address", True),
        "unspecified": (f"0.0.0.0:{h}/team/app", "it is an unspecified address", True),
        "loopback-v6": (f"[::1]:{h}/team/app", "it is a loopback address", True),
        "ula": (f"[fd00::5]:{h}/team/app", "it is a private address", True),
        "mapped": (f"[::ffff:a9fe:a9fe]:{h}/team/app", "an IPv4-mapped link-local address", True),
        "compatible": (f"[::a00:5]:{h}/team/app", "an IPv4-compatible private address", True),
        "nat64": (f"[64:ff9b::a00:5]:{h}/team/app", "it is a NAT64 private address", True),
        "metadata-name": (
            f"metadata.evil.test:{h}/team/app",
            "it resolves to a link-local address",
            True,
        ),
        "public-looking": (
            f"registry.example.com:{h}/team/app",
            "it resolves to a private address",
            True,
        ),
        "cgnat-name": (f"cgnat.evil.test:{h}/team/app", "it resolves to a CGNAT address", True),
        "ula-name": (f"ula.evil.test:{h}/team/app", "it resolves to a private address", True),
        "localhost": (f"localhost:{h}/team/app", "it resolves to a loopback address", True),
        "default-https": (
            "metadata.evil.test/team/app",
            "the registry metadata.evil.test:443",
            False,
        ),
        "default-http": ("169.254.169.254/team/app", "the registry 169.254.169.254:80", True),
        "redirect-ip": (
            f"{edge}/redirect/ip",
            f"the registry's redirect to 169.254.169.254:{h}",
            False,
        ),
        "redirect-name": (
            f"{edge}/redirect/name",
            f"the registry's redirect to registry.example.com:{h}",
            False,
        ),
        "redirect-mapped": (
            f"{edge}/redirect/mapped",
            f"the registry's redirect to [::ffff:a00:5]:{h}",
            False,
        ),
        "redirect-hex": (
            f"{edge}/redirect/hex",
            "an IPv4 address in a decimal, octal, hex or shortened spelling",
            False,
        ),
        "realm-ip": (f"{edge}/realm/ip", f"the token realm 10.0.0.5:{h}", False),
        "realm-name": (f"{edge}/realm/name", f"the token realm metadata.evil.test:{h}", False),
    }


#: Numeric IPv4 spellings: config errors at the image line, never contacted.
NUMERIC = ("2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "0xa9.254.169.254")


def _edge_routes(port: int) -> dict:
    tags = "/v2/team/app/tags/list"
    return {
        "redirect/ip": redirect(f"http://169.254.169.254:{port}{tags}"),
        "redirect/name": redirect(f"http://registry.example.com:{port}{tags}"),
        "redirect/mapped": redirect(f"http://[::ffff:a00:5]:{port}{tags}"),
        "redirect/hex": redirect(f"http://0xa9.0xfe.0xa9.0xfe:{port}{tags}"),
        "realm/ip": realm(f"http://10.0.0.5:{port}/token"),
        "realm/name": realm(f"http://metadata.evil.test:{port}/token"),
    }


def _config(images: dict[str, tuple[str, str, bool]], numeric: list[str]) -> str:
    lines = ["version: 1", "namespace: ssrf", "imageRepositories:"]
    for name, (image, _said, insecure) in images.items():
        lines += [f"  - name: repo-{name}", f"    image: '{image}'", "    timeout: 10s"]
        lines += ["    insecure: true"] if insecure else []
    for index, image in enumerate(numeric):
        lines += [f"  - name: numeric-{index}", f"    image: '{image}'", "    insecure: true"]
    lines.append("imagePolicies:")
    for name in images:
        lines += [
            f"  - name: {name}",
            f"    imageRepositoryRef: repo-{name}",
            "    policy: {semver: {range: '>=1.0.0'}}",
        ]
    lines += [
        "imageUpdateAutomations:",
        "  - name: ssrf",
        "    update: {path: ./deploy, strategy: Setters}",
    ]
    return "\n".join(lines) + "\n"


def _manifest(images: dict[str, tuple[str, str, bool]]) -> bytes:
    """A marker per policy: had any scan been read, a pull request would propose its tag."""
    lines = [
        f'{name}: "{image}:1.0.0" # {{"$imagepolicy": "ssrf:{name}"}}'
        for name, (image, _said, _insecure) in images.items()
    ]
    return ("\n".join(lines) + "\n").encode()


def _line(text: str, exact: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line == exact)


async def test_serve_refuses_every_hostile_address_and_never_connects(
    tmp_path, github_sim, app_key, hostile
):
    edge = await Edge(_edge_routes(hostile.port)).start()
    images = _hostile_images(hostile.port, edge.host)
    numeric = [f"{spelling}:{hostile.port}/team/app" for spelling in NUMERIC]
    text = _config(images, numeric)
    bot = Served(tmp_path, github_sim, app_key, extra_env={VARIABLE: edge.host})
    await bot.start()
    try:
        head = bot.sim.create_repository(
            REPOSITORY, files={CONFIG_PATH: text.encode(), "deploy/app.yaml": _manifest(images)}
        )
        bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])
        check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    finally:
        code = await bot.stop()
        await edge.close()
    assert code == 0, bot.text()[-4000:]

    by_line = {a["start_line"]: a for a in check["annotations"] if a["path"] == CONFIG_PATH}
    assert len(by_line) == len(check["annotations"]) == len(images) + len(numeric)
    for name, (image, said, _insecure) in images.items():
        annotation = by_line[_line(text, f"  - name: {name}")]
        message = annotation["message"]
        assert annotation["annotation_level"] == "failure", message
        assert message.startswith(f"{image}: not contacting "), message
        assert "its address is not allowed" in message and said in message, message
        assert f"allows it in {VARIABLE}" in message, message
    for image in numeric:
        annotation = by_line[_line(text, f"    image: '{image}'")]
        assert annotation["annotation_level"] == "failure"
        assert image in annotation["message"] and "is invalid" in annotation["message"]
        assert "a.b.c.d" in annotation["message"]

    # Nothing reached any hostile address, on any of the listener's ports.
    assert hostile.connections == []
    # The allowed edge was asked once per image behind it, and that is all.
    assert sorted(edge.requests) == sorted(
        f"/v2/{path}/tags/list" for path in _edge_routes(hostile.port)
    )
    assert bot.sim.pulls(REPOSITORY) == []
    assert bot.sim.branch_sha(REPOSITORY, "image-automation/ssrf") is None
    seen = json.dumps(bot.sim.check_runs(REPOSITORY)) + bot.text()
    assert LEAK_TAG not in seen and LEAK_VERSION not in seen


@pytest.fixture(scope="module")
def registry():
    process = start_registry()
    try:
        Pusher(process.host).image("team/app", ["5.0.0", "5.0.3"], salt="ssrf-allowed")
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize("allowed_by", ["allowed-addresses", "credentials-without-secret"])
async def test_a_loopback_registry_the_operator_allows_still_opens_a_pr(
    tmp_path, github_sim, app_key, hostile, registry, allowed_by
):
    """Allowed by ``REGISTRY_ALLOWED_ADDRESSES=127.0.0.1:<port>``, or by a credentials entry
    with only ``registry:``; loopback on another port stays refused."""
    if allowed_by == "allowed-addresses":
        env = {VARIABLE: registry.host}
    else:
        credentials = tmp_path / "registry-credentials.yml"
        credentials.write_text(f"local:\n  registry: {registry.host}\n")
        env = {VARIABLE: "", "REGISTRY_CREDENTIALS": str(credentials)}
    image = f"{registry.host}/team/app"
    neighbour = f"127.0.0.1:{hostile.port}/team/app"
    policies = "  - name: neighbour\n    imageRepositoryRef: neighbour-repo\n"
    policies += "    policy: {semver: {range: '>=1.0.0'}}\n"
    text = podinfo_config(
        image=image, update_path="./deploy", labels=(), more_policies=policies
    ).replace("imagePolicies:", f"  - name: neighbour-repo\n    image: {neighbour}\nimagePolicies:")
    bot = Served(tmp_path, github_sim, app_key, extra_env=env)
    await bot.start()
    try:
        head = bot.sim.create_repository(
            REPOSITORY,
            files={CONFIG_PATH: text.encode(), "deploy/app.yaml": deployment("5.0.0", image=image)},
        )
        bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])
        (pr,) = await bot.pull_opened(REPOSITORY)
        check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    finally:
        code = await bot.stop()
    assert code == 0, bot.text()[-4000:]
    assert f"{image}:5.0.0 -> {image}:5.0.3" in pr["body"]
    (annotation,) = [a for a in check["annotations"] if a["path"] == CONFIG_PATH]
    assert annotation["start_line"] == _line(text, "  - name: neighbour")
    assert annotation["message"].startswith(f"{neighbour}: not contacting the registry")
    assert "its address is not allowed: it is a loopback address" in annotation["message"]
    assert hostile.connections == []
