"""Faults injected at the shim: each is a clear RegistryError; the scanner keeps the last good result."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable

import pytest

from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner
from tests.registryharness.registries import Registry
from tests.registryharness.registry_proc import free_port
from tests.registryharness.scanning import FakeClock, image_repository_config
from tests.registryharness.shim import Shim

pytestmark = pytest.mark.registry

MakeScanner = Callable[..., RegistryScanner]
IMAGE_PATH = "app/semver"
GOOD_TAGS = ["latest", "2.0.0-rc1", "2.0.0", "1.2.0", "1.1.0", "1.0.0"]


@pytest.fixture
def shim(plain_registry: Registry) -> Shim:
    assert plain_registry.shim is not None
    plain_registry.shim.reset()
    return plain_registry.shim


async def scan_error(scanner: RegistryScanner, image: str, **fields: object) -> str:
    with pytest.raises(RegistryError) as info:
        await scanner.scan(image_repository_config(image, **fields))
    message = str(info.value)
    assert message.startswith(image + ":"), message  # names the image
    return message


async def test_429_retry_after_is_honoured(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "429:1")
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(plain_registry.image(IMAGE_PATH)))
    assert result.tags == GOOD_TAGS
    assert scanner.request_counts["tags"] == 2


async def test_429_with_too_long_retry_after_fails_at_once(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "429:3600")
    scanner = make_scanner()
    message = await scan_error(scanner, plain_registry.image(IMAGE_PATH))
    assert "rate limited by the registry (HTTP 429)" in message
    assert "wait 3600s" in message
    assert scanner.request_counts["tags"] == 1


def http_date(offset: float) -> str:
    """A Retry-After HTTP date ``offset`` seconds from now (the client reads the real time)."""
    return email.utils.formatdate(time.time() + offset, usegmt=True)


async def test_429_retry_after_http_date_is_honoured(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", f"429:{http_date(-60)}")  # already past: retry at once
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(plain_registry.image(IMAGE_PATH)))
    assert result.tags == GOOD_TAGS
    assert scanner.request_counts["tags"] == 2


async def test_429_with_too_late_retry_after_http_date_fails_at_once(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", f"429:{http_date(3600)}")
    scanner = make_scanner()
    message = await scan_error(scanner, plain_registry.image(IMAGE_PATH))
    assert "rate limited by the registry (HTTP 429)" in message
    assert re.search(r"the registry asks to wait 3[56]\d\d(\.\d+)?s", message), message
    assert scanner.request_counts["tags"] == 1


async def test_5xx_is_retried_with_backoff(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "500", "503")
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(plain_registry.image(IMAGE_PATH)))
    assert result.tags == GOOD_TAGS
    assert scanner.request_counts["tags"] == 3


async def test_5xx_retries_are_bounded(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", *["500"] * 10)
    scanner = make_scanner(retries=2)
    message = await scan_error(scanner, plain_registry.image(IMAGE_PATH))
    assert "listing tags failed with HTTP 500" in message
    assert "injected 500" in message  # the registry's own error message
    assert scanner.request_counts["tags"] == 3


async def test_malformed_json(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "malformed")
    message = await scan_error(make_scanner(), plain_registry.image(IMAGE_PATH))
    assert "malformed JSON" in message


async def test_oversized_body_is_refused(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "oversized:200000")
    message = await scan_error(make_scanner(max_page_bytes=65536), plain_registry.image(IMAGE_PATH))
    assert "larger than 65536 bytes" in message


async def test_slow_registry_times_out(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "slow:3")
    message = await scan_error(make_scanner(), plain_registry.image(IMAGE_PATH), timeout=0.3)
    assert "the registry did not answer within 0.3s" in message


async def test_scanner_timeout_applies_when_the_repository_has_none(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "slow:3")
    message = await scan_error(make_scanner(timeout=0.3), plain_registry.image(IMAGE_PATH))
    assert "did not answer within 0.3s" in message


async def test_next_page_on_another_host_is_refused(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "link-other-host")
    scanner = make_scanner()
    message = await scan_error(scanner, plain_registry.image(IMAGE_PATH))
    assert "refusing to follow the tag list's next page to another host (other.invalid)" in message
    assert scanner.request_counts["tags"] == 1


async def test_repeated_page_stops_pagination(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "repeat-link")
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(plain_registry.image(IMAGE_PATH)))
    assert result.tags == GOOD_TAGS
    assert scanner.request_counts["tags"] == 1


async def test_repeated_page_content_stops_pagination(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    # A registry that ignores `last` answers the same page for every (new) Link.
    shim.page_limit, shim.ignore_last = 10, True
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(plain_registry.image("app/paged")))
    assert sorted(result.tags) == [f"p{i:02d}" for i in range(10)]
    assert scanner.request_counts["tags"] == 2


async def test_null_tags_is_an_empty_list(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "null-tags")
    result = await make_scanner().scan(image_repository_config(plain_registry.image(IMAGE_PATH)))
    assert (result.tags, result.error) == ([], None)


async def test_invalid_tag_names_are_dropped(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner
) -> None:
    shim.inject(IMAGE_PATH, "tags", "junk-tags")
    result = await make_scanner().scan(image_repository_config(plain_registry.image(IMAGE_PATH)))
    assert result.tags == GOOD_TAGS


async def test_last_good_result_stays_in_use(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    scanner = make_scanner(retries=0, failure_backoff=30.0)
    image_repository = image_repository_config(plain_registry.image(IMAGE_PATH), interval=60.0)
    good = await scanner.scan(image_repository)
    clock.advance(61)
    shim.inject(IMAGE_PATH, "tags", "500", "malformed")
    stale = await scanner.scan(image_repository)
    assert stale.stale and stale.tags == good.tags and stale.scanned_at == good.scanned_at
    assert stale.error is not None and "HTTP 500" in stale.error
    # Within the failure back-off: no request, same answer.
    clock.advance(10)
    assert (await scanner.scan(image_repository)).error == stale.error
    assert scanner.request_counts["tags"] == 2
    # Forced: the next fault shows, still stale.
    forced = await scanner.scan(image_repository, force=True)
    assert forced.stale and "malformed JSON" in (forced.error or "")
    # Recovered after the back-off.
    clock.advance(31)
    recovered = await scanner.scan(image_repository)
    assert (recovered.stale, recovered.error, recovered.scanned_at) == (False, None, clock.now)


async def test_failure_without_a_good_result_raises_each_time(
    plain_registry: Registry, shim: Shim, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    scanner = make_scanner(retries=0)
    image_repository = image_repository_config(plain_registry.image(IMAGE_PATH))
    shim.inject(IMAGE_PATH, "tags", "malformed")
    for _ in range(2):  # the second comes from the failure back-off, no request
        with pytest.raises(RegistryError, match="malformed JSON"):
            await scanner.scan(image_repository)
    assert scanner.request_counts["tags"] == 1


async def test_dns_error(make_scanner: MakeScanner) -> None:
    message = await scan_error(make_scanner(timeout=5.0), "no-such-host.invalid/app/x")
    assert "cannot resolve host no-such-host.invalid" in message


async def test_connection_refused(make_scanner: MakeScanner) -> None:
    image = f"127.0.0.1:{free_port()}/app/x"
    message = await scan_error(make_scanner(), image)
    assert "cannot connect to 127.0.0.1" in message
