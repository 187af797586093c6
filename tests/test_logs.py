"""LOG_FORMAT json|text, context that follows tasks, and scrubbed lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import threading

import pytest
import structlog

from bot.logs import configure_logging, log_context, set_replica

SECRETS = ("abc", "pass", "SIG", "ARGSECRET", "TBSECRET")


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level, logger_class = root.handlers[:], root.level, logging.getLoggerClass()
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logging.setLoggerClass(logger_class)  # structlog's LoggerFactory sets its own
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    set_replica(None)


def configured(**environ: str) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(environ, stream=stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_json_lines_carry_time_level_logger_message_and_context():
    stream = configured(LOG_FORMAT="json")
    log = logging.getLogger("bot.test")
    with log_context(delivery="d-1", installation=42, repository="o/r", automation=None):
        log.info("planned %d files in %s", 3, "o/r")
    log.warning("outside")

    inside, outside = json_lines(stream)
    assert inside["message"] == "planned 3 files in o/r"
    assert inside["level"] == "info" and inside["logger"] == "bot.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", inside["time"])
    assert inside["delivery"] == "d-1" and inside["installation"] == 42
    assert inside["repository"] == "o/r"
    assert "automation" not in inside  # None is not bound
    assert "event" not in inside and "exception" not in inside
    assert list(inside)[:4] == ["time", "level", "logger", "message"]
    assert outside["level"] == "warning"
    assert not {"delivery", "installation", "repository"} & outside.keys()


def test_nested_context_restores_the_outer_values():
    stream = configured(LOG_FORMAT="json")
    log = logging.getLogger("bot.test")
    with log_context(repository="o/outer", delivery="d"):
        with log_context(repository="o/inner", automation="auto"):
            log.info("inner")
        log.info("outer again")
    first, second = json_lines(stream)
    assert (first["repository"], first["automation"], first["delivery"]) == ("o/inner", "auto", "d")
    assert second["repository"] == "o/outer" and "automation" not in second


async def test_concurrent_tasks_do_not_see_each_others_context():
    stream = configured(LOG_FORMAT="json")
    log = logging.getLogger("bot.test")
    both_bound = asyncio.Barrier(2)

    async def automation(name: str) -> None:
        await asyncio.sleep(0)
        log.info("automation of %s", name)

    async def delivery(repository: str) -> None:
        with log_context(repository=repository, delivery=f"d-{repository}"):
            await both_bound.wait()  # the other task has bound its own by now
            log.info("handling %s", repository)
            # A task started inside follows the context, and adds its own.
            with log_context(automation="nested"):
                await asyncio.create_task(automation(repository))
            await asyncio.sleep(0)
            log.info("done %s", repository)

    await asyncio.gather(delivery("o/a"), delivery("o/b"))
    log.info("after")

    lines = json_lines(stream)
    assert len(lines) == 7
    for line in lines[:-1]:
        repository = line["message"].split()[-1]
        assert line["repository"] == repository, line
        assert line["delivery"] == f"d-{repository}", line
        assert ("automation" in line) == line["message"].startswith("automation"), line
    assert {line["repository"] for line in lines[:-1]} == {"o/a", "o/b"}
    assert "repository" not in lines[-1] and "delivery" not in lines[-1]


def test_text_lines_keep_the_human_format_with_context_as_pairs():
    stream = configured()  # text is the default
    log = logging.getLogger("bot.web")
    with log_context(delivery="abc-123", repository="o/r", automation="nightly build"):
        log.info("accepted %s", "push")
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO bot\.web: accepted push"
        r' delivery=abc-123 repository=o/r automation="nightly build"\n',
        line,
    ), line


def test_replica_is_on_every_line_threads_included():
    stream = configured(LOG_FORMAT="json")
    set_replica("bot-0")
    thread = threading.Thread(target=logging.getLogger("bot.thread").info, args=("in a thread",))
    thread.start()
    thread.join()
    (line,) = json_lines(stream)
    assert line["replica"] == "bot-0" and line["message"] == "in a thread"


def _log_secrets(log: logging.Logger) -> None:
    log.info("GET https://user:pass@host/x?token=abc failed")
    log.warning("fetching %s", "https://r.example/v2/?X-Amz-Signature=SIG&token=ARGSECRET")
    try:
        raise RuntimeError("download https://u:TBSECRET@codeload.example/o/r?token=abc")
    except RuntimeError:
        log.exception("crawl failed for %s", "https://h.example/p?token=abc")


def test_json_scrubs_message_args_and_tracebacks_and_stays_json():
    stream = configured(LOG_FORMAT="json")
    with log_context(repository="https://user:pass@host/o/r?token=abc"):
        _log_secrets(logging.getLogger("bot.test"))
    raw = stream.getvalue()
    for secret in SECRETS:
        assert secret not in raw, secret
    message, argument, failure = json_lines(stream)  # scrubbing broke no line
    assert message["message"] == "GET https://host/x failed"
    assert argument["message"] == "fetching https://r.example/v2/"
    assert message["repository"] == "https://host/o/r"
    assert failure["level"] == "error"
    assert failure["message"] == "crawl failed for https://h.example/p"
    assert failure["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: download https://codeload.example/o/r" in failure["exception"]


def test_text_scrubs_message_args_and_tracebacks():
    stream = configured(LOG_FORMAT="text")
    _log_secrets(logging.getLogger("bot.test"))
    raw = stream.getvalue()
    for secret in SECRETS:
        assert secret not in raw, secret
    assert "ERROR bot.test: crawl failed for https://h.example/p\nTraceback" in raw
    assert "RuntimeError: download https://codeload.example/o/r" in raw
    assert "GET https://host/x failed" in raw


def test_a_broken_record_is_reported_scrubbed():
    stream = configured(LOG_FORMAT="json")
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is stream]
    # Straight to the handler: pytest's own capturing handler re-raises the error.
    handler.handle(
        logging.makeLogRecord(
            {"name": "bot.test", "msg": "%d items", "args": ("https://h/p?token=abc",)}
        )
    )
    report = stream.getvalue()
    assert "logging error" in report and "https://h/p" in report
    assert "abc" not in report


@pytest.mark.parametrize("value", ["xml", "JSONL", "logfmt"])
def test_an_unknown_log_format_is_refused_by_name(value):
    with pytest.raises(ValueError, match=r"LOG_FORMAT.*text, json") as caught:
        configure_logging({"LOG_FORMAT": value}, stream=io.StringIO())
    assert value.lower() in str(caught.value)


def test_log_format_is_read_case_blind():
    stream = configured(LOG_FORMAT=" JSON ")
    logging.getLogger("bot.test").info("x")
    assert json_lines(stream)[0]["message"] == "x"


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        (None, ["info", "warning", "error"]),
        ("warn", ["warning", "error"]),
        ("trace", ["debug", "info", "warning", "error"]),
        ("fatal", []),
        ("ERROR", ["error"]),
        ("nonsense", ["info", "warning", "error"]),
    ],
)
def test_log_level_filters(level, shown):
    environ = {"LOG_FORMAT": "json"} | ({"LOG_LEVEL": level} if level else {})
    stream = io.StringIO()
    configure_logging(environ, stream=stream)
    log = logging.getLogger("bot.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["level"] for line in lines] == shown


def test_configuring_again_replaces_the_handler():
    first = configured(LOG_FORMAT="json")
    second = configured(LOG_FORMAT="text")
    logging.getLogger("bot.test").info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1


def test_structlog_loggers_end_in_the_same_lines():
    stream = configured(LOG_FORMAT="json", LOG_LEVEL="info")
    log = structlog.get_logger("bot.structured")
    with log_context(repository="o/r"):
        log.info("pushed %s", "https://x:y@h/b?token=abc", files=2)
        log.debug("hidden")
    (line,) = json_lines(stream)
    assert line["message"] == "pushed https://h/b"
    assert line["logger"] == "bot.structured" and line["level"] == "info"
    assert line["repository"] == "o/r" and line["files"] == 2


def test_context_cannot_take_a_line_key():
    with pytest.raises(ValueError, match="message"), log_context(message="x"):
        pass


def test_extra_fields_of_a_standard_record_become_json_fields():
    stream = io.StringIO()
    configure_logging({"LOG_FORMAT": "json"}, stream=stream)
    logging.getLogger("bot.scheduler").info(
        "run finished", extra={"run_started": 1.5, "run_finished": 2.5}
    )
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert (line["run_started"], line["run_finished"]) == (1.5, 2.5)
