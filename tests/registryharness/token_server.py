"""A test token server for the registry's Bearer flow (distribution token spec).

JWTs signed ES256 with an ``x5c`` header (registry.md §5), ``aud`` a string.
User ``alice`` may do anything; anonymous callers may pull repositories not
under ``private/``; a wrong password gets 401.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization

from tests.registryharness.certs import Signer
from tests.registryharness.shim import QuietServer

ISSUER = "test-issuer"
SERVICE = "test-registry"


class TokenServer:
    def __init__(self, signer: Signer, users: dict[str, str], *, expires_in: int | None = 300):
        self.signer = signer
        self.users = users
        self.expires_in = expires_in
        self.requests: Counter[str] = Counter()  # by user ("" = anonymous)
        self.seen_authorization: list[str | None] = []
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def registry_auth(self) -> dict:
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": self.signer.bundle_file,
            }
        }

    def issue(self, user: str, service: str, scopes: list[str]) -> dict:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [_grant(user, s) for scope in scopes for s in scope.split()],
        }
        der = self.signer.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
        token = jwt.encode(claims, self.signer.key_pem, algorithm="ES256", headers=header)
        answer = {"token": token, "access_token": token}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                authorization = self.headers.get("Authorization")
                server.seen_authorization.append(authorization)
                user = ""
                if authorization:
                    scheme, _, value = authorization.partition(" ")
                    name, _, password = base64.b64decode(value).decode().partition(":")
                    if scheme != "Basic" or server.users.get(name) != password:
                        self._send(401, {"details": "invalid credentials"})
                        return
                    user = name
                server.requests[user] += 1
                answer = server.issue(user, query.get("service", [""])[0], query.get("scope", []))
                self._send(200, answer)

            def _send(self, status: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def _grant(user: str, scope: str) -> dict:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    wanted = [a for a in actions.split(",") if a]
    if user == "alice":
        allowed = wanted
    elif kind == "repository" and not name.startswith("private/"):
        allowed = [a for a in wanted if a == "pull"]
    else:
        allowed = []
    return {"type": kind, "name": name, "actions": allowed}
