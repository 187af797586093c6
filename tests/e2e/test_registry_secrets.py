"""Registry credentials stay where they belong, through `python -m bot serve` (issue 8 §3, §7).

A hostile registry on 127.0.0.1 answers 401 naming a token realm on another
port, which the operator did not list in ``realms:``. The bot must refuse: the
check run names the image and says how the operator allows the realm, and the
password appears nowhere: not in the bot's log, not in any check run or pull
request, not at the realm (which receives nothing at all), not at the registry.
Credentials a repository may not use, or that do not exist, get one message
that names only what the repository wrote, without the credentials file's path.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from bot.config import CONFIG_PATH
from tests.e2e.conftest import line_of
from tests.e2e.served import Served
from tests.manifests import deployment, podinfo_config
from tests.registry.edges import Edge, challenge, secret_spellings

pytestmark = pytest.mark.e2e

REPOSITORY = "octo-org/app"
USER = "robot"
PASSWORD = "E2e-Realm-Pa55word-71b2"
SECRETS = secret_spellings(USER, PASSWORD)
PATH = "team/private"


async def test_a_hostile_realm_gets_no_credentials_and_check_runs_show_nothing_internal(
    tmp_path, github_sim, app_key
):
    async def token(request: web.Request) -> web.Response:
        return web.json_response({"token": "would-be-token", "expires_in": 300})

    realm = await Edge(token).start()

    async def registry_respond(request: web.Request) -> web.Response:
        return challenge(realm.url("/token"), f"repository:{PATH}:pull")

    registry = await Edge(registry_respond).start()
    credentials = tmp_path / "registry-credentials.yml"
    credentials.write_text(
        f"hostile:\n  registry: {registry.host}\n  username: {USER}\n"
        f"  password: {PASSWORD}\n  allowed: ['octo-org/*']\n"
        f"reserved:\n  registry: {registry.host}\n  username: {USER}\n"
        f"  password: {PASSWORD}\n  allowed: ['other-org/*']\n"
    )
    bot = Served(
        tmp_path,
        github_sim,
        app_key,
        extra_env={
            "REGISTRY_CREDENTIALS": str(credentials),
            # The registries here are on loopback, which the address policy refuses by default.
            "REGISTRY_ALLOWED_ADDRESSES": "127.0.0.1",
        },
    )
    image = f"{registry.host}/{PATH}"
    others = "".join(
        f"  - name: {name}\n    image: {registry.host}/team/{name}\n    credentials: {name}\n"
        for name in ("nope", "reserved")
    )
    policies = "".join(
        f"  - name: {name}\n    imageRepositoryRef: {name}\n    policy:\n"
        "      semver: {range: '>=1'}\n"
        for name in ("nope", "reserved")
    )
    text = podinfo_config(
        image=image,
        credentials="hostile",
        update_path="./deploy",
        labels=(),
        more_policies=policies,
    ).replace("imagePolicies:", f"{others}imagePolicies:", 1)
    await bot.start()
    try:
        head = bot.sim.create_repository(
            REPOSITORY,
            files={CONFIG_PATH: text.encode(), "deploy/app.yaml": deployment("5.0.0", image=image)},
        )
        bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])

        check = await bot.check_run(
            REPOSITORY, lambda c: c["head_sha"] == head and c["status"] == "completed"
        )
        await bot.log_line("registry credentials 'nope' asked by repository octo-org/app")
    finally:
        code = await bot.stop()
        await registry.stop()
        await realm.stop()
    log = bot.text()
    assert code == 0, log[-4000:]

    # The check run says what failed, at each policy, naming the image and the fix.
    by_line = {a["start_line"]: a["message"] for a in check["annotations"]}
    hostile = by_line[line_of(text, "imagePolicies:") + 1]  # the policy `- name: podinfo`
    assert (
        f"{image}: refusing to send credentials 'hostile' to the token server "
        f"http://127.0.0.1:{realm.port}: its host is not trusted for these credentials"
    ) in hostile
    assert f"add 127.0.0.1:{realm.port} to `realms:`" in hostile
    for name in ("nope", "reserved"):
        message = next(m for m in by_line.values() if f"credentials '{name}'" in m)
        assert (
            f"credentials '{name}' are not available to repository {REPOSITORY}; ask the "
            "operator of this bot to provide them"
        ) in message
    assert all(a["annotation_level"] == "failure" for a in check["annotations"])

    # Nothing internal and no secret in anything a repository can read.
    visible = json.dumps([bot.sim.check_runs(REPOSITORY), bot.sim.pulls(REPOSITORY)])
    assert str(credentials) not in visible and credentials.name not in visible
    assert "not defined" not in visible and "not allowed" not in visible
    for secret in SECRETS:
        assert secret not in visible
        assert secret not in log

    # The realm heard nothing at all; the registry never got an Authorization.
    assert realm.requests == []
    assert registry.requests, "the bot scanned the hostile registry"
    assert registry.authorizations() == []
    for seen in registry.requests:
        for secret in SECRETS:
            assert secret.encode() not in seen.raw()

    # The operator's log says which case, and where; the check run does not.
    assert f"are not defined in {credentials}" in log
    assert "registry credentials 'reserved' asked by repository octo-org/app are not allowed" in log
    # (The log may shorten URLs; the realm's host:port is in the advice all the same.)
    assert "not sending credentials 'hostile' to the token realm" in log
    assert f"add 127.0.0.1:{realm.port} to `realms:`" in log
