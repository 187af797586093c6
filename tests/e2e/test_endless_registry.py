"""A registry can't make a scan endless (issue 8 §8), through `python -m bot serve`: an
endless chain of tag pages costs `REGISTRY_MAX_PAGES` requests per scan, and the check run
says so at the policy."""

from __future__ import annotations

import pytest
from aiohttp import web

from bot.config import CONFIG_PATH
from tests.e2e.conftest import REPOSITORY, config, install, line_of, manifest
from tests.e2e.served import serving
from tests.registry.edges import Edge, tags_json

pytestmark = pytest.mark.e2e

PATH = "team/endless"
TAGS = f"/v2/{PATH}/tags/list"


async def test_an_endless_chain_of_tag_pages_stops_at_the_operators_page_limit(
    tmp_path, github_sim, app_key
):
    served = 0

    async def endless(request: web.Request) -> web.Response:
        nonlocal served
        served += 1
        response = tags_json(PATH, [f"5.0.{served}"])
        response.headers["Link"] = f'<{TAGS}?n=1000&last=5.0.{served}>; rel="next"'
        return response

    registry = await Edge(endless).start()
    image = f"{registry.host}/{PATH}"
    try:
        async with serving(tmp_path, github_sim, app_key, REGISTRY_MAX_PAGES="7") as bot:
            text = config(image)
            head = install(
                bot, {CONFIG_PATH: text.encode(), "deploy/app.yaml": manifest(image, "5.0.0")}
            )
            check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
            pages = len(registry.requests)
    finally:
        await registry.stop()

    (annotation,) = check["annotations"]
    assert annotation["annotation_level"] == "failure"
    assert annotation["start_line"] == line_of(text, "imagePolicies:") + 1
    assert annotation["message"].startswith(f"{image}: the tag list goes on for more than 7 pages")
    assert pages % 7 == 0 and pages >= 7  # whole scans of 7 pages, never more
    assert bot.open_pulls(REPOSITORY) == []
