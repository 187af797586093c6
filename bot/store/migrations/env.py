"""Alembic's entry: migrations run on the connection `bot.store.database.upgrade` holds.

That connection is already inside the transaction that holds the migration
lock, so every step, and the version stamp, commit together or not at all.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
