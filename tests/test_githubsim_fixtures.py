"""Replay recorded real-API exchanges (octokit fixtures) against the simulator and compare
status codes and response bodies (ids normalised away, SHAs mapped to the recording's)."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.datapaths import GITHUB_DATA
from tests.githubsim.testkit import PERMISSIONS, Api

SCENARIOS = GITHUB_DATA / "fixtures" / "scenarios" / "api.github.com"
RECORDED_BASE = "https://api.github.com"
SHA_1, SHA_2 = "0" * 39 + "1", "0" * 39 + "2"
IGNORED_KEYS = {"id", "node_id"}  # octokit normalised them; the simulator allocates its own


def _load(scenario: str) -> list[dict]:
    path = SCENARIOS / scenario / "normalized-fixture.json"
    if not path.exists():
        pytest.fail(f"recorded fixture missing: {path}")
    return json.loads(path.read_text())


def _mismatches(recorded: object, ours: object, where: str = "") -> list[str]:
    """Every value in the recording must be in our answer (we may send extra keys)."""
    if isinstance(recorded, dict):
        if not isinstance(ours, dict):
            return [f"{where}: expected object, got {ours!r}"]
        out = []
        for key, value in recorded.items():
            if key in IGNORED_KEYS:
                continue
            if key not in ours:
                out.append(f"{where}/{key}: missing")
            else:
                out += _mismatches(value, ours[key], f"{where}/{key}")
        return out
    if isinstance(recorded, list):
        if not isinstance(ours, list) or len(ours) != len(recorded):
            return [f"{where}: expected {len(recorded)} items, got {ours!r}"]
        return [m for i, (r, o) in enumerate(zip(recorded, ours, strict=True))
                for m in _mismatches(r, o, f"{where}/{i}")]  # fmt: skip
    return [] if recorded == ours else [f"{where}: recorded {recorded!r}, simulator {ours!r}"]


async def _replay(api: Api, exchanges: list[dict], base: str, shas: dict[str, str]) -> list[str]:
    to_real = dict(shas)
    to_recorded = {v: k for k, v in shas.items()}
    problems = []
    for ex in exchanges:
        body = ex.get("body")
        if isinstance(body, dict):
            body = {k: to_real.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
        reply = await api.call(ex["method"].upper(), ex["path"], body or None)
        label = f"{ex['method'].upper()} {ex['path']}"
        if reply.status != ex["status"]:
            problems.append(f"{label}: status {reply.status} != recorded {ex['status']}")
            continue
        if ex["status"] == 204:
            continue
        text = json.dumps(reply.body).replace(base, RECORDED_BASE)
        for real, recorded in to_recorded.items():
            text = text.replace(real, recorded)
        problems += [f"{label}: {m}" for m in _mismatches(ex["response"], json.loads(text))]
    return problems


@pytest.fixture
async def fixture_api(github_sim, app_key):
    app_id, _, public_pem = app_key
    sim = github_sim.sim
    sim.register_app(app_id, public_pem, permissions=dict(PERMISSIONS))
    inst = sim.create_installation(app_id, "octokit-fixture-org", None)
    async with aiohttp.ClientSession() as session:
        yield sim, Api(session, github_sim.url, sim.issue_token(inst)), github_sim.url


async def test_git_refs_scenario_replays_identically(fixture_api):
    sim, api, base = fixture_api
    parent = sim.create_repository("octokit-fixture-org/git-refs", {"README.md": b"hi\n"})
    head = sim.push("octokit-fixture-org/git-refs", "main", {"README.md": b"hello\n"})
    # The recording moves `test` from commit 2 to commit 1 without force: 2 is 1's parent.
    problems = await _replay(api, _load("git-refs"), base, {SHA_1: head, SHA_2: parent})
    assert not problems, "\n".join(problems)


async def test_validation_error_scenario_replays_identically(fixture_api):
    sim, api, base = fixture_api
    sim.create_repository("octokit-fixture-org/errors", {"README.md": b"hi\n"})
    [exchange] = _load("errors")
    recorded = exchange["response"]
    reply = await api.call("POST", exchange["path"], exchange["body"])
    assert reply.status == exchange["status"] == 422
    assert reply.body["message"] == recorded["message"]
    assert reply.body["errors"] == recorded["errors"]


async def test_create_label_scenario_replays_identically(fixture_api):
    sim, api, base = fixture_api
    sim.create_repository("octokit-fixture-org/labels", {"README.md": b"hi\n"})
    create = [e for e in _load("labels") if e["method"] == "post"]
    assert create, "the labels recording has a create-label exchange"
    problems = await _replay(api, create, base, {})
    assert not problems, "\n".join(problems)
