"""Marker comment parsing (flux-behaviour §4.1)."""

import pytest

from bot.update.markers import MARKER_TOKEN, has_marker, parse_marker


@pytest.mark.parametrize(
    ("comment", "setter"),
    [
        ('# {"$imagepolicy": "ns:p"}', "ns:p"),
        ('#{"$imagepolicy":"ns:p"}', "ns:p"),
        ('## {"$imagepolicy": "ns:p"}', "ns:p"),
        ('#    {"$imagepolicy" :  "ns:p:tag"}  ', "ns:p:tag"),
        ('# {"$imagepolicy": "ns:p", "x": "y"}', "ns:p"),
        ('# {"$imagepolicy": "ns:p:digest"}', "ns:p:digest"),
        ('# {"$ref": "#/definitions/io.k8s.cli.setters.ns:p:name"}', "ns:p:name"),
        ('# {"$imagepolicy": "ns:p "}', "ns:p "),  # exact: a different, unknown setter
        # The long form: the first JSON object counts, whatever follows it (issue 9).
        ('# {"$ref": "#/definitions/io.k8s.cli.setters.ns:p"} keep me', "ns:p"),
        ('# {"$ref": "#/definitions/io.k8s.cli.setters.ns:p"} {"x": 1}', "ns:p"),
        ('# {"$ref": "#/definitions/io.k8s.cli.setters.ns:p:tag"}\n# more', "ns:p:tag"),
        ('#{"$ref": "#/definitions/io.k8s.cli.setters.ns:p", "x": 1}trailing', "ns:p"),
    ],
)
def test_markers(comment: str, setter: str) -> None:
    assert parse_marker(comment) == setter


@pytest.mark.parametrize(
    "comment",
    [
        '# {"$imagepolicy": "ns:p"} keep me',
        "# {'$imagepolicy': 'ns:p'}",
        '# {"$imagepolicy": "ns:p"',
        '# {"$imagepolicy": "ns:p", "x": 1}',
        '# {"$imagepolicy": 3}',
        '# ["$imagepolicy", "ns:p"]',
        "# just a comment",
        '# # {"$imagepolicy": "ns:p"}',  # only leading "#" are stripped, as Flux
        '# {"$ref": "#/definitions/other.ns:p"}',
        '# {"other": "ns:p"}',
        "#",
        '# {"$imagepolicy": "ns:p"}\n# a second line',  # the short form must be all there is
        '# {"$ref": "#/definitions/io.k8s.cli.setters.ns:p"',  # an incomplete object
        '# {"$ref": "#/definitions/io.k8s.cli.setters.ns:p", "x": NaN}',  # not JSON to Go
        '# note\n# {"$ref": "#/definitions/io.k8s.cli.setters.ns:p"}',  # not the first line
        '# {"$ref": 3} {"$ref": "#/definitions/io.k8s.cli.setters.ns:p"}',
    ],
)
def test_not_markers(comment: str) -> None:
    assert parse_marker(comment) is None


def test_json_deeper_than_the_decoder_goes_is_no_marker() -> None:
    assert parse_marker('# {"$imagepolicy": ' + "[" * 100_000) is None
    assert parse_marker('# {"$ref": ' + "[" * 100_000) is None


def test_screening_is_on_the_exact_quoted_bytes() -> None:
    assert MARKER_TOKEN == b'"$imagepolicy"'
    assert has_marker(b'image: x # {"$imagepolicy": "ns:p"}')
    assert not has_marker(b"image: x # {'$imagepolicy': 'ns:p'}")
    assert not has_marker(b"image: x # $imagepolicy")
