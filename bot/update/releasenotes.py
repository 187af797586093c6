"""Release notes in the PR body (issue 12 §1): what changed in each image, from what the
image says about itself and its source repository's GitHub releases.

Pure: `image_changes` reads a plan's change list; `section` renders what the edge
(`bot.releasenotes`) fetched. Everything from outside (annotations, release notes) is
neutralised on the way: no HTML (so no hidden block can be forged), no @-mentions,
no issue cross-references, and each part cut to a budget.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.imagemeta import ImageMetadata
from bot.imageref import ImageRefError, parse_reference
from bot.policy.model import LatestRef
from bot.update.result import Result

#: The whole section, and one release's notes, at most (characters).
SECTION_BUDGET = 20_000
RELEASE_BUDGET = 4_000
#: Releases listed per image at most.
MAX_RELEASES = 10

_GITHUB_SOURCE = re.compile(
    r"^(?:https?://|git@)github\.com[/:]([A-Za-z0-9-]+)/([\w.-]+?)(?:\.git)?/?$"
)


@dataclass(frozen=True)
class ImageChange:
    """One policy's image, from what the files held to what the policy picked."""

    policy: str
    image: str
    old_tag: str | None
    old_digest: str | None
    new: LatestRef

    @property
    def digest_only(self) -> bool:
        return self.old_tag == self.new.tag


@dataclass(frozen=True)
class Release:
    tag_name: str
    name: str
    body: str
    html_url: str
    prerelease: bool = False


@dataclass
class ImageNotes:
    change: ImageChange
    old: ImageMetadata | None = None
    new: ImageMetadata | None = None
    releases: list[Release] = field(default_factory=list)


def image_changes(result: Result, latest: Mapping[str, LatestRef]) -> list[ImageChange]:
    """Per policy whose markers changed, the old tag and digest its whole-image, ``:tag``
    or ``:digest`` values held (``:name`` says nothing about the version)."""
    old: dict[str, tuple[str | None, str | None]] = {}
    for change in result.changes():
        parts = change.setter.split(":")
        if len(parts) < 2 or parts[1] not in latest:
            continue
        policy, suffix = parts[1], parts[2] if len(parts) == 3 else ""
        tag, digest = old.get(policy, (None, None))
        if suffix == "":
            try:
                ref = parse_reference(change.old_value)
                tag, digest = tag or ref.tag, digest or ref.digest
            except ImageRefError:
                continue
        elif suffix == "tag":
            tag = tag or change.old_value
        elif suffix == "digest":
            digest = digest or change.old_value or None
        old[policy] = (tag, digest)
    return [
        ImageChange(policy, latest[policy].name, tag, digest, latest[policy])
        for policy, (tag, digest) in sorted(old.items())
    ]


def github_source(metadata: ImageMetadata | None) -> tuple[str, str] | None:
    """(owner, repository) when the image's source is a github.com repository."""
    source = metadata.value("source") if metadata is not None else None
    match = _GITHUB_SOURCE.match(source or "")
    if match is None or match.group(2) in (".", ".."):
        return None
    return match.group(1), match.group(2)


def tag_page(image: str, tag: str) -> str | None:
    """The page of ``image:tag`` on the well-known registries, for images that say nothing."""
    try:
        ref = parse_reference(image)
    except ImageRefError:
        return None
    domain, path = ref.domain, ref.path
    if domain == "docker.io":
        if path.startswith("library/"):
            return f"https://hub.docker.com/_/{path[len('library/') :]}/tags?name={tag}"
        return f"https://hub.docker.com/r/{path}/tags?name={tag}"
    if domain == "quay.io":
        return f"https://quay.io/repository/{path}?tab=tags&tag={tag}"
    if domain == "public.ecr.aws":
        return f"https://gallery.ecr.aws/{path}"
    if domain == "mcr.microsoft.com":
        return f"https://mcr.microsoft.com/en-us/artifact/mar/{path}/tags"
    if domain in ("ghcr.io", "gcr.io") or domain.endswith((".gcr.io", "-docker.pkg.dev")):
        return f"https://{domain}/{path}"  # each redirects a browser to the image's page
    return None


