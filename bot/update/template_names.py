"""An automation's templates as problems name them (their config fields), the default
commit message, and the error every template failure is.

Apart from `bot.update.templates` so that reading a config, or planning with the
default texts, loads no Jinja2 until there is a template to check or render.
"""

COMMIT_MESSAGE = "messageTemplate"
PR_TITLE = "pullRequest.title"
PR_BODY = "pullRequest.bodyTemplate"

#: Flux's default commit message; it holds no template syntax, so it is used as it is.
DEFAULT_COMMIT_MESSAGE = "Update from image update automation"


class TemplateError(Exception):
    """A template failed to parse or render; ``str()`` is ``<name>:<line>: <message>``."""

    def __init__(self, name: str, line: int, message: str) -> None:
        super().__init__(name, line, message)
        self.name = name
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.name}:{self.line}: {self.message}"
