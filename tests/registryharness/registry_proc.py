"""Start the real Debian ``docker-registry`` (distribution 2.8) as a test process.

Listens on 127.0.0.1 on a free port with its own temp config and storage, and is
stopped by its PID. Used by the test fixtures and by ``bench/bench_registry.py``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

REGISTRY_BINARY = "/usr/bin/docker-registry"


def temp_root(prefix: str) -> Path:
    """A fresh temp dir, on tmpfs when there is one: thousands of tag files stay fast."""
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=where))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningRegistry:
    process: subprocess.Popen[bytes]
    port: int
    root: Path  # temp dir: config, storage, log
    tls: bool = False
    ca_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.root / "data"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_registry(
    *,
    auth: dict[str, Any] | None = None,
    tls: tuple[str, str] | None = None,
    ca_file: str | None = None,
    root: Path | None = None,
    notify: tuple[str, str] | None = None,
) -> RunningRegistry:
    """Start a registry; ``auth`` is its ``auth:`` config, ``tls`` (cert, key) files,
    ``notify`` (url, bearer token) where it sends its push notifications."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        raise RuntimeError(
            f"{REGISTRY_BINARY} is missing: install the Debian package docker-registry"
        )
    root = root or temp_root("test-registry-")
    port = free_port()
    http_config: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "secret": "test-only-secret"}
    if tls:
        http_config["tls"] = {"certificate": tls[0], "key": tls[1]}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
        },
        "http": http_config,
    }
    if auth:
        config["auth"] = auth
    if notify:
        url, token = notify
        config["notifications"] = {
            "endpoints": [
                {
                    "name": "bot",
                    "url": url,
                    "headers": {"Authorization": [f"Bearer {token}"]},
                    "timeout": "2s",
                    "threshold": 3,
                    "backoff": "1s",
                }
            ]
        }
    config_file = root / "config.yml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(config_file)], stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    registry = RunningRegistry(process, port, root, tls=bool(tls), ca_file=ca_file)
    try:
        _wait_ready(registry)
    except BaseException:
        registry.stop()
        raise
    return registry


def _wait_ready(registry: RunningRegistry, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            log = (registry.root / "registry.log").read_text(errors="replace")
            raise RuntimeError(f"docker-registry exited early:\n{log}")
        try:
            if registry.tls:
                context = ssl.create_default_context(cafile=registry.ca_file)
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    "127.0.0.1", registry.port, context=context, timeout=2
                )
            else:
                conn = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=2)
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            conn.close()
            if status in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError("docker-registry did not become ready in time")


def start_basic_auth_registry(
    user: str, password: str, *, prefix: str = "test-registry-basic-"
) -> tuple[RunningRegistry, str]:
    """A registry behind htpasswd (bcrypt) auth; returns it and the Basic header value."""
    root = temp_root(prefix)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    (root / "htpasswd").write_text(f"{user}:{hashed}\n")
    process = start_registry(
        auth={"htpasswd": {"realm": "basic-realm", "path": str(root / "htpasswd")}}, root=root
    )
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return process, f"Basic {token}"
