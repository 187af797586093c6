"""Scanning the real registry: tags, exclusions, intervals, sharing, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.policy import flux_order
from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner
from tests.registryharness.registries import SEMVER_TAGS, TENK_TAGS, Registry
from tests.registryharness.scanning import FakeClock, image_repository_config

pytestmark = pytest.mark.registry

MakeScanner = Callable[..., RegistryScanner]


@pytest.fixture(autouse=True)
def _reset_shim(plain_registry: Registry) -> None:
    assert plain_registry.shim is not None
    plain_registry.shim.reset()


async def test_scan_lists_tags_in_flux_order_after_default_exclusions(
    plain_registry: Registry, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    scanner = make_scanner()
    image_repository = image_repository_config(plain_registry.image("app/semver"))
    result = await scanner.scan(image_repository)
    expected = flux_order(t for t in SEMVER_TAGS if not t.endswith(".sig"))
    assert result.tags == expected
    assert result.image == image_repository.image
    assert result.canonical == plain_registry.image("app/semver")
    assert (result.error, result.stale, result.scanned_at) == (None, False, clock.now)
    assert scanner.request_counts["tags"] == 1


async def test_custom_exclusion_list_replaces_the_default(
    plain_registry: Registry, make_scanner: MakeScanner
) -> None:
    scanner = make_scanner()
    image_repository = image_repository_config(
        plain_registry.image("app/semver"), exclusion_list=("^latest$", "-rc")
    )
    result = await scanner.scan(image_repository)
    assert result.tags == ["sha256-abc.sig", "2.0.0", "1.2.0", "1.1.0", "1.0.0"]


async def test_invalid_exclusion_regex_is_a_clear_error(
    plain_registry: Registry, make_scanner: MakeScanner
) -> None:
    image_repository = image_repository_config(
        plain_registry.image("app/semver"), exclusion_list=("(unclosed",)
    )
    with pytest.raises(RegistryError, match=r"app/semver: invalid exclusionList"):
        await make_scanner().scan(image_repository)


async def test_interval_serves_cache_then_rescans(
    plain_registry: Registry, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    scanner = make_scanner()
    image_repository = image_repository_config(plain_registry.image("app/semver"), interval=60.0)
    first = await scanner.scan(image_repository)
    clock.advance(59)
    assert (await scanner.scan(image_repository)).scanned_at == first.scanned_at
    assert scanner.request_counts["tags"] == 1
    await scanner.scan(image_repository, force=True)
    assert scanner.request_counts["tags"] == 2
    clock.advance(60)
    later = await scanner.scan(image_repository)
    assert scanner.request_counts["tags"] == 3
    assert later.scanned_at == clock.now


async def test_200_repositories_with_the_same_image_make_one_scan(
    plain_registry: Registry, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    scanner = make_scanner()
    image_repositories = [
        image_repository_config(plain_registry.image("app/semver"), name=f"r{i}", interval=300.0)
        for i in range(200)
    ]
    results = await asyncio.gather(
        *(scanner.scan(r, github_repository=f"org/r{i}") for i, r in enumerate(image_repositories))
    )
    results += [await scanner.scan(r) for r in image_repositories]
    assert scanner.request_counts["tags"] == 1
    assert all(r.tags == results[0].tags for r in results)
    clock.advance(300)
    await asyncio.gather(*(scanner.scan(r) for r in image_repositories))
    assert scanner.request_counts["tags"] == 2  # one scan per interval in total


async def test_unknown_repository_is_a_clear_error_without_cache(
    plain_registry: Registry, make_scanner: MakeScanner
) -> None:
    image_repository = image_repository_config(plain_registry.image("does/not-exist"))
    with pytest.raises(RegistryError) as info:
        await make_scanner().scan(image_repository)
    message = str(info.value)
    assert message.startswith(image_repository.image)
    assert "HTTP 404" in message and "NAME_UNKNOWN" in message
    assert "check the image name" in message


@pytest.mark.parametrize(("page_limit", "absolute"), [(1, False), (7, True)])
async def test_pagination_small_pages(
    plain_registry: Registry,
    make_scanner: MakeScanner,
    page_limit: int,
    absolute: bool,
) -> None:
    shim = plain_registry.shim
    assert shim is not None
    shim.page_limit, shim.absolute_links = page_limit, absolute
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(plain_registry.image("app/paged")))
    assert result.tags == flux_order(f"p{i:02d}" for i in range(30))
    assert scanner.request_counts["tags"] == -(-30 // page_limit)
    first = next(path for _method, path, _auth, _host in shim.log if "/tags/list" in path)
    assert first.endswith("/tags/list?n=1000")


@pytest.mark.parametrize("page_limit", [100, 1000, None])
async def test_ten_thousand_tags(
    plain_registry: Registry, make_scanner: MakeScanner, page_limit: int | None
) -> None:
    shim = plain_registry.shim
    assert shim is not None
    shim.page_limit = page_limit
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(plain_registry.image("bench/tenk")))
    assert len(result.tags) == len(TENK_TAGS) + 1
    assert result.tags == flux_order([*TENK_TAGS, "latest"])
    pages = -(-10_001 // min(page_limit or 1000, 1000))
    assert scanner.request_counts["tags"] == pages


async def test_tag_cap_is_a_clear_error(
    plain_registry: Registry, make_scanner: MakeScanner
) -> None:
    scanner = make_scanner(max_tags=5_000)
    with pytest.raises(RegistryError, match="more than 5000 tags"):
        await scanner.scan(image_repository_config(plain_registry.image("bench/tenk")))


async def test_a_push_event_forces_one_scan_and_a_failed_one_still_backs_off(
    plain_registry: Registry, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    """`pushed_at` (a registry's push notification) beats the interval once; if that scan
    fails, the failure's backoff holds, not one scan per run (issue 12 §3)."""
    import time

    assert plain_registry.shim is not None
    plain_registry.shim.reset()
    scanner = make_scanner()
    image_repository = image_repository_config(plain_registry.image("app/semver"), interval=3600)
    await scanner.scan(image_repository)
    pushed = time.time()
    time.sleep(0.01)  # the forced scan starts after the push
    await scanner.scan(image_repository, pushed_at=pushed)
    await scanner.scan(image_repository, pushed_at=pushed)
    assert scanner.request_counts["tags"] == 2  # one more, not one per run

    plain_registry.shim.inject("app/semver", "tags", "500", "500", "500", "500")
    later = time.time()
    time.sleep(0.01)
    result = await scanner.scan(image_repository, pushed_at=later)
    assert result.stale and scanner.request_counts["tags"] >= 3
    counted = scanner.request_counts["tags"]
    for _ in range(3):
        await scanner.scan(image_repository, pushed_at=later)
    assert scanner.request_counts["tags"] == counted
    plain_registry.shim.reset()
