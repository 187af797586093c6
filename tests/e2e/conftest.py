"""What the end-to-end tests share: a real registry, a fresh image per test, the bot
as a `python -m bot serve` process, and the repository they install it on."""

from __future__ import annotations

import re

import pytest

from tests.e2e.served import Served, serving
from tests.manifests import deployment, podinfo_config
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import start_registry

REPOSITORY = "octo-org/app"


@pytest.fixture(scope="module")
def registry():
    process = start_registry()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def image(registry, request):
    """A fresh image per test, tagged 5.0.0 and 5.0.3; `image.push(tag)` adds one."""

    class Image(str):
        def push(self, *tags: str) -> None:
            pusher.image(path, list(tags), salt=f"{path}-{'-'.join(tags)}")

    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())
    path = f"team/{name[:60].strip('-')}"
    pusher = Pusher(registry.host)
    pusher.image(path, ["5.0.0", "5.0.3"], salt=path)
    return Image(f"{registry.host}/{path}")


@pytest.fixture
async def bot(tmp_path, github_sim, app_key):
    async with serving(tmp_path, github_sim, app_key) as served:
        yield served


def config(
    image: str, *, policies: str = "", git: str | None = None, path: str = "./deploy"
) -> str:
    """The podinfo config for `image`, due every second, over ``path``."""
    return podinfo_config(
        image=image, update_path=path, git=git, labels=(), interval="1s", more_policies=policies
    )


def manifest(image: str, tag: str) -> bytes:
    return deployment(tag, image=image)


def install(bot: Served, files: dict[str, bytes]) -> str:
    head = bot.sim.create_repository(REPOSITORY, files=files)
    bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])
    return head


def line_of(text: str, fragment: str) -> int:
    """The 1-based number of the first line of `text` holding `fragment`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)
