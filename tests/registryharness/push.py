"""Push synthetic images to a test registry over the plain HTTP API (stdlib only).

Docker v2 and OCI manifests, OCI indexes and Docker manifest lists, as
registry.md §3 describes; plus a storage-tree writer that adds thousands of
tags in a second (registry.md §8).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

_CONFIG_TYPE = {
    DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
    OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
}
_LAYER_TYPE = {
    DOCKER_MANIFEST: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    OCI_MANIFEST: "application/vnd.oci.image.layer.v1.tar+gzip",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class PushError(Exception):
    pass


class Pusher:
    def __init__(
        self,
        host: str,
        *,
        tls_context: ssl.SSLContext | None = None,
        authorization: str | None = None,
    ) -> None:
        self.host = host
        self.tls_context = tls_context
        self.authorization = authorization

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.tls_context is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, context=self.tls_context, timeout=30
            )
        else:
            conn = http.client.HTTPConnection(self.host, timeout=30)
        headers = dict(headers or {})
        if self.authorization:
            headers["Authorization"] = self.authorization
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def blob(self, image_path: str, data: bytes) -> str:
        digest = sha256(data)
        if self._request("HEAD", f"/v2/{image_path}/blobs/{digest}")[0] == 200:
            return digest
        status, headers, body = self._request(
            "POST", f"/v2/{image_path}/blobs/uploads/", b"", {"Content-Length": "0"}
        )
        if status != 202:
            raise PushError(f"blob upload start: {status} {body[:200]!r}")
        location = urllib.parse.urlsplit(headers["Location"])
        path = location.path + ("?" + location.query if location.query else "")
        path += ("&" if location.query else "?") + "digest=" + urllib.parse.quote(digest)
        status, headers, body = self._request(
            "PUT", path, data, {"Content-Type": "application/octet-stream"}
        )
        if status != 201:
            raise PushError(f"blob upload: {status} {body[:200]!r}")
        return digest

    def manifest(self, image_path: str, ref: str, body: bytes, media_type: str) -> str:
        status, headers, answer = self._request(
            "PUT", f"/v2/{image_path}/manifests/{ref}", body, {"Content-Type": media_type}
        )
        if status != 201:
            raise PushError(f"manifest {image_path}:{ref}: {status} {answer[:300]!r}")
        return headers["Docker-Content-Digest"]

    def image_manifest(
        self,
        image_path: str,
        *,
        salt: str,
        media_type: str = DOCKER_MANIFEST,
        arch: str = "amd64",
        annotations: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        created: str | None = None,
    ) -> bytes:
        """Push config and layer blobs; return the manifest bytes (not yet pushed).

        ``annotations`` go on the manifest, ``labels`` and ``created`` in the config."""
        layer = f"layer {salt}".encode()
        layer_digest = self.blob(image_path, layer)
        config_doc = {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": {"salt": salt, **(labels or {})}},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }
        if created is not None:
            config_doc["created"] = created
        config = json.dumps(config_doc).encode()
        config_digest = self.blob(image_path, config)
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": {
                    "mediaType": _CONFIG_TYPE[media_type],
                    "size": len(config),
                    "digest": config_digest,
                },
                "layers": [
                    {
                        "mediaType": _LAYER_TYPE[media_type],
                        "size": len(layer),
                        "digest": layer_digest,
                    }
                ],
                **({"annotations": annotations} if annotations else {}),
            },
            indent=2,
        ).encode()

    def image(
        self,
        image_path: str,
        tags: list[str] | str,
        *,
        salt: str,
        media_type: str = DOCKER_MANIFEST,
        **described: Any,
    ) -> str:
        """Push a single-platform image under every tag; return its digest. ``described``:
        `image_manifest`'s annotations, labels and created."""
        body = self.image_manifest(image_path, salt=salt, media_type=media_type, **described)
        digest = sha256(body)
        for tag in [tags] if isinstance(tags, str) else tags:
            if self.manifest(image_path, tag, body, media_type) != digest:
                raise PushError("registry digest differs from sha256 of the bytes sent")
        return digest

    def multi_arch(
        self,
        image_path: str,
        tags: list[str] | str,
        *,
        salt: str,
        media_type: str = OCI_INDEX,
        described: dict[str, dict[str, Any]] | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Push an index (OCI) or manifest list (Docker) over amd64+arm64; ``described``:
        per architecture, `image_manifest`'s annotations, labels and created.

        Returns (index digest, {arch: child digest}).
        """
        child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
        children = {}
        entries = []
        for arch in ("amd64", "arm64"):
            body = self.image_manifest(
                image_path,
                salt=f"{salt}-{arch}",
                media_type=child_type,
                arch=arch,
                **(described or {}).get(arch, {}),
            )
            digest = self.manifest(image_path, sha256(body), body, child_type)
            children[arch] = digest
            entries.append(
                {
                    "mediaType": child_type,
                    "size": len(body),
                    "digest": digest,
                    "platform": {"architecture": arch, "os": "linux"},
                }
            )
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
        ).encode()
        digest = sha256(index)
        for tag in [tags] if isinstance(tags, str) else tags:
            if self.manifest(image_path, tag, index, media_type) != digest:
                raise PushError("registry digest differs from sha256 of the bytes sent")
        return digest, children


def write_tags(storage: Path, image_path: str, digest: str, tags: list[str]) -> None:
    """Add ``tags`` pointing at ``digest`` straight into the registry's storage tree.

    The manifest must already be in ``image_path`` (push it under one tag first). This is
    distribution 2.8's internal layout: a speed shortcut for fixtures only.
    """
    algo, hex_digest = digest.split(":", 1)
    base = storage / "docker/registry/v2/repositories" / image_path / "_manifests/tags"
    for tag in tags:
        tag_dir = base / tag
        (tag_dir / "current").mkdir(parents=True, exist_ok=True)
        (tag_dir / "current/link").write_text(digest)
        index_dir = tag_dir / "index" / algo / hex_digest
        index_dir.mkdir(parents=True, exist_ok=True)
        (index_dir / "link").write_text(digest)


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.registryharness.push HOST IMAGE_PATH TAG... [--salt S]``: push one demo image."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("host", help="registry host:port (plain http)")
    parser.add_argument("image_path", help="image repository path, e.g. demo/podinfo")
    parser.add_argument("tags", nargs="+", help="tags that all point at the same image")
    parser.add_argument("--salt", help="makes a distinct image (default: the first tag)")
    args = parser.parse_args(argv)
    digest = Pusher(args.host).image(args.image_path, args.tags, salt=args.salt or args.tags[0])
    print(f"{args.host}/{args.image_path}:{','.join(args.tags)} {digest}")


if __name__ == "__main__":
    main()
