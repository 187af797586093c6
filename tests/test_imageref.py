"""Image reference parsing: distribution's grammar, Docker Hub rules, Flux's image checks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.imageref import (
    ImageRef,
    ImageRefError,
    canonical_name,
    default_scheme,
    parse_reference,
    parse_repository,
)

DIGEST = "sha256:" + "0cfbbec1e0bc971aa696c7747654e9cdde70d6d2bb79897a16ce1759593676ea"


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", None, None),
        ("alpine:3.19", "docker.io", "library/alpine", "3.19", None),
        ("docker.io/alpine", "docker.io", "library/alpine", None, None),
        ("docker.io/library/alpine", "docker.io", "library/alpine", None, None),
        ("index.docker.io/alpine", "docker.io", "library/alpine", None, None),
        ("stefanprodan/podinfo", "docker.io", "stefanprodan/podinfo", None, None),
        ("ghcr.io/stefanprodan/podinfo:5.0.3", "ghcr.io", "stefanprodan/podinfo", "5.0.3", None),
        ("localhost:5000/foo:bar", "localhost:5000", "foo", "bar", None),
        ("localhost:5000/nginx", "localhost:5000", "nginx", None, None),
        # Without a '/', "localhost:5000" is the Docker Hub image "localhost" tagged 5000.
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        ("localhost/foo", "localhost", "foo", None, None),
        ("[::1]:5000/x", "[::1]:5000", "x", None, None),
        ("[2001:db8::1]/a/b:c", "[2001:db8::1]", "a/b", "c", None),
        ("127.0.0.1:5055/curl/demo:v1", "127.0.0.1:5055", "curl/demo", "v1", None),
        (f"alpine:3.19@{DIGEST}", "docker.io", "library/alpine", "3.19", DIGEST),
        (f"ghcr.io/o/r@{DIGEST}", "ghcr.io", "o/r", None, DIGEST),
        (
            "a/b_c/d__e/f-g/h---i.j:_Foo.Bar-1",
            "docker.io",
            "a/b_c/d__e/f-g/h---i.j",
            "_Foo.Bar-1",
            None,
        ),
        # Newer distribution: an uppercase first component is a registry host.
        ("Registry/app", "Registry", "app", None, None),
    ],
)
def test_parse_reference_table(text, domain, path, tag, digest):
    assert parse_reference(text) == ImageRef(domain, path, tag, digest)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("ghcr.io/Org/App", "must be lowercase; write 'org/app'"),
        ("Alpine", "must be lowercase"),
        ("alpine:-bad", "tag '-bad'"),
        ("alpine:.bad", "tag '.bad'"),
        ("alpine:" + "a" * 129, "is invalid; a tag is 1-128"),
        ("alpine@sha256:abc", "digest 'sha256:abc'"),
        ("0" * 64, "64-character hexadecimal"),
        ("foo-/bar", "path component 'foo-'"),
        ("ghcr.io//x", "path component '(empty)'"),
        ("ghcr.io/x/", "path component '(empty)'"),
        ("-x.io/foo", "registry '-x.io'"),
        ("ghcr.io/" + "a" * 250, "the limit is 255"),
        ("alpine:", "tag ''"),
    ],
)
def test_parse_reference_rejects(text, fragment):
    with pytest.raises(ImageRefError) as err:
        parse_reference(text)
    assert fragment in str(err.value)


def test_tag_length_limit_is_128():
    assert parse_reference("alpine:" + "a" * 128).tag == "a" * 128
    with pytest.raises(ImageRefError):
        parse_reference("alpine:" + "a" * 129)


def test_name_length_counts_domain():
    # 255 characters in total for domain/path, as distribution's NameTotalLengthMax.
    path = "a" * (255 - len("ghcr.io/"))
    assert parse_reference(f"ghcr.io/{path}").path == path
    with pytest.raises(ImageRefError):
        parse_reference(f"ghcr.io/{path}a")


def test_str_and_properties():
    ref = parse_reference(f"alpine:3.19@{DIGEST}")
    assert str(ref) == f"docker.io/library/alpine:3.19@{DIGEST}"
    assert ref.api_host == "registry-1.docker.io"
    assert ref.canonical_name == "index.docker.io/library/alpine"
    local = parse_reference("localhost:5000/foo/bar")
    assert local.api_host == "localhost:5000"
    assert local.canonical_name == "localhost:5000/foo/bar"
    assert str(local) == "localhost:5000/foo/bar"


@pytest.mark.parametrize(
    ("image", "canonical"),
    [
        ("alpine", "index.docker.io/library/alpine"),
        ("docker.io/alpine", "index.docker.io/library/alpine"),
        ("docker.io/library/alpine", "index.docker.io/library/alpine"),
        ("index.docker.io/alpine", "index.docker.io/library/alpine"),
        ("stefanprodan/podinfo", "index.docker.io/stefanprodan/podinfo"),
        ("ghcr.io/stefanprodan/podinfo", "ghcr.io/stefanprodan/podinfo"),
        ("localhost:5000/foo/bar", "localhost:5000/foo/bar"),
        # Flux (go-containerregistry): "localhost" without a port is not a registry.
        ("localhost/foo", "index.docker.io/localhost/foo"),
        ("[::1]:5000/x", "[::1]:5000/x"),
    ],
)
def test_canonical_name_as_flux(image, canonical):
    assert canonical_name(image) == canonical
    assert canonical_name(canonical) == canonical


def test_parse_repository_has_no_tag_or_digest():
    ref = parse_repository("ghcr.io/stefanprodan/podinfo")
    assert ref == ImageRef("ghcr.io", "stefanprodan/podinfo")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            "https://ghcr.io/org/app",
            "image 'https://ghcr.io/org/app' should not include URL scheme; remove 'https://'",
        ),
        ("alpine:3.19", "image 'alpine:3.19' should not include a tag; remove ':3.19'"),
        (
            "localhost:5000/foo:bar",
            "image 'localhost:5000/foo:bar' should not include a tag; remove ':bar'",
        ),
        ("localhost:5000", "image 'localhost:5000' should not include a tag; remove ':5000'"),
        (
            f"ghcr.io/o/r@{DIGEST}",
            f"image 'ghcr.io/o/r@{DIGEST}' should not include a digest; remove '@{DIGEST}'",
        ),
    ],
)
def test_parse_repository_flux_messages(image, message):
    with pytest.raises(ImageRefError) as err:
        parse_repository(image)
    assert str(err.value) == message


def test_parse_repository_uppercase_says_how_to_fix():
    with pytest.raises(ImageRefError) as err:
        parse_repository("ghcr.io/Org/App")
    assert str(err.value) == (
        "could not parse reference 'ghcr.io/Org/App': repository name 'Org/App' in "
        "'ghcr.io/Org/App' must be lowercase; write 'org/app'"
    )


@pytest.mark.parametrize(
    ("host", "insecure", "scheme"),
    [
        ("ghcr.io", None, "https"),
        ("localhost", None, "http"),
        ("localhost:5000", None, "http"),
        ("LOCALHOST:5000", None, "http"),
        ("registry.localhost:5000", None, "http"),
        ("127.0.0.1:5055", None, "http"),
        ("127.8.9.10", None, "http"),
        ("[::1]:5000", None, "http"),
        ("::1", None, "http"),
        ("10.0.0.5:5000", None, "https"),  # RFC 1918 is not plain http by default
        ("192.168.1.2", None, "https"),
        ("notlocalhost:5000", None, "https"),
        ("ghcr.io", True, "http"),
        ("localhost:5000", False, "https"),
    ],
)
def test_default_scheme(host, insecure, scheme):
    assert default_scheme(host, insecure=insecure) == scheme


# --- property tests: references generated from the grammar round-trip -----------------------

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])
_path_component = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    _alnum,
    st.lists(st.tuples(_separator, _alnum), max_size=2),
)
_path = st.lists(_path_component, min_size=1, max_size=4).map("/".join)


def _ends_in_a_number(host: str) -> bool:
    """An IPv4 address to a resolver (``127.1``, ``0x7f.0.0.1``): only ``a.b.c.d`` is valid."""
    return bool(re.fullmatch(r"[0-9]+|0x[0-9a-f]*", host.rsplit(".", 1)[-1].lower()))


_domain_component = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
_host = st.one_of(
    st.lists(_domain_component, min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda host: not _ends_in_a_number(host)),
    st.sampled_from(["127.0.0.1", "10.0.0.5", "8.8.8.8"]),
    st.just("localhost"),
    st.sampled_from(["[::1]", "[2001:db8::1]", "[fe80::a:b]"]),
    st.just("index.docker.io"),
)
_domain = st.builds(
    lambda host, port: host + (f":{port}" if port is not None else ""),
    _host,
    st.none() | st.integers(0, 65535),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.builds(
    lambda algo, hex_: f"{algo}:{hex_}",
    st.sampled_from(["sha256", "sha512", "multihash+base58", "a1.b2"]),
    st.from_regex(r"[0-9a-fA-F]{32,70}", fullmatch=True),
)


def _unambiguous(text: str) -> bool:
    # Without a registry, a first path component holding '.' would be read as a host
    # (distribution's splitDockerDomain); such strings are not what the generator meant.
    first, slash, _ = text.partition("/")
    return not slash or "." not in first or _looks_like_host(first)


def _looks_like_host(component: str) -> bool:
    # A host ending in a number would be an IPv4 spelling other than a.b.c.d: invalid.
    parts = component.split(".")
    return all(part and "_" not in part for part in parts) and not _ends_in_a_number(component)


_reference = st.builds(
    lambda domain, path, tag, digest: (
        (f"{domain}/" if domain else "")
        + path
        + (f":{tag}" if tag else "")
        + (f"@{digest}" if digest else "")
    ),
    st.none() | _domain,
    _path,
    st.none() | _tag,
    st.none() | _digest,
).filter(_unambiguous)


@settings(deadline=None)
@given(_reference)
def test_generated_references_round_trip(text):
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref
    # The canonical name names the same repository, and canonicalising is idempotent.
    again = parse_reference(ref.canonical_name)
    assert (again.domain, again.path) == (ref.domain, ref.path)
    assert again.canonical_name == ref.canonical_name


_repository = st.builds(
    lambda domain, path: (f"{domain}/" if domain else "") + path,
    st.none() | _domain.filter(lambda d: "." in d or ":" in d),
    _path,
).filter(_unambiguous)


@settings(deadline=None)
@given(_repository)
def test_generated_repositories_canonical_idempotent(image):
    ref = parse_repository(image)
    assert ref.tag is None and ref.digest is None
    assert canonical_name(ref.canonical_name) == ref.canonical_name
    assert parse_repository(str(ref)) == ref
