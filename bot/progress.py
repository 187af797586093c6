"""What `plan` shows on a terminal while it scans registries: images done out of all,
and the one it has waited for longest.

One line on stderr, rewritten in place (``\\r``), and wiped when the scans are done, so
the plan itself prints as it would without it. Only for a terminal: a pipe or a file
gets nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class ScanProgress:
    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._total = 0
        self._done = 0
        self._waiting: dict[str, float] = {}  # image -> when its scan started
        self._width = 0

    @classmethod
    def for_terminal(cls, stream: TextIO) -> ScanProgress | None:
        """A progress line on `stream` if it is a terminal, else None."""
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return cls(stream) if tty else None

    def expect(self, images: int) -> None:
        """`images` more scans are on their way."""
        self._total += images
        self._show()

    def started(self, image: str) -> None:
        self._waiting.setdefault(image, self._clock())
        self._show()

    def finished(self, image: str) -> None:
        self._waiting.pop(image, None)
        self._done += 1
        self._show()

    def close(self) -> None:
        """Wipe the line: what follows prints on a clean one."""
        if self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0

    def line(self) -> str:
        text = f"scanning registries: {self._done}/{self._total} images"
        if self._waiting:
            oldest = min(self._waiting, key=self._waiting.__getitem__)
            text += f", waiting for {oldest}"
        return text

    def _show(self) -> None:
        text = self.line()
        # Pad over what the previous, longer line left.
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = max(self._width, len(text))
