"""A config is parsed once per distinct file and default branch, however many runs read it."""

from __future__ import annotations

from bot.config import load_config
from bot.configcache import ConfigCache
from tests.manifests import podinfo_config

TEXT = podinfo_config().encode()


def test_the_same_bytes_are_parsed_once_and_give_what_load_config_gives():
    cache = ConfigCache()
    first = cache.load(TEXT, default_branch="main")
    again = cache.load(bytes(TEXT), default_branch="main")
    assert cache.parses == 1
    assert again[0] is first[0]
    assert first == load_config(TEXT, path=".github/image-automation.yml", default_branch="main")


def test_other_bytes_or_another_default_branch_are_parsed_again():
    cache = ConfigCache()
    cache.load(TEXT, default_branch="main")
    cache.load(TEXT + b"\n", default_branch="main")
    cache.load(TEXT, default_branch="trunk")
    assert cache.parses == 3


def test_problems_are_handed_out_as_a_fresh_list_each_time():
    cache = ConfigCache()
    broken = podinfo_config(semver_range="not a range").encode()
    _, problems = cache.load(broken, default_branch="main")
    assert problems
    problems.clear()  # a caller's list is its own
    _, again = cache.load(broken, default_branch="main")
    assert again and cache.parses == 1


def test_the_least_recently_used_config_makes_room():
    cache = ConfigCache(size=2)
    for text in (TEXT, TEXT + b"\n", TEXT, TEXT + b"\n\n", TEXT):
        cache.load(text, default_branch="main")
    assert cache.parses == 3  # TEXT stayed: it was used again before the third came
