"""The names of an automation's templates, as problems give them (their config fields).

Apart from `bot.update.templates` so that reading a config loads no Jinja2
until it has a template to check.
"""

COMMIT_MESSAGE = "messageTemplate"
PR_TITLE = "pullRequest.title"
PR_BODY = "pullRequest.bodyTemplate"