def section(notes: Sequence[ImageNotes], *, budget: int = SECTION_BUDGET) -> str:
    """The "What changed" part of the PR body; empty when there is nothing to say.

    Whole blocks only: an image's part, or a release's, is left out when it does not
    fit, so a ``<details>`` or a code fence is never left open."""
    text = ""
    for blocks in (_image_blocks(n) for n in notes):
        for index, block in enumerate(blocks):
            heading = "" if text else "\n\n### What changed"
            piece = f"{heading}\n\n{block}" if index == 0 else f"\n{block}"
            if len(text) + len(piece) > budget - len(_CUT):
                return text + _CUT if text else ""
            text += piece
    return text


_CUT = "\n\n…(release notes cut to fit)"


def _image_blocks(notes: ImageNotes) -> list[str]:
    """The image's own lines, then one block per release; none when nothing is known."""
    head = _image_part(notes)
    if not head:
        return []
    return [head, *(_release_block(r) for r in notes.releases[:MAX_RELEASES])]


def _release_block(release: Release) -> str:
    title = _safe(_one_line(release.name or release.tag_name))
    body = _safe(release.body.strip())[:RELEASE_BUDGET] or "(no notes)"
    if body.count("```") % 2:
        body += "\n```"  # a fence the cut left open
    flag = " (pre-release)" if release.prerelease else ""
    return "\n".join(
        [
            f"<details><summary>{title}{flag}</summary>",
            "",
            release.html_url,
            "",
            body,
            "",
            "</details>",
        ]
    )


def _image_part(notes: ImageNotes) -> str:
    change, new, old = notes.change, notes.new, notes.old
    lines = [f"#### `{_safe(change.image)}` ({_safe(change.policy)})", ""]
    if change.digest_only:
        lines.append(
            f"- `{_safe(change.new.tag)}` moved: `{_safe(change.old_digest or '?')}` → "
            f"`{_safe(change.new.digest or '?')}`"
        )
    for name in ("title", "description", "version", "url"):
        value = new.value(name) if new else None
        if value:
            lines.append(f"- {name}: {_safe(_one_line(value))}")
    source = github_source(new)
    old_revision = old.value("revision") if old else None
    new_revision = new.value("revision") if new else None
    if source is not None:
        owner, repository = source
        base = f"https://github.com/{owner}/{repository}"
        if new_revision and old_revision and new_revision != old_revision:
            lines.append(f"- compare: {base}/compare/{_ref(old_revision)}...{_ref(new_revision)}")
        elif change.old_tag and not change.digest_only:
            old_name, new_name = (
                _release_tag(notes, change.old_tag),
                _release_tag(notes, change.new.tag),
            )
            lines.append(f"- compare: {base}/compare/{_ref(old_name)}...{_ref(new_name)}")
        if new_revision:
            lines.append(f"- revision: {base}/commit/{_ref(new_revision)}")
    elif new is not None and new.value("source"):
        lines.append(f"- source: {_safe(_one_line(new.value('source') or ''))}")
        if new_revision:
            lines.append(f"- revision: `{_safe(new_revision)}`")
    if (new is None or not new.value("source")) and not notes.releases:
        page = tag_page(change.image, change.new.tag)
        if page:
            lines.append(f"- tag: {page}")
    if len(lines) <= 2 and not notes.releases:
        return ""
    return "\n".join(lines)


def _release_tag(notes: ImageNotes, image_tag: str) -> str:
    """The release's own tag for an image tag (``5.0.3`` is often ``v5.0.3`` in git)."""
    for release in notes.releases:
        if release.tag_name.removeprefix("v") == image_tag.removeprefix("v"):
            return release.tag_name
    return image_tag


_REF = re.compile(r"[^A-Za-z0-9._/-]")


def _ref(value: str) -> str:
    return _REF.sub("", value)[:100]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


_HTML = re.compile(r"<(?=[A-Za-z/!?])")


_ISSUE_LINK = re.compile(r"https?://github\.com/(?=[\w.-]+/[\w.-]+/(?:issues|pull|discussions)/)")


def _safe(text: str) -> str:
    """Text from outside, made inert: no HTML tag or comment (a forged hidden block), no
    @-mentions, no cross-references (``#123``, or a link to an issue, which GitHub would
    note on that issue: links go through redirect.github.com, which it does not);
    Markdown (and ``a < b``) stays as it is."""
    text = _ISSUE_LINK.sub("https://redirect.github.com/", text)
    text = _HTML.sub("&lt;", text)
    text = re.sub(r"@(?=\w)", "@\u200b", text)
    return re.sub(r"#(?=\d)", "#\u200b", text)
