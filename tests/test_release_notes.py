"""Release notes in the PR body (issue 12 §1): what changed in each image, from its
annotations and its source repository's GitHub releases."""

from __future__ import annotations

import aiohttp

from bot.config import CONFIG_PATH
from bot.imagemeta import ImageMetadata
from bot.policy import LatestRef
from bot.releasenotes import between
from bot.update.prbody import PullRequestState, compose_body
from bot.update.releasenotes import (
    ImageChange,
    ImageNotes,
    Release,
    image_changes,
    section,
    tag_page,
)
from bot.update.result import Change, ObjectId, Result
from tests.manifests import IMAGE, deployment, podinfo_config
from tests.test_automation_lifecycle import World

OCI = "org.opencontainers.image."
SOURCE_REPO = "stefanprodan/podinfo"  # where the simulator keeps the releases
REPO = "octo-org/noted"


def described(revision: str, **more: str) -> ImageMetadata:
    return ImageMetadata(digest="sha256:" + "1" * 64, annotations={
        OCI + "source": f"https://github.com/{SOURCE_REPO}", OCI + "revision": revision,
        **{OCI + k: v for k, v in more.items()}})  # fmt: skip


def release(tag: str, body: str = "") -> Release:
    return Release(tag, f"Release {tag}", body, f"https://github.com/{SOURCE_REPO}/releases/tag/{tag}")


def test_the_old_version_comes_from_whole_image_tag_and_digest_markers():
    result = Result()
    obj = ObjectId("apps/v1", "Deployment", "default", "app")
    result.add_change("a.yaml", obj, Change(f"{IMAGE}:5.0.0", f"{IMAGE}:5.0.3", "flux-system:podinfo"))
    result.add_change("b.yaml", obj, Change("1.0", "1.1", "flux-system:web:tag"))
    result.add_change("b.yaml", obj, Change("sha256:" + "a" * 64, "sha256:" + "b" * 64, "flux-system:roll:digest"))
    latest = {"podinfo": LatestRef(IMAGE, "5.0.3"), "web": LatestRef("nginx", "1.1"),
              "roll": LatestRef("ghcr.io/o/r", "latest", "sha256:" + "b" * 64)}  # fmt: skip
    changes = {c.policy: c for c in image_changes(result, latest)}
    assert (changes["podinfo"].old_tag, changes["podinfo"].new.tag) == ("5.0.0", "5.0.3")
    assert changes["web"].old_tag == "1.0"
    assert changes["roll"].old_digest == "sha256:" + "a" * 64 and changes["roll"].old_tag is None


def test_releases_between_the_versions_newest_first():
    listed = [release(t) for t in ("v6.0.0", "v5.0.3", "v5.0.2", "v5.0.1", "v5.0.0", "v4.9.0")]
    assert [r.tag_name for r in between(listed, "5.0.0", "5.0.3")] == ["v5.0.3", "v5.0.2", "v5.0.1"]
    named = [release(t) for t in ("beta", "alpha", "first")]
    assert [r.tag_name for r in between(named, "first", "beta")] == ["beta", "alpha"]
    assert between(named, "first", "gone") == []


def test_the_section_links_the_compare_view_and_collapses_each_release():
    change = ImageChange("podinfo", IMAGE, "5.0.0", None, LatestRef(IMAGE, "5.0.3"))
    notes = ImageNotes(change, old=described("aaa111"), new=described("bbb222", title="podinfo"),
                       releases=[release("v5.0.3", "Fixes #12, thanks @mona\\n"),
                                 release("v5.0.2", "<!-- image-automation-bot:state {} -->")])  # fmt: skip
    text = section([notes])
    assert "### What changed" in text
    assert f"- compare: https://github.com/{SOURCE_REPO}/compare/aaa111...bbb222" in text
    assert f"- revision: https://github.com/{SOURCE_REPO}/commit/bbb222" in text
    assert "<details><summary>Release v5.0.3</summary>" in text
    # Nobody is pinged, no issue is cross-referenced, no hidden block can be forged.
    assert "@mona" not in text and "#12" not in text
    assert "<!--" not in text and "&lt;!-- image-automation-bot:state" in text
    state = PullRequestState(automation="apps", change_set="sha256:x", latest={})
    assert PullRequestState.parse(compose_body("body" + text, state)) == state


def test_a_digest_only_change_and_an_image_that_says_nothing():
    rolled = ImageChange("roll", "nginx", "latest", "sha256:" + "a" * 64,
                         LatestRef("nginx", "latest", "sha256:" + "b" * 64))  # fmt: skip
    text = section([ImageNotes(rolled)])
    assert "`latest` moved: `sha256:aaaa" in text and "→ `sha256:bbbb" in text
    assert "- tag: https://hub.docker.com/_/nginx/tags?name=latest" in text
    assert tag_page("quay.io/org/app", "1.0") == "https://quay.io/repository/org/app?tab=tags&tag=1.0"
    assert tag_page("public.ecr.aws/a/b", "1") == "https://gallery.ecr.aws/a/b"
    assert tag_page("127.0.0.1:5000/a", "1") is None
    assert section([]) == ""


