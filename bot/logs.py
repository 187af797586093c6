"""Log lines for people (``text``) or for collectors (``json``), secrets scrubbed.

``LOG_FORMAT`` picks the rendering: ``text`` (the default, for a terminal) or
``json`` (one object per line; the Docker image sets it). ``LOG_LEVEL`` picks
the threshold: ``info`` by default; ``trace``, ``warn`` and ``fatal`` are read
as ``debug``, ``warning`` and ``critical``.

The code logs with the standard library, ``logging.getLogger(__name__)`` and
%-style arguments; those records are rendered by structlog's
`~structlog.stdlib.ProcessorFormatter`. ``structlog.get_logger()`` works too
and ends in the same handler.

Context rides in context variables: ``with log_context(repository="o/r"):``
adds ``repository=o/r`` to every line logged inside the block, in that task and
in the tasks it starts, and nowhere else. Lines are rendered synchronously in
the logging call, so the context read is the caller's. (A thread started with
``loop.run_in_executor`` does not inherit context variables; an
``asyncio.to_thread`` one does.) `set_replica` names the process once for all
its lines, threads included.

Every rendered line, traceback included, goes through `bot.redact.scrub`:
URLs keep scheme, host, port and path, and lose userinfo, query and fragment,
where tokens and signatures ride. In ``json`` the string values are scrubbed
before encoding, so scrubbing never touches the JSON syntax.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict

from bot.redact import scrub

#: Values of ``LOG_FORMAT``; the first is the default.
LOG_FORMATS = ("text", "json")

#: Context keys, in the order lines show them.
CONTEXT_KEYS = ("replica", "delivery", "installation", "repository", "automation")

#: Keys every line has; context may not take their names.
_LINE_KEYS = ("time", "level", "logger", "message")
_RESERVED = frozenset((*_LINE_KEYS, "exception", "stack", "event"))

_LEVEL_ALIASES = {"TRACE": "DEBUG", "FATAL": "CRITICAL", "WARN": "WARNING"}

_replica: str | None = None

#: The keys `log_context` bound, as one mapping: one context variable set and reset per
#: block (every run enters a few blocks, so this is on the no-op path).
_context: ContextVar[Mapping[str, object]] = ContextVar(
    "bot_log_context", default=MappingProxyType({})
)


def set_replica(replica: str | None) -> None:
    """Name this process (e.g. a pod name) on every line it logs; None stops it."""
    global _replica
    _replica = replica or None


@contextmanager
def log_context(
    *,
    delivery: str | None = None,
    installation: int | str | None = None,
    repository: str | None = None,
    automation: str | None = None,
    **extra: object,
) -> Iterator[None]:
    """Add the given (non-None) keys to every line logged inside the block.

    The keys are context-local: they follow the asyncio tasks started inside
    the block and do not reach concurrent tasks. On exit each key gets back
    the value it had before (or goes).
    """
    if extra:
        clash = _RESERVED.intersection(extra)
        if clash:
            raise ValueError(f"log_context cannot bind {', '.join(sorted(clash))}: reserved keys")
    bound = dict(_context.get())
    for key, value in (
        ("delivery", delivery),
        ("installation", installation),
        ("repository", repository),
        ("automation", automation),
        *extra.items(),
    ):
        if value is not None:
            bound[key] = value
    token = _context.set(bound)
    try:
        yield
    finally:
        _context.reset(token)


def _merge_context(_logger: object, _method: str, event: EventDict) -> EventDict:
    for key, value in _context.get().items():
        event.setdefault(key, value)
    return event


def configure_logging(environ: Mapping[str, str], stream: TextIO | None = None) -> None:
    """Send the root logger's lines to `stream` (stderr) as ``LOG_FORMAT`` says.

    Raises ValueError when ``LOG_FORMAT`` is neither ``text`` nor ``json``.
    Calling it again replaces the handler it installed before; other handlers
    on the root logger are left alone.
    """
    name = environ.get("LOG_FORMAT", "").strip().lower() or LOG_FORMATS[0]
    if name not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {name!r}")
    renderer = _render_json if name == "json" else _render_text

    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _stack_text,
                structlog.processors.format_exc_info,
                structlog.processors.EventRenamer("message"),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(_level(environ))

    # structlog's own loggers hand their event dicts to the same handler.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _level(environ: Mapping[str, str]) -> int:
    name = environ.get("LOG_LEVEL", "info").strip().upper() or "INFO"
    name = _LEVEL_ALIASES.get(name, name)
    # An unknown name falls back to info, as it always has.
    return logging.getLevelNamesMapping().get(name, logging.INFO)


class _Handler(logging.StreamHandler):
    """A stream handler whose own failure report is scrubbed too.

    The standard one prints the record's message and arguments as they are,
    a token in an argument included.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        if not logging.raiseExceptions:
            return
        error = sys.exc_info()[1]
        try:
            self.stream.write(
                scrub(
                    f"--- logging error: {error!r} formatting {record.msg!r} "
                    f"with {record.args!r} from {record.name} "
                    f"({record.pathname}:{record.lineno})"
                )
                + self.terminator
            )
            self.flush()
        except Exception:  # nowhere left to say it
            pass


