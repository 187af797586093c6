"""The PostgreSQL fixtures themselves: a real server, a fresh database per test."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

import psycopg
import pytest

from tests.postgres import (
    SERVER_OS_USER,
    PostgresServer,
    PostgresUnavailable,
    find_bindir,
    fresh_database,
)


def _tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    return sorted(name for (name,) in rows)


def test_url_names_a_fresh_database_on_the_server(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    match = re.fullmatch(r"postgresql://postgres@127\.0\.0\.1:(\d+)/(t_[0-9a-f]{32})", postgres_url)
    assert match, postgres_url
    assert int(match[1]) == postgres_server.port
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (
            match[2],
            "postgres",
        )


def test_write_then_read_back_on_a_new_connection(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes (body) VALUES (%s), (%s)", ("héllo", "wörld"))
    # Leaving the block committed; a second connection sees only committed data.
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT body FROM notes ORDER BY id").fetchall()
    assert rows == [("héllo",), ("wörld",)]


@pytest.mark.parametrize("run", [1, 2])
def test_every_test_starts_with_an_empty_database(postgres_url: str, run: int) -> None:
    # Whichever of the two runs second would find the other's table if they shared one.
    with psycopg.connect(postgres_url) as conn:
        assert _tables(conn) == []
        conn.execute("CREATE TABLE leftover (run int)")
        conn.execute("INSERT INTO leftover VALUES (%s)", (run,))


def test_two_databases_are_distinct(postgres_url: str, postgres_server: PostgresServer) -> None:
    with fresh_database(postgres_server) as other_url:
        assert other_url != postgres_url
        with psycopg.connect(postgres_url) as first, psycopg.connect(other_url) as second:
            first.execute("CREATE TABLE only_here (x int)")
            first.commit()
            assert _tables(first) == ["only_here"]
            assert _tables(second) == []
            names = {c.execute("SELECT current_database()").fetchone()[0] for c in (first, second)}
            assert len(names) == 2


def test_skip_locked_skips_a_row_locked_by_another_connection(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE jobs (id int PRIMARY KEY)")
        conn.execute("INSERT INTO jobs VALUES (1), (2), (3)")
    claim = "SELECT id FROM jobs ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    with psycopg.connect(postgres_url) as a, psycopg.connect(postgres_url) as b:
        # A broken lock would make the test fail, not hang.
        b.execute("SET lock_timeout = '5s'")
        b.commit()
        assert (
            a.execute("SELECT pg_backend_pid()").fetchone()
            != b.execute("SELECT pg_backend_pid()").fetchone()
        )
        a.rollback()
        b.rollback()

        assert a.execute(claim).fetchone() == (1,)  # a's transaction stays open: row 1 locked
        assert b.execute(claim).fetchone() == (2,)
        # The lock is real: without SKIP LOCKED, b cannot have row 1.
        with pytest.raises(psycopg.errors.LockNotAvailable):
            b.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE NOWAIT")
        b.rollback()

        a.commit()  # releases row 1
        assert b.execute(claim).fetchone() == (1,)
        b.rollback()


def test_fresh_database_is_dropped_even_while_connected(postgres_server: PostgresServer) -> None:
    with fresh_database(postgres_server) as url:
        name = url.rsplit("/", 1)[1]
        lingering = psycopg.connect(url)
        lingering.execute("SELECT 1")
    try:
        with postgres_server.connect() as admin:
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            assert found.fetchone() is None
        with pytest.raises(psycopg.OperationalError):
            lingering.execute("SELECT 1")  # WITH (FORCE) terminated it
    finally:
        lingering.close()


def test_server_is_configured_for_tests(postgres_url: str, postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_url) as conn:

        def show(setting: str) -> str:
            return conn.execute(f"SHOW {setting}").fetchone()[0]

        assert show("fsync") == "off"
        assert show("listen_addresses") == "127.0.0.1"
        assert show("server_encoding") == "UTF8"
        assert Path(show("unix_socket_directories")) == postgres_server.root
        assert Path(show("data_directory")).resolve() == postgres_server.datadir.resolve()
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    # initdb refuses root, so as root the server must run as the postgres user.
    uid = os.stat(f"/proc/{backend}").st_uid
    expected = pwd.getpwnam(SERVER_OS_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == expected


def _fake_bindir(
    directory: Path, names: tuple[str, ...] = ("initdb", "pg_ctl", "postgres")
) -> Path:
    directory.mkdir(parents=True)
    for name in names:
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    return directory


def test_bindir_prefers_path_then_the_newest_version(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    _fake_bindir(lib / "9.6" / "bin")
    v15 = _fake_bindir(lib / "15" / "bin")
    _fake_bindir(lib / "16" / "bin", names=("initdb", "pg_ctl"))  # no postgres: unusable
    assert find_bindir(path="", lib_root=lib) == v15  # 15 > 9.6 numerically
    v17 = _fake_bindir(lib / "17" / "bin")
    assert find_bindir(path="", lib_root=lib) == v17
    # PATH wins; a symlinked initdb (like /usr/local/bin/initdb) leads to its real directory.
    on_path = tmp_path / "bin"
    on_path.mkdir()
    (on_path / "initdb").symlink_to(v15 / "initdb")
    assert find_bindir(path=str(on_path), lib_root=lib) == v15


def test_missing_binaries_name_the_package_to_install(tmp_path: Path) -> None:
    _fake_bindir(tmp_path / "15" / "bin", names=("psql",))
    with pytest.raises(PostgresUnavailable, match=r"apt-get install postgresql"):
        find_bindir(path=str(tmp_path), lib_root=tmp_path)
    with pytest.raises(PostgresUnavailable, match=r"apt-get install postgresql"):
        find_bindir(path="", lib_root=tmp_path / "absent")
