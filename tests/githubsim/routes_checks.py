"""Check runs: create and update (annotations are appended, at most 50 per request)."""

from __future__ import annotations

from aiohttp import web

from . import shapes
from .credentials import CALLER
from .protocol import json_response, not_found, read_object, validation_failed
from .routes_repos import base_url, repo_for
from .state import CheckRun

STATUSES = {"queued", "in_progress", "completed", "waiting", "requested", "pending"}
CONCLUSIONS = {"action_required", "cancelled", "failure", "neutral", "success", "skipped",
               "timed_out"}  # fmt: skip
MAX_ANNOTATIONS = 50
ANNOTATION_FIELDS = ("path", "start_line", "end_line", "annotation_level", "message")


def _invalid(field: str, message: str | None = None):
    error = {"resource": "CheckRun", "field": field, "code": "invalid"}
    if message:
        error["message"] = message
    return validation_failed(error)


def _apply(run: CheckRun, body: dict, now: float) -> None:
    """Shared create/update semantics: `conclusion` implies completed; output merges."""
    if "status" in body:
        if body["status"] not in STATUSES:
            raise _invalid("status")
        run.status = body["status"]
    if body.get("conclusion") is not None:
        if body["conclusion"] not in CONCLUSIONS:
            raise _invalid("conclusion")
        run.conclusion = body["conclusion"]
        run.status = "completed"
    if run.status == "completed" and run.conclusion is None:
        raise _invalid("conclusion", "conclusion is required when status is completed")
    if run.status == "completed" and run.completed_at is None:
        run.completed_at = now
    for field in ("details_url", "external_id", "name"):
        if field in body:
            setattr(run, field, body[field])
    output = body.get("output")
    if output is None:
        return
    if not isinstance(output, dict) or not output.get("title") or not output.get("summary"):
        raise validation_failed(
            {
                "resource": "CheckRun",
                "field": "output",
                "code": "missing_field",
                "message": "output requires title and summary",
            }  # fmt: skip
        )
    if len(output["summary"]) > 65535 or len(output.get("text") or "") > 65535:
        raise _invalid("output", "output.summary and output.text are limited to 65535 characters")
    annotations = output.get("annotations") or []
    if len(annotations) > MAX_ANNOTATIONS:
        raise _invalid("annotations", "Only 50 annotations may be sent per request")
    for a in annotations:
        if not isinstance(a, dict) or any(f not in a for f in ANNOTATION_FIELDS):
            raise _invalid("annotations", f"each annotation needs {', '.join(ANNOTATION_FIELDS)}")
        if a["annotation_level"] not in ("notice", "warning", "failure"):
            raise _invalid("annotation_level")
    run.output.update({k: output[k] for k in ("title", "summary", "text") if k in output})
    run.annotations.extend(annotations)


async def create_check_run(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "checks", "write")
    body = await read_object(request)
    for field in ("name", "head_sha"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise validation_failed(
                {"resource": "CheckRun", "field": field, "code": "missing_field"}
            )
    if not repo.git.is_commit(body["head_sha"]):
        raise _invalid("head_sha", "No commit found for SHA: " + body["head_sha"])
    now = sim.clock()
    run = sim.new_check_run(
        name=body["name"], head_sha=body["head_sha"], status="queued", conclusion=None,
        started_at=now, completed_at=None, details_url=None, external_id=None, output={},
        annotations=[], app_id=request[CALLER].app.id,
    )  # fmt: skip
    _apply(run, body, now)
    repo.check_runs[run.id] = run
    return json_response(shapes.check_run(base_url(request), repo, run, request[CALLER].app),
                         status=201)  # fmt: skip


async def update_check_run(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "checks", "write")
    try:
        run = repo.check_runs.get(int(request.match_info["check_run_id"]))
    except ValueError:
        run = None
    if run is None:
        raise not_found()
    _apply(run, await read_object(request), sim.clock())
    return json_response(shapes.check_run(base_url(request), repo, run, request[CALLER].app))


ROUTES = [
    ("POST", "/repos/{owner}/{repo}/check-runs", create_check_run),
    ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", update_check_run),
]
