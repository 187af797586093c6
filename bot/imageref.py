"""Container image references: parsing, Docker Hub normalisation, canonical names.

Two parsers share one grammar (distribution/reference, registry.md §E):

* `parse_reference` reads ``name[:tag][@digest]`` with distribution's rules
  (what ``docker pull`` accepts): the first path component is a registry when
  it is ``localhost``, contains ``.`` or ``:``, or has uppercase letters.
* `parse_repository` reads an ImageRepository ``image:`` value with Flux's
  rules (flux-behaviour.md §2.2, go-containerregistry): no scheme, no tag, no
  digest, and the first component is a registry only when it contains ``.`` or
  ``:`` -- so ``localhost/foo`` is the Docker Hub repository ``localhost/foo``.

Pure: no I/O.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

DOCKER_HUB_DOMAIN = "docker.io"
DOCKER_HUB_LEGACY_DOMAIN = "index.docker.io"  # also Flux's spelling in canonical names
DOCKER_HUB_API_HOST = "registry-1.docker.io"
NAME_TOTAL_LENGTH_MAX = 255

# distribution/reference regexp.go, spelled with ASCII classes (Python's \w is Unicode).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"

_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT)
_DOMAIN_RE = re.compile(_DOMAIN)
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX64_RE = re.compile(r"[a-f0-9]{64}")
# What inet_aton reads as a number: decimal, octal (leading 0) or hex (0x).
_NUMERIC_LABEL_RE = re.compile(r"[0-9]+|0x[0-9a-f]*")

_TAG_RULE = "a tag is 1-128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'"
_PATH_RULE = (
    "each path component is lowercase letters and digits, separated by '.', '_', '__' or "
    "dashes, and neither starts nor ends with a separator"
)


class ImageRefError(ValueError):
    """An image reference that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class ImageRef:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """Where the registry API lives (``docker.io`` is not an API endpoint)."""
        return DOCKER_HUB_API_HOST if self.domain == DOCKER_HUB_DOMAIN else self.domain

    @property
    def canonical_name(self) -> str:
        """Flux's ``canonicalImageName``: Docker Hub spelled ``index.docker.io``."""
        domain = DOCKER_HUB_LEGACY_DOMAIN if self.domain == DOCKER_HUB_DOMAIN else self.domain
        return f"{domain}/{self.path}"

    @property
    def name(self) -> str:
        """The fully qualified name, ``domain/path``."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(s: str) -> ImageRef:
    """Parse ``name[:tag][@digest]`` as ``docker pull`` does; the tag stays None when absent."""
    if not isinstance(s, str) or not s:
        raise ImageRefError("image reference is empty; write one like 'ghcr.io/org/app:1.2.3'")
    if _HEX64_RE.fullmatch(s):
        raise ImageRefError(
            f"invalid repository name '{s}': a 64-character hexadecimal string is not a "
            "repository name; name the image, e.g. 'alpine@sha256:<digest>'"
        )
    name, digest = _split_digest(s)
    domain, remainder = _split_domain_distribution(name)
    path, tag = _split_tag(remainder)
    return _build(s, domain, path, tag, digest)


def parse_repository(image: str) -> ImageRef:
    """Parse an ImageRepository ``image:`` (Flux rules): no scheme, tag or digest."""
    if not isinstance(image, str) or not image:
        raise ImageRefError("image is empty; write a repository like 'ghcr.io/org/app'")
    if "://" in image:
        scheme = image.split("://", 1)[0]
        raise ImageRefError(f"image '{image}' should not include URL scheme; remove '{scheme}://'")
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first):
        domain, remainder = first, rest
    else:
        domain, remainder = DOCKER_HUB_DOMAIN, image
    if "@" in remainder:
        digest = remainder.split("@", 1)[1]
        raise ImageRefError(f"image '{image}' should not include a digest; remove '@{digest}'")
    if ":" in remainder:
        tag = remainder.split(":", 1)[1]
        raise ImageRefError(f"image '{image}' should not include a tag; remove ':{tag}'")
    try:
        return _build(image, _normalise_domain(domain), _docker_hub_path(domain, remainder))
    except ImageRefError as err:
        raise ImageRefError(f"could not parse reference '{image}': {err}") from None


def canonical_name(image: str) -> str:
    """Flux's canonical name of an ImageRepository ``image:`` value."""
    return parse_repository(image).canonical_name


@functools.lru_cache(maxsize=1024)  # asked for every image of every run; few distinct hosts
def default_scheme(host: str, *, insecure: bool | None) -> str:
    """``http`` when ``insecure`` is True, or it is None and ``host`` is loopback; else https.

    An explicit ``insecure: False`` means https even on loopback (a local TLS registry).
    RFC 1918 addresses are deliberately not plain-http by default (design §2).
    """
    if insecure is not None:
        return "http" if insecure else "https"
    return "http" if is_loopback(_host_without_port(host)) else "https"


