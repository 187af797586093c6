"""The tables, as they are after the newest migration (`bot/store/migrations`).

One home for each fact:

* ``deliveries``: webhook delivery ids, so a redelivered event is handled once;
* ``installations`` and the ``repositories`` they grant;
* per repository: the default-branch head and config of the last complete run
  (``config_text``: the encoded `bot.config.sources.ConfigSources`, the config
  file's own bytes when it lists no Flux manifests; ``config_sha``: their identity),
  a count of what the short-circuit can't see (``dirty``), and its place in the
  schedule: when it is due, who holds its lease until when, run requests and
  failures in a row;
* ``policies``: the latest image of each policy (Flux's observed policies), the
  only copy of it;
* ``automations``: per automation, the branch the bot writes and its PR;
* ``declined`` and ``merged``: what became of the bot's PRs;
* ``tags_seen``: when each tag of an image was first seen (``minimumReleaseAge``);
* ``repository_images`` and ``image_events``: registry push events and the
  repositories they concern;
* ``health``: the one row readiness writes.

Times are Unix seconds (float), the same on both engines.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    false,
    text,
)

metadata = MetaData()

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("event", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    Index("deliveries_received_at", "received_at"),
)

installations = Table(
    "installations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("account", Text, nullable=False, server_default=""),
    Column("suspended", Boolean, nullable=False, server_default=false()),
    Column("permissions", Text, nullable=False, server_default="{}"),
)

repositories = Table(
    "repositories",
    metadata,
    Column("full_name", Text, primary_key=True),
    Column("installation_id", Integer, nullable=False),
    Column("default_branch", Text),
    Column("head_sha", Text),
    Column("config_sha", Text),
    Column("config_text", LargeBinary),
    Column("dirty", Integer, nullable=False, server_default=text("1")),
    Column("policy_errors", Text),
    # The schedule (migration 0002).
    Column("due_at", Float),
    Column("lease_holder", Text),
    Column("lease_expires", Float),
    Column("requests", Integer, nullable=False, server_default=text("0")),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    # Automations left for their schedule's next window (migration 0003): JSON list.
    Column("deferred", Text),
    Index("repositories_due_at", "due_at"),
    Index("repositories_installation", "installation_id"),
)

policies = Table(
    "policies",
    metadata,
    Column("repository", Text, primary_key=True),
    Column("policy", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("tag", Text, nullable=False),
    Column("digest", Text, nullable=False),
)

automations = Table(
    "automations",
    metadata,
    Column("repository", Text, primary_key=True),
    Column("automation", Text, primary_key=True),
    Column("push_branch", Text, nullable=False, server_default=""),
    Column("base_branch", Text, nullable=False, server_default=""),
    Column("base_sha", Text),
    Column("written_sha", Text),
    Column("prior_sha", Text),
    Column("pr_number", Integer),
    Column("pr_title", Text),
    Column("pr_body", Text),
    Column("pr_labels", Text),
    Column("change_set", Text),
    Column("taken_over", Boolean, nullable=False, server_default=false()),
    Column("taken_over_noted", Boolean, nullable=False, server_default=false()),
    Column("released_head", Text),
)

declined = Table(
    "declined",
    metadata,
    Column("repository", Text, primary_key=True),
    Column("automation", Text, primary_key=True),
    Column("change_set", Text, primary_key=True),
    Column("pr_number", Integer),
    Column("closed_at", Float, nullable=False),
)

merged = Table(
    "merged",
    metadata,
    Column("repository", Text, primary_key=True),
    Column("automation", Text, nullable=False),
    Column("pr_number", Integer, primary_key=True, autoincrement=False),
    Column("change_set", Text),
    Column("merged_at", Float, nullable=False),
)

#: When the bot first saw each tag of an image repository (migration 0003), for
#: ``minimumReleaseAge``; 0 for the tags already there at the image's first scan.
tags_seen = Table(
    "tags_seen",
    metadata,
    Column("image", Text, primary_key=True),
    Column("tag", Text, primary_key=True),
    Column("first_seen", Float, nullable=False),
)

#: Which images (canonical names) each repository's config names (migration 0003).
repository_images = Table(
    "repository_images",
    metadata,
    Column("repository", Text, primary_key=True),
    Column("image", Text, primary_key=True),
    Index("repository_images_image", "image"),
)

#: When a registry last said an image was pushed (migration 0003).
image_events = Table(
    "image_events",
    metadata,
    Column("image", Text, primary_key=True),
    Column("pushed_at", Float, nullable=False),
)

health = Table(
    "health",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("probed_at", Float, nullable=False),
    CheckConstraint("id = 1", name="health_one_row"),
)
