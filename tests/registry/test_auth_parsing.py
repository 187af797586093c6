"""Challenge parsing, token responses and the token cache (no network)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.registry.auth import (
    MIN_TOKEN_LIFETIME,
    TokenCache,
    basic_authorization,
    parse_challenges,
    parse_token_response,
)


def test_bearer_challenge_with_realm_service_scope() -> None:
    [challenge] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/nginx:pull",
    }


def test_several_challenges_in_one_header_and_several_headers() -> None:
    challenges = parse_challenges(
        [
            'Bearer realm="https://codeberg.org/v2/token",service="container_registry" , '
            'Basic realm="Gitea"',
            "Negotiate abc==, Basic realm=plain",
        ]
    )
    assert [c.scheme for c in challenges] == ["bearer", "basic", "negotiate", "basic"]
    assert challenges[0].params["service"] == "container_registry"
    assert challenges[1].params == {"realm": "Gitea"}
    assert challenges[3].params == {"realm": "plain"}


def test_quoted_values_keep_commas_and_escapes() -> None:
    [challenge] = parse_challenges(
        'Bearer realm="http://h/t",scope="repository:a:pull,push repository:b:pull",'
        'error="insufficient_scope",x="a\\"b"'
    )
    assert challenge.params["scope"] == "repository:a:pull,push repository:b:pull"
    assert challenge.params["error"] == "insufficient_scope"
    assert challenge.params["x"] == 'a"b'


def test_scheme_is_case_insensitive_and_junk_is_skipped() -> None:
    challenges = parse_challenges('BEARER Realm="r" ;; , basic')
    assert [(c.scheme, c.params) for c in challenges] == [
        ("bearer", {"realm": "r"}),
        ("basic", {}),
    ]
    assert parse_challenges("") == []


@pytest.mark.parametrize(
    ("answer", "lifetime"),
    [
        ({"token": "t1", "expires_in": 300}, 300),
        ({"access_token": "t1"}, MIN_TOKEN_LIFETIME),  # ACR: access_token only, no expiry
        ({"token": "t1", "access_token": "other", "expires_in": 10}, MIN_TOKEN_LIFETIME),
    ],
)
def test_token_response(answer: dict, lifetime: float) -> None:
    token = parse_token_response(json.dumps(answer).encode(), now=100.0)
    assert token.authorization == "Bearer t1"
    assert 100.0 + lifetime - 10 < token.expires_at <= 100.0 + lifetime


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"[]", "not an object"),
        (b'{"expires_in": 60}', "neither `token` nor `access_token`"),
    ],
)
def test_bad_token_responses(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_token_response(body, now=0.0)


def test_token_cache_expires_and_invalidates() -> None:
    cache = TokenCache()
    key = ("reg", "repository:a:pull", "")
    cache.put(key, parse_token_response(b'{"token": "x", "expires_in": 120}', now=0.0))
    assert cache.get(key, now=60.0) == "Bearer x"
    assert cache.get(("reg", "repository:b:pull", ""), now=60.0) is None
    assert cache.get(("reg", "repository:a:pull", "cred:1"), now=60.0) is None
    assert cache.get(key, now=119.0) is None  # refreshed a little before expiry
    cache.put(key, parse_token_response(b'{"token": "y"}', now=0.0))
    cache.invalidate(key)
    assert cache.get(key, now=1.0) is None


def test_basic_authorization() -> None:
    assert basic_authorization("alice", "s3cret") == "Basic YWxpY2U6czNjcmV0"


@given(st.text(alphabet=st.sampled_from(list('Bearer Basic realm="x\\,= \t;abc'))))
def test_parsing_never_fails_on_junk(header: str) -> None:
    for challenge in parse_challenges(header):
        assert challenge.scheme == challenge.scheme.lower()
        assert all(key == key.lower() for key in challenge.params)
