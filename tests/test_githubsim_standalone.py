"""`python -m tests.githubsim` as a real process, driven through the `/_sim/` admin API."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.githubsim.testkit import Api, app_jwt

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standalone(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.githubsim", "--port", str(port), "--data", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"simulator exited: {proc.stdout.read()}")
            time.sleep(0.05)
    else:
        proc.terminate()
        pytest.fail("simulator did not start listening within 20 s")
    try:
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_admin_api_drives_a_standalone_simulator(standalone, app_key):
    url, data_dir = standalone
    app_id, private_pem, public_pem = app_key
    async with aiohttp.ClientSession() as session:
        admin = Api(session, url)
        assert (await admin.post("/_sim/apps", {"app_id": app_id,
                                                "public_key_pem": public_pem})).status == 201  # fmt: skip
        inst = await admin.post("/_sim/installations",
                                {"app_id": app_id, "account": "octo-org", "repositories": None})  # fmt: skip
        made = await admin.post("/_sim/repos", {"full_name": "octo-org/app", "files": {
            "a.yaml": "a: 1\n", "bin": {"base64": base64.b64encode(b"\x00").decode()}}})  # fmt: skip
        assert made.status == 201 and len(made.body["sha"]) == 40
        assert (data_dir / "repos" / "octo-org" / "app.git").is_dir()
        pushed = await admin.post("/_sim/repos/octo-org/app/push", {
            "branch": "main", "files": {"a.yaml": "a: 2\n", "bin": None},
            "author": {"name": "Bob", "email": "bob@example.com"}})  # fmt: skip
        head = await admin.get("/_sim/repos/octo-org/app/branches/main")
        assert head.body["sha"] == pushed.body["sha"]
        file = await admin.get("/_sim/repos/octo-org/app/file?ref=main&path=a.yaml")
        assert file.body == b"a: 2\n"

        token = await admin.post(
            f"/app/installations/{inst.body['installation_id']}/access_tokens",
            token=app_jwt(app_id, private_pem),
        )
        api = Api(session, url, token.body["token"])
        await admin.post("/_sim/faults", {"route": "/repos/{owner}/{repo}", "status": 503})
        assert (await api.get("/repos/octo-org/app")).status == 503
        assert (await api.get("/repos/octo-org/app")).status == 200
        await admin.post("/_sim/repos/octo-org/app/push", {"branch": "bot", "files": {"b": "b"}})
        pr = await api.post("/repos/octo-org/app/pulls",
                            {"title": "T", "head": "octo-org:bot", "base": "main"})  # fmt: skip
        assert pr.status == 201
        pulls = await admin.get("/_sim/repos/octo-org/app/pulls")
        assert [(p["number"], p["state"], p["head"]) for p in pulls.body] == [(1, "open", "bot")]
        counters = await admin.get("/_sim/counters")
        assert counters.body["GET /repos/{owner}/{repo}"] == 2
        assert counters.body["POST /repos/{owner}/{repo}/pulls"] == 1
        assert not any(k.startswith("GET /_sim") for k in counters.body)
        assert (await admin.delete("/_sim/counters")).status == 204
        assert (await admin.get("/_sim/counters")).body == {}
        bad = await admin.post("/_sim/repos", {"full_name": "no-slash"})
        assert bad.status == 400 and "owner/name" in bad.body["message"]
        settings = await admin.post("/_sim/settings", {"token_ttl": 10})
        assert settings.body["token_ttl"] == 10.0
