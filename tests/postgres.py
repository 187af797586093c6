"""A real, throwaway PostgreSQL server for the tests: no mocks.

One server per test session (per xdist worker, if xdist is in use), started only
when a test asks for it, in a temp directory that is removed afterwards. Each test
gets its own fresh database on it. Uses Debian's ``postgresql`` package binaries
(``initdb``, ``pg_ctl``, ``postgres``); nothing here is a test.

The conftest turns `PostgresServer` into the ``postgres_server`` fixture and
`fresh_database` into ``postgres_url``.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tests.registryharness.registry_proc import free_port

INSTALL_HINT = "install Debian's PostgreSQL server: apt-get install postgresql"
DEBIAN_LIB_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
# initdb refuses to run as root, so as root the server runs as this system user,
# which Debian's postgresql package creates.
SERVER_OS_USER = "postgres"
_NEEDED = ("initdb", "pg_ctl", "postgres")
# /dev/shm is faster (initdb ~0.45 s instead of ~0.75 s) but Docker's default
# is only 64 MiB, too small for a cluster plus WAL plus the server's own shared memory.
_MIN_SHM_FREE = 512 * 1024 * 1024


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the server would not start."""


def _is_bindir(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _NEEDED)


def _version_key(directory: Path) -> tuple[int, ...]:
    # Numeric, so that 9.6 < 15 < 16.
    return tuple(int(part) for part in re.findall(r"\d+", directory.name)) or (-1,)


def find_bindir(path: str | None = None, lib_root: Path = DEBIAN_LIB_ROOT) -> Path:
    """The directory holding initdb, pg_ctl and postgres: PATH first, then the newest
    ``lib_root/<version>/bin``. ``path`` defaults to $PATH."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb", path=os.environ.get("PATH", "") if path is None else path)
    if initdb:
        # /usr/local/bin/initdb may be a symlink; pg_ctl and postgres sit beside its target.
        candidates.append(Path(os.path.realpath(initdb)).parent)
    if lib_root.is_dir():
        versions = sorted((d for d in lib_root.iterdir() if d.is_dir()), key=_version_key)
        candidates.extend(d / "bin" for d in reversed(versions))
    for directory in candidates:
        if _is_bindir(directory):
            return directory
    raise PostgresUnavailable(
        f"PostgreSQL server binaries ({', '.join(_NEEDED)}) not found on PATH or under "
        f"{lib_root}/*/bin: {INSTALL_HINT}"
    )


def _world_searchable(directory: Path) -> bool:
    return all(os.stat(d).st_mode & 0o001 for d in (directory, *directory.parents))


def _temp_root(as_root: bool) -> Path:
    base = Path(tempfile.gettempdir())
    shm = Path("/dev/shm")
    with suppress(OSError):
        stat = os.statvfs(shm)
        if os.access(shm, os.W_OK) and stat.f_bavail * stat.f_frsize >= _MIN_SHM_FREE:
            base = shm
    # As root the server user must reach the directory; a TMPDIR under /root would not do.
    if as_root and not _world_searchable(base):
        base = Path("/tmp")
    return Path(tempfile.mkdtemp(prefix="iab-pg-", dir=base))


@dataclass
class PostgresServer:
    """A running server: superuser ``postgres``, trust auth, TCP on 127.0.0.1 only."""

    host: str
    port: int
    root: Path  # temp dir: data/, the log, the unix socket
    bindir: Path
    as_user: str | None  # run pg_ctl through runuser as this user (when we are root)
    startup_seconds: float = 0.0

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str) -> str:
        """A libpq URL for ``dbname``. SQLAlchemy wants ``postgresql+psycopg://`` instead."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", *, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), autocommit=autocommit)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its name (``url(name)`` reaches it). It
        lives until `drop_database` or the end of the session; share it between
        processes by handing them its URL."""
        name = name or f"t_{uuid.uuid4().hex}"
        with self.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args])

    def stop(self) -> None:
        """Stop at once (nothing here needs to survive) and remove the temp dir."""
        try:
            if (self.datadir / "postmaster.pid").exists():
                self.pg_ctl("-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _child_env() -> dict[str, str]:
    # PG* variables (PGPORT, PGDATA, PGOPTIONS, ...) from the caller must not leak in.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _run(where: PostgresServer, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    cmd = list(argv)
    if where.as_user:
        cmd = ["runuser", "-u", where.as_user, "--", *cmd]
    # cwd: the server user may not be able to read the caller's working directory.
    proc = subprocess.run(
        cmd, cwd=where.root, env=_child_env(), capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        log = where.logfile.read_text(errors="replace")[-4000:] if where.logfile.exists() else ""
        raise PostgresUnavailable(
            f"{shlex.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}{log}"
        )
    return proc


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and initdb refuses root; there is no {SERVER_OS_USER!r} "
            f"user to run it as: {INSTALL_HINT}"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root but runuser (util-linux) is missing")
    return SERVER_OS_USER


def start_server(bindir: Path | None = None, attempts: int = 3) -> PostgresServer:
    """initdb a fresh cluster in a temp dir and start it on a free loopback port."""
    began = time.monotonic()
    bindir = bindir or find_bindir()
    as_user = _server_user()
    root = _temp_root(as_root=as_user is not None)
    server = PostgresServer("127.0.0.1", 0, root, bindir, as_user)
    try:
        if as_user:
            shutil.chown(root, user=as_user)
        initdb = [str(bindir / "initdb"), "-D", str(server.datadir)]
        # --no-sync: the cluster is thrown away; C locale: works with UTF8 whatever
        # the environment's locale is (or whether it is installed at all).
        initdb += ["-A", "trust", "-U", SUPERUSER, "--no-sync", "-E", "UTF8", "--locale=C"]
        if "--no-instructions" in _run(server, [initdb[0], "--help"]).stdout:
            initdb.append("--no-instructions")
        _run(server, initdb)
        for attempt in range(attempts):
            server.port = free_port()
            # -F: fsync off, for speed; -k: the unix socket in our temp dir, not /run.
            options = f"-h 127.0.0.1 -p {server.port} -k {shlex.quote(str(root))} -F"
            try:
                server.pg_ctl("-w", "-t", "60", "-l", str(server.logfile), "-o", options, "start")
                break
            except PostgresUnavailable:
                # Someone may have taken the free port between our check and the bind.
                if attempt == attempts - 1:
                    raise
    except BaseException:
        server.stop()
        raise
    server.startup_seconds = time.monotonic() - began
    return server


@contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """A new empty database for the block; yields its URL, drops it afterwards."""
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)
