"""Webhook handlers: one gidgethub `Router` per feature module, composed here.

Every callback has the shape ``async def cb(event, services)``.
"""

from gidgethub.routing import Router

from bot.handlers import installation, packages, pull_request, push
from bot.handlers.context import Services

router = Router(installation.router, push.router, pull_request.router, packages.router)

__all__ = ["Services", "router"]