def _split_digest(s: str) -> tuple[str, str | None]:
    if "@" not in s:
        return s, None
    name, digest = s.split("@", 1)
    if not DIGEST_RE.fullmatch(digest):
        raise ImageRefError(
            f"digest '{digest}' in '{s}' is invalid; expected 'algorithm:hex', "
            "e.g. 'sha256:' followed by 64 hex digits"
        )
    return name, digest


def _split_domain_distribution(name: str) -> tuple[str, str]:
    # distribution's splitDockerDomain: the domain is cut off before any ':tag' is looked for.
    first, slash, rest = name.partition("/")
    if slash and (first == "localhost" or "." in first or ":" in first or first.lower() != first):
        domain, remainder = first, rest
    else:
        domain, remainder = DOCKER_HUB_DOMAIN, name
    return _normalise_domain(domain), _docker_hub_path(domain, remainder)


def _normalise_domain(domain: str) -> str:
    return DOCKER_HUB_DOMAIN if domain == DOCKER_HUB_LEGACY_DOMAIN else domain


def _docker_hub_path(domain: str, remainder: str) -> str:
    # Only Docker Hub gets "library/" for single-component names (registry.md item 7).
    on_hub = _normalise_domain(domain) == DOCKER_HUB_DOMAIN
    name_part = remainder.split(":", 1)[0]
    if on_hub and "/" not in name_part:
        return f"library/{remainder}"
    return remainder


def _split_tag(remainder: str) -> tuple[str, str | None]:
    # Path components cannot hold ':', so the first ':' after the domain starts the tag.
    path, colon, tag = remainder.partition(":")
    return path, (tag if colon else None)


def _build(
    original: str, domain: str, path: str, tag: str | None = None, digest: str | None = None
) -> ImageRef:
    if not _DOMAIN_RE.fullmatch(domain):
        raise ImageRefError(
            f"registry '{domain}' in '{original}' is invalid; write a host name, an IPv4 "
            "address or a bracketed IPv6 address, optionally with ':port'"
        )
    problem = host_spelling_problem(_host_without_port(domain))
    if problem is not None:
        raise ImageRefError(f"registry '{domain}' in '{original}' is invalid: {problem}")
    if path.lower() != path:
        raise ImageRefError(
            f"repository name '{path}' in '{original}' must be lowercase; write '{path.lower()}'"
        )
    for component in path.split("/"):
        if not _PATH_COMPONENT_RE.fullmatch(component):
            shown = component or "(empty)"
            raise ImageRefError(
                f"repository path component '{shown}' in '{original}' is invalid; {_PATH_RULE}"
            )
    if tag is not None and not TAG_RE.fullmatch(tag):
        raise ImageRefError(f"tag '{tag}' in '{original}' is invalid; {_TAG_RULE}")
    full_name = f"{domain}/{path}"
    if len(full_name) > NAME_TOTAL_LENGTH_MAX:
        raise ImageRefError(
            f"repository name '{full_name[:40]}...' is {len(full_name)} characters long; "
            f"the limit is {NAME_TOTAL_LENGTH_MAX}"
        )
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest)


def host_spelling_problem(host: str) -> str | None:
    """Why a registry host (without port or brackets) is not a plain spelling, or None.

    A host whose last label is a number is an IPv4 address to the resolver, which
    also reads decimal (``2130706433``), octal (``0177.0.0.1``), hex (``0x7f.0.0.1``)
    and short (``127.1``) forms: only the dotted quad ``a.b.c.d`` is accepted, so
    what a config names is what the address policy sees. IPv6 literals must parse.
    """
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "not a valid IPv6 address"
        return None
    last = host.rstrip(".").rsplit(".", 1)[-1].lower()
    if not _NUMERIC_LABEL_RE.fullmatch(last):
        return None
    if is_canonical_ipv4(host):
        return None
    return (
        "a host ending in a number is an IPv4 address: write it as a.b.c.d (four decimal "
        "numbers 0-255, no leading zeros), not in a decimal, octal, hex or shortened form"
    )


def is_canonical_ipv4(host: str) -> bool:
    """``a.b.c.d``: four decimal numbers 0-255 without leading zeros."""
    parts = host.split(".")
    return len(parts) == 4 and all(
        part.isascii()
        and part.isdigit()
        and len(part) <= 3
        and (part == "0" or not part.startswith("0"))
        and int(part) <= 255
        for part in parts
    )


def _host_without_port(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host  # a bare IPv6 address or a plain host name


def is_loopback(host: str | None) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 or ``::1`` (a host without its port)."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