# --- processors ------------------------------------------------------------


def _add_time(_logger: object, _method: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    created = record.created if record is not None else time.time()
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    event["time"] = stamp.replace("+00:00", "Z")
    return event


def _add_replica(_logger: object, _method: str, event: EventDict) -> EventDict:
    if _replica is not None:
        event.setdefault("replica", _replica)
    return event


#: Run on every line, before the formatter's own processors: for standard
#: records in the formatter (``foreign_pre_chain``), for structlog's at the call.
_SHARED = (
    _merge_context,
    # Keys bound with structlog's own ``bind_contextvars``, for ``structlog.get_logger()``.
    structlog.contextvars.merge_contextvars,
    # ``log.info(..., extra={...})`` keys become fields (the scheduler's run times).
    structlog.stdlib.ExtraAdder(),
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    _add_time,
    _add_replica,
)


def _stack_text(_logger: object, _method: str, event: EventDict) -> EventDict:
    # A standard record's stack_info is already text (``stack_info=True``).
    stack = event.pop("stack_info", None)
    if isinstance(stack, str):
        event["stack"] = stack
    return event


def _ordered(event: EventDict) -> dict[str, Any]:
    """Line keys, context keys, the rest, then exception and stack."""
    tail = {key: event.pop(key) for key in ("exception", "stack") if key in event}
    ordered = {key: event.pop(key) for key in (*_LINE_KEYS, *CONTEXT_KEYS) if key in event}
    ordered.update(event)
    ordered.update(tail)
    return ordered


def _render_json(_logger: object, _method: str, event: EventDict) -> str:
    return json.dumps(_scrubbed(_ordered(event)))


def _scrubbed(value: Any) -> Any:
    """`value` made JSON-native, every string in it scrubbed."""
    if isinstance(value, str):
        return _scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {_scrub(str(key)): _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(item) for item in value]
    return _scrub(str(value))


def _scrub(text: str) -> str:
    # `scrub` only rewrites ``scheme://...``: most values have no URL to look at.
    return scrub(text) if "://" in text else text


def _render_text(_logger: object, _method: str, event: EventDict) -> str:
    line = _ordered(event)
    text = (
        f"{line.pop('time', '')} {str(line.pop('level', '')).upper()} "
        f"{line.pop('logger', '')}: {line.pop('message', '')}"
    )
    tail = [str(line.pop(key)) for key in ("exception", "stack") if key in line]
    pairs = "".join(f" {key}={_text_value(value)}" for key, value in line.items())
    return scrub("\n".join([text + pairs, *tail]))


def _text_value(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text
