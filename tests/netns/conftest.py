"""The SSRF tests run only inside the loopback-only network namespace.

tests/e2e/test_ssrf.py starts them there (``BOT_NETNS=1``, see
`tests.netns.hostile.namespace_command`). Anywhere else they are not collected
at all (not skipped): they bind and connect to link-local and private
addresses, which only exist on the namespace's own ``lo``.
"""

from __future__ import annotations

import os

import pytest

from tests.netns.hostile import NETNS_VARIABLE, Listener, in_loopback_only_namespace

if os.environ.get(NETNS_VARIABLE) != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True)
def _only_inside_the_namespace():
    """Never touch the hostile addresses outside the namespace, even if collected by mistake."""
    if not in_loopback_only_namespace():
        pytest.fail(f"{NETNS_VARIABLE}=1 but this is not a loopback-only network namespace")


@pytest.fixture
async def hostile():
    """One dual-stack listener on every address on a fresh port, and on 80 and 443.

    It records every connection to any of the namespace's addresses on those ports.
    """
    listener = Listener()
    listener.port = await listener.listen("::", 0, dual_stack=True)
    for port in (80, 443):
        await listener.listen("::", port, dual_stack=True)
    try:
        yield listener
    finally:
        await listener.close()
