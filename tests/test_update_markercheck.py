"""Markers that would change nothing or the wrong thing (issue 11 §4): `check_markers`."""

from __future__ import annotations

import pytest

from bot.problems import Severity
from bot.update import update_files
from bot.update.markercheck import Marked, check_markers

POLICIES = ("podinfo", "nginx")
DIGEST = "sha256:" + "a" * 64


def problems(setter: str, value: str, namespace: str = "flux-system") -> list[str]:
    marked = [Marked("apps/x.yaml", 3, 12, setter, value)]
    found = check_markers(marked, namespace=namespace, policies=POLICIES)
    assert all(
        (p.path, p.line, p.column, p.severity) == ("apps/x.yaml", 3, 12, Severity.WARNING)
        for p in found
    )
    return [p.message for p in found]


@pytest.mark.parametrize(
    ("setter", "value"),
    [
        ("flux-system:podinfo", "ghcr.io/stefanprodan/podinfo:5.0.3"),
        ("flux-system:podinfo", "nginx@" + DIGEST),
        ("flux-system:podinfo:tag", "5.0.3"),
        ("flux-system:podinfo:tag", "v1.2-rc.1"),
        ("flux-system:podinfo:name", "ghcr.io/stefanprodan/podinfo"),
        ("flux-system:nginx:name", "nginx"),
        ("flux-system:nginx:digest", DIGEST),
        # An empty value waits to be filled in, whatever the setter.
        ("flux-system:nginx:digest", ""),
        ("flux-system:nginx:tag", ""),
        ("flux-system:nginx", ""),
    ],
)
def test_a_marker_that_fits_its_value_is_quiet(setter, value):
    assert problems(setter, value) == []


@pytest.mark.parametrize(
    ("setter", "value", "says"),
    [
        ("flux-system:podinfo:tag", "ghcr.io/x/podinfo:1.0", "is not a bare tag"),
        ("flux-system:podinfo:tag", "1.0@" + DIGEST, "is not a bare tag"),
        ("flux-system:podinfo:digest", "5.0.3", "is not a digest"),
        ("flux-system:podinfo:name", "ghcr.io/x/podinfo:1.0", "is not an image name without tag"),
        ("flux-system:podinfo", "5.0.3", "is not an image reference with a tag"),
        ("flux-system:podinfo", "ghcr.io/x/podinfo", "is not an image reference with a tag"),
    ],
)
def test_a_value_its_setter_cannot_have_written_is_a_warning(setter, value, says):
    (message,) = problems(setter, value)
    assert says in message


def test_a_policy_the_config_does_not_define_gets_the_closest_name():
    (message,) = problems("flux-system:podinfoo", "ghcr.io/x/podinfo:1")
    assert "names policy 'podinfoo', which the config does not define" in message
    assert message.endswith("did you mean 'podinfo'?")
    (message,) = problems("flux-system:zzz", "ghcr.io/x/podinfo:1")
    assert "did you mean" not in message


def test_another_namespace_gets_the_config_key_to_change():
    (message,) = problems("apps:podinfo", "ghcr.io/x/podinfo:1")
    assert "did you mean `namespace: apps` in the config?" in message
    (message,) = problems("apps:other", "ghcr.io/x/podinfo:1")
    assert "neither of which the config has (its namespace is 'flux-system')" in message


@pytest.mark.parametrize("setter", ["podinfo", "a:b:c:d", "flux-system:podinfo:tags"])
def test_a_setter_name_flux_would_never_match_is_a_warning(setter):
    (message,) = problems(setter, "5.0.3")
    assert repr(setter) in message


def test_markers_are_found_where_flux_honours_them_with_their_position():
    text = (
        b"a:\n"
        b"  image: nginx:1.25 # {\"$imagepolicy\": \"apps:nginx\"}\n"
        b"  # {\"$imagepolicy\": \"flux-system:nginx:tag\"}\n"  # a head comment: not honoured here
        b"  tag: ghcr.io/x:1\n"
        b"  other: 1 # not a marker\n"
    )
    outcome = update_files({"x.yaml": text}, {})
    assert outcome.marked == [Marked("x.yaml", 2, 10, "apps:nginx", "nginx:1.25")]


def test_problems_in_a_pr_body_are_collapsed_and_mention_no_one():
    from bot.problems import Problem, warning
    from bot.update.prbody import problems_section

    assert problems_section([]) == ""
    text = problems_section(
        [
            warning("apps/x.yaml", 3, 12, "ask @octocat <b>now</b>"),
            Problem(".github/image-automation.yml", 0, 0, "config unreadable"),
        ]
    )
    assert text.startswith("\n<details><summary>2 problems found")
    assert "- `apps/x.yaml:3:12` (warning): ask &#64;octocat &lt;b>now&lt;/b>" in text
    assert "- `.github/image-automation.yml` (error): config unreadable" in text
    assert text.endswith("</details>")
