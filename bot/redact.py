"""Keep secrets that ride in URLs out of logs, errors and check runs.

A URL can carry a credential in two places: its userinfo
(``https://user:pass@host``) and its query (codeload's ``?token=``, a storage
bucket's signed ``X-Amz-Signature=``). Messages keep the scheme, host, port
and path, which are what a person needs to act, and lose the rest.
"""

from __future__ import annotations

import logging
import re

from yarl import URL

#: A URL inside free text: a scheme, ``://``, then up to whitespace or a quote.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>(){}]+")


def safe_url(url: str | URL) -> str:
    """`url` without userinfo, query or fragment."""
    parsed = url if isinstance(url, URL) else URL(str(url))
    if not parsed.is_absolute():
        return str(parsed.with_query(None).with_fragment(None))
    return str(parsed.with_user(None).with_query(None).with_fragment(None))


#: Punctuation that ends a sentence rather than the URL before it.
_TRAILING = ".,;:!?"


def scrub(text: str) -> str:
    """`text` with every URL in it made `safe_url`."""
    return _URL_IN_TEXT.sub(lambda match: _safe_or_hidden(match.group(0)), text)


def _safe_or_hidden(candidate: str) -> str:
    url = candidate.rstrip(_TRAILING)
    try:
        return safe_url(url) + candidate[len(url) :]
    except ValueError:  # not a URL yarl can read: say nothing of it
        return "<url>"


class ScrubbingFormatter(logging.Formatter):
    """Formats a record, traceback included, then scrubs the URLs in the text."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))
