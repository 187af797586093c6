"""Digests from the real registry: media types, GET fallback, caching, refresh per scan."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.policy import PolicySpec, evaluate
from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner
from bot.registry.source import RegistryTagSource
from tests.registryharness.registries import Registry
from tests.registryharness.scanning import FakeClock, image_repository_config
from tests.registryharness.shim import Shim

pytestmark = pytest.mark.registry

MakeScanner = Callable[..., RegistryScanner]


@pytest.fixture
def shim(plain_registry: Registry) -> Shim:
    assert plain_registry.shim is not None
    plain_registry.shim.reset()
    return plain_registry.shim


@pytest.mark.parametrize(
    ("path", "tag"),
    [
        ("app/multi", "v1"),  # OCI index
        ("app/multi", "v2"),  # Docker manifest list
        ("app/multi", "oci-1.0"),  # OCI manifest
        ("app/semver", "2.0.0"),  # Docker v2 manifest
    ],
)
async def test_digest_by_head_for_every_media_type(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner, path: str, tag: str
) -> None:
    scanner = make_scanner()
    lookup = scanner.digest_lookup(image_repository_config(plain_registry.image(path)))
    assert await lookup(tag) == plain_registry.digests[f"{path}:{tag}"]
    assert (scanner.request_counts["manifest_head"], scanner.request_counts["manifest_get"]) == (
        1,
        0,
    )


async def test_manifest_list_gives_the_list_digest_not_the_amd64_child(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    digest = await make_scanner().digest_lookup(
        image_repository_config(plain_registry.image("app/multi"))
    )("v2")
    assert digest == plain_registry.digests["app/multi:v2"]
    assert digest != plain_registry.digests["app/multi:v2/amd64"]


@pytest.mark.parametrize("tag", ["v1", "v2"])
async def test_get_fallback_hashes_the_body_when_head_has_no_digest(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner, tag: str
) -> None:
    shim.inject("app/multi", "manifest", "no-digest")
    scanner = make_scanner()
    digest = await scanner.digest_lookup(
        image_repository_config(plain_registry.image("app/multi"))
    )(tag)
    assert digest == plain_registry.digests[f"app/multi:{tag}"]
    assert (scanner.request_counts["manifest_head"], scanner.request_counts["manifest_get"]) == (
        1,
        1,
    )


async def test_get_fallback_after_head_fails(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject("app/multi", "manifest", "500")
    scanner = make_scanner(retries=0)
    digest = await scanner.digest_lookup(
        image_repository_config(plain_registry.image("app/multi"))
    )("v1")
    assert digest == plain_registry.digests["app/multi:v1"]


async def test_get_fallback_verifies_the_header(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject("app/multi", "manifest", "no-digest", "wrong-digest")
    lookup = make_scanner().digest_lookup(
        image_repository_config(plain_registry.image("app/multi"))
    )
    with pytest.raises(RegistryError, match="does not match its Docker-Content-Digest"):
        await lookup("v1")


async def test_unknown_and_invalid_tags(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    scanner = make_scanner()
    lookup = scanner.digest_lookup(image_repository_config(plain_registry.image("app/semver")))
    with pytest.raises(RegistryError, match=r"app/semver: tag 'nope' not found \(HTTP 404\)"):
        await lookup("nope")
    with pytest.raises(RegistryError, match="'../x' is not a valid tag name"):
        await lookup("../x")
    assert scanner.request_counts["manifest_head"] == 1


async def test_latest_re_pointed_between_two_scans(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    pusher = plain_registry.pusher
    first = pusher.image("app/rolling", ["latest", "1.0"], salt="rolling-1")
    scanner = make_scanner()
    image_repository = image_repository_config(plain_registry.image("app/rolling"), interval=60.0)
    await scanner.scan(image_repository)
    assert await scanner.digest_lookup(image_repository, refresh=["latest"])("latest") == first

    second = pusher.image("app/rolling", ["latest", "2.0"], salt="rolling-2")
    clock.advance(30)  # within the interval: no scan, so no refresh either
    await scanner.scan(image_repository)
    assert await scanner.digest_lookup(image_repository, refresh=["latest"])("latest") == first
    clock.advance(31)
    assert "2.0" in (await scanner.scan(image_repository)).tags
    lookup = scanner.digest_lookup(image_repository, refresh=["latest"])
    assert await lookup("latest") == second
    assert await lookup("latest") == second
    assert await lookup("1.0") == first  # not refreshed: cached
    assert scanner.request_counts["manifest_head"] == 3  # latest twice, 1.0 once


async def test_rolling_and_alias_cost_one_head_plus_new_tags_after_warm_up(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    pusher = plain_registry.pusher
    for i in range(5):
        pusher.image("app/alias", [f"sha-{i}"], salt=f"alias-{i}")
    pusher.image("app/alias", ["latest", "sha-5"], salt="alias-5")
    scanner = make_scanner()
    image_repository = image_repository_config(plain_registry.image("app/alias"), interval=60.0)
    source = RegistryTagSource(scanner, github_repository=None)
    alias = PolicySpec(kind="alphabetical", alias_of="latest", digest_reflection="Always")
    rolling = PolicySpec(kind="rolling", rolling_tag="latest")

    async def evaluate_all() -> tuple[str, str]:
        tags = await source.tags(image_repository)
        by_alias = await evaluate(
            alias,
            image_repository.image,
            tags,
            digest_of=source.digest_lookup(image_repository, refresh=["latest"]),
        )
        by_rolling = await evaluate(
            rolling,
            image_repository.image,
            tags,
            digest_of=source.digest_lookup(image_repository, refresh=["latest"]),
        )
        assert by_rolling.digest == by_alias.digest
        return by_alias.tag, by_alias.digest

    assert (await evaluate_all())[0] == "sha-5"
    heads = scanner.request_counts["manifest_head"]
    new_digest = pusher.image("app/alias", ["latest", "sha-6"], salt="alias-6")
    clock.advance(61)
    assert await evaluate_all() == ("sha-6", new_digest)
    # One HEAD for `latest`, one for the new candidate, shared by both policies.
    assert scanner.request_counts["manifest_head"] - heads == 2
    assert scanner.request_counts["manifest_get"] == 0
    heads = scanner.request_counts["manifest_head"]
    clock.advance(61)
    await evaluate_all()
    assert scanner.request_counts["manifest_head"] - heads == 1  # nothing new: only `latest`


async def test_source_keeps_last_good_tags_and_raises_without_them(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    scanner = make_scanner(retries=0)
    source = RegistryTagSource(scanner, github_repository="org/a")
    image_repository = image_repository_config(plain_registry.image("app/semver"), interval=60.0)
    good = await source.tags(image_repository)
    clock.advance(61)
    shim.inject("app/semver", "tags", "500")
    assert await source.tags(image_repository) == good
    missing = image_repository_config(plain_registry.image("app/none"))
    with pytest.raises(RegistryError, match="HTTP 404"):
        await source.tags(missing)


async def test_concurrent_lookups_of_one_digest_share_one_request(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    scanner = make_scanner()
    image_repositories = [
        image_repository_config(plain_registry.image("app/multi"), name=f"r{i}") for i in range(50)
    ]
    digests = await asyncio.gather(
        *(
            scanner.digest_lookup(r, github_repository=f"org/r{i}")("v1")
            for i, r in enumerate(image_repositories)
        )
    )
    assert set(digests) == {plain_registry.digests["app/multi:v1"]}
    assert scanner.request_counts["manifest_head"] == 1