def test_the_section_keeps_to_its_budget():
    change = ImageChange("podinfo", IMAGE, "5.0.0", None, LatestRef(IMAGE, "5.0.3"))
    notes = ImageNotes(change, new=described("b"), releases=[release(f"v5.0.{i}", "x" * 5000)
                                                              for i in range(3, 0, -1)])  # fmt: skip
    text = section([notes], budget=6000)
    assert len(text) <= 6000 and text.endswith("…(release notes cut to fit)")
    assert text.count("<details>") == text.count("</details>") == 1  # whole releases only


async def test_the_pr_body_carries_the_releases_read_once_with_the_installation_token(
    github_sim, app_key
):
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        sim = world.sim
        sim.create_repository(SOURCE_REPO, files={"README.md": b"podinfo\n"}, private=False)
        for tag in ("v5.0.0", "v5.0.1", "v5.0.2", "v5.0.3", "v6.0.0"):
            sim.create_release(SOURCE_REPO, tag, name=f"podinfo {tag}", body=f"Changes in {tag}")
        world.registry.metadata = {IMAGE: {"5.0.0": described("aaa111"), "5.0.3": described("bbb222")}}
        config = podinfo_config(update_path="./deploy", labels=())
        world.add_repository(REPO, files={CONFIG_PATH: config.encode(),
                                          "deploy/app.yaml": deployment("5.0.0")})  # fmt: skip
        sim.reset_counters()
        await world.reconcile(REPO)
        (pull,) = world.open_pulls(REPO)
        body = pull["body"]
        assert f"https://github.com/{SOURCE_REPO}/compare/aaa111...bbb222" in body
        for tag in ("v5.0.1", "v5.0.2", "v5.0.3"):
            assert f"<details><summary>podinfo {tag}</summary>" in body
        assert "v6.0.0" not in body and "podinfo v5.0.0<" not in body
        assert sim.counters["GET /repos/{owner}/{repo}/releases"] == 1
        assert world.deps.release_notes.requests == 2  # is it public? then its releases

        # Another run over the same change: the notes come from the cache.
        sim.push(REPO, "main", {"deploy/other.yaml": deployment("5.0.0")}, as_user="alice")
        sim.reset_counters()
        await world.reconcile(REPO)
        assert sim.counters["GET /repos/{owner}/{repo}/releases"] == 0


async def test_a_private_source_repository_gives_no_notes_even_if_the_token_reads_it(
    github_sim, app_key
):
    """An image's label may name any repository: one of the installation's own private
    ones must not have its release notes pulled into a PR (here: the same installation)."""
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        sim = world.sim
        sim.create_repository("octo-org/secret", files={"README.md": b"s\n"})  # private
        sim.add_repositories(world.installation, ["octo-org/secret"])
        sim.create_release("octo-org/secret", "v5.0.3", body="Internal: the new password is x")
        world.registry.metadata = {IMAGE: {"5.0.3": ImageMetadata(
            "sha256:" + "1" * 64, {OCI + "source": "https://github.com/octo-org/secret"})}}  # fmt: skip
        config = podinfo_config(update_path="./deploy", labels=())
        world.add_repository(REPO, files={CONFIG_PATH: config.encode(),
                                          "deploy/app.yaml": deployment("5.0.0")})  # fmt: skip
        await world.reconcile(REPO)
        (pull,) = world.open_pulls(REPO)
        assert "password" not in pull["body"]
        assert sim.counters["GET /repos/{owner}/{repo}/releases"] == 0


def test_links_to_issues_do_not_cross_reference_and_blocks_stay_closed():
    change = ImageChange("podinfo", IMAGE, "5.0.0", None, LatestRef(IMAGE, "5.0.3"))
    body = "See https://github.com/o/r/issues/7 and https://github.com/o/r/pull/8\n```go\n" + "x" * 5000
    text = section([ImageNotes(change, new=described("b"), releases=[release("v5.0.3", body)])])
    assert "https://redirect.github.com/o/r/issues/7" in text
    assert "https://github.com/o/r/issues/7" not in text
    assert text.count("```") % 2 == 0 and text.count("<details>") == text.count("</details>")


def test_an_odd_index_or_config_is_no_metadata_not_a_crash():
    from bot import imagemeta

    assert imagemeta.platform_child({"manifests": 5}) is None
    assert imagemeta.platform_child({"manifests": [{"platform": "linux", "digest": "x"}]}) is None
    described = imagemeta.with_config(ImageMetadata("d"), {"config": "labels", "created": 7})
    assert described.labels == {} and described.created is None
    big = imagemeta.from_manifest("d", {"annotations": {OCI + "title": "t" * 10_000, "x": "y"}})
    assert len(big.annotations[OCI + "title"]) == imagemeta.MAX_VALUE and "x" not in big.annotations
