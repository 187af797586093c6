"""What an image says about itself (issue 12 §1, §4), read from the real registry: the
manifest's annotations, else the config's labels, and its created time; once per digest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bot.registry.scanner import RegistryScanner
from tests.registryharness.push import OCI_INDEX, OCI_MANIFEST
from tests.registryharness.registries import Registry
from tests.registryharness.scanning import image_repository_config

MakeScanner = Callable[..., RegistryScanner]
OCI = "org.opencontainers.image."
SOURCE = "https://github.com/octo-org/podinfo"


async def test_annotations_of_the_manifest_are_read_and_the_config_is_not_asked(
    plain_registry: Registry, make_scanner: MakeScanner
):
    path = "meta/annotated"
    plain_registry.pusher.image(path, "1.0.0", salt="annotated", media_type=OCI_MANIFEST,
                                annotations={OCI + "source": SOURCE, OCI + "revision": "abc123",
                                             OCI + "created": "2026-11-20T10:00:00Z"})  # fmt: skip
    scanner = make_scanner()
    lookup = scanner.metadata_lookup(image_repository_config(plain_registry.image(path)))
    metadata = await lookup("1.0.0")
    assert metadata.value("source") == SOURCE and metadata.value("revision") == "abc123"
    assert metadata.created == datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp()
    assert scanner.request_counts["blob_get"] == 0  # the annotations said it all
    gets = scanner.request_counts["manifest_get"]
    assert await lookup("1.0.0") == metadata
    assert scanner.request_counts["manifest_get"] == gets  # cached by digest


async def test_labels_of_the_config_when_the_manifest_has_no_annotations(
    plain_registry: Registry, make_scanner: MakeScanner
):
    path = "meta/labelled"
    plain_registry.pusher.image(path, "2.0.0", salt="labelled",
                                labels={"org.label-schema.vcs-url": SOURCE,
                                        "org.label-schema.vcs-ref": "def456"},
                                created="2026-11-01T00:00:00.123456789Z")  # fmt: skip
    scanner = make_scanner()
    metadata = await scanner.metadata_lookup(image_repository_config(plain_registry.image(path)))(
        "2.0.0"
    )
    assert metadata.value("source") == SOURCE and metadata.value("revision") == "def456"
    assert int(metadata.created) == 1_793_491_200
    assert scanner.request_counts["blob_get"] == 1


async def test_a_multi_arch_index_is_read_through_its_amd64_manifest(
    plain_registry: Registry, make_scanner: MakeScanner
):
    path = "meta/multi"
    plain_registry.pusher.multi_arch(path, "3.0.0", salt="multi", media_type=OCI_INDEX,
                                     described={arch: {"labels": {OCI + "title": arch}}
                                                for arch in ("amd64", "arm64")})  # fmt: skip
    metadata = await make_scanner().metadata_lookup(
        image_repository_config(plain_registry.image(path))
    )("3.0.0")
    assert metadata.value("title") == "amd64"
    assert "salt" not in metadata.labels  # only the keys the bot reads are kept


async def test_a_missing_tag_is_no_metadata_not_an_error(
    plain_registry: Registry, make_scanner: MakeScanner
):
    lookup = make_scanner().metadata_lookup(image_repository_config(plain_registry.image("meta/x")))
    assert await lookup("9.9.9") is None
