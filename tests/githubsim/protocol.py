"""GitHub's wire conventions: error bodies, JSON responses, request bodies and pagination."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

DOCS = "https://docs.github.com/rest"
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


class ApiError(Exception):
    """An error answered the way GitHub does: `{"message", "documentation_url", ...}`."""

    def __init__(self, status: int, message: str, *, errors: list | None = None,
                 headers: dict[str, str] | None = None, doc: str = DOCS,
                 with_status: bool = True) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.doc = doc
        self.with_status = with_status

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        body["documentation_url"] = self.doc
        if self.with_status:
            body["status"] = str(self.status)
        return body

    def response(self) -> web.Response:
        return json_response(self.body(), status=self.status, headers=self.headers)


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def bad_credentials() -> ApiError:
    return ApiError(401, "Bad credentials")


def empty_repository() -> ApiError:
    return ApiError(409, "Git Repository is empty.")


def not_accessible() -> ApiError:
    return ApiError(403, "Resource not accessible by integration")


def validation_failed(*errors: dict, message: str = "Validation Failed") -> ApiError:
    return ApiError(422, message, errors=list(errors))


def unprocessable(message: str) -> ApiError:
    """422 without an `errors` list, e.g. "Reference already exists"."""
    return ApiError(422, message)


def missing_field(resource: str, field: str) -> ApiError:
    return validation_failed({"resource": resource, "field": field, "code": "missing_field"})


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:  # fmt: skip
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


async def read_json(request: web.Request, *, allow_empty: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise ApiError(400, "Problems parsing JSON")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "Problems parsing JSON") from exc


async def read_object(request: web.Request, *, allow_empty: bool = False) -> dict:
    body = await read_json(request, allow_empty=allow_empty)
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    return body


def page_params(request: web.Request) -> tuple[int, int]:
    try:
        per_page = int(request.query.get("per_page", DEFAULT_PER_PAGE))
        page = int(request.query.get("page", 1))
    except ValueError as exc:
        raise validation_failed(
            {"resource": "Search", "field": "per_page", "code": "invalid"}
        ) from exc
    return max(1, page), min(max(1, per_page), MAX_PER_PAGE)


def paginate(request: web.Request, items: list) -> tuple[list, dict[str, str]]:
    """One page of `items` plus a GitHub-style `Link` header (next/last/first/prev)."""
    page, per_page = page_params(request)
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []

    def url(n: int) -> str:
        return str(request.url.update_query(per_page=per_page, page=n))

    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
    return chunk, ({"Link": ", ".join(links)} if links else {})
