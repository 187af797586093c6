"""URLs in messages lose what can hold a secret: userinfo, query and fragment."""

from __future__ import annotations

import logging
import sys

from bot.redact import ScrubbingFormatter, safe_url, scrub


def test_a_url_keeps_scheme_host_port_and_path_only():
    assert safe_url("https://u:p@r.example:5000/v2/x/tags/list?n=1&token=s#f") == (
        "https://r.example:5000/v2/x/tags/list"
    )
    assert safe_url("/repos/o/r/tarball/abc?token=s") == "/repos/o/r/tarball/abc"


def test_every_url_in_a_text_is_scrubbed_and_the_rest_kept():
    text = (
        "GET https://codeload.github.com/o/r/legacy.tar.gz/abc?token=SECRET failed; "
        "then s3://bucket/key?X-Amz-Signature=SIG and http://[::1]:8080/a?b=SECRET2."
    )
    scrubbed = scrub(text)
    assert "SECRET" not in scrubbed and "SIG" not in scrubbed
    assert scrubbed.startswith("GET https://codeload.github.com/o/r/legacy.tar.gz/abc failed; ")
    assert "http://[::1]:8080/a" in scrubbed
    # Punctuation after a URL ends the sentence, not the URL.
    assert scrub("the token server http://127.0.0.1:5000: not trusted.") == (
        "the token server http://127.0.0.1:5000: not trusted."
    )
    assert scrub("see https://h.example/p?token=s.") == "see https://h.example/p."


def test_log_lines_and_their_tracebacks_are_scrubbed():
    formatter = ScrubbingFormatter("%(message)s")
    try:
        raise RuntimeError("fetching https://x.example/p?sig=TRACEBACK-SECRET")
    except RuntimeError:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "GET %s", ("https://u:pw@h/p?token=ARG",), True
        )
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "GET https://h/p" in line and "RuntimeError" in line
    assert "pw" not in line and "ARG" not in line and "TRACEBACK-SECRET" not in line
