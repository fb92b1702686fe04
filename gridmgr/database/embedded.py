"""The embedded PostgreSQL + PostGIS cluster that gridmgr runs under its instance folder.

With no ``DATABASE_URL`` gridmgr keeps its own cluster in ``$GRIDMGR_HOME/pgdata``, started
on demand from the system's PostgreSQL binaries. It listens on a private Unix socket only
(``listen_addresses=''``), so several instances run side by side without port clashes.
PostgreSQL refuses to run as root: when we are root, the cluster belongs to the ``postgres``
system user and its commands run through ``runuser``.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "gridmgr"
DB_USER = "gridmgr"
PORT = 5432  # only names the socket file; nothing listens on TCP
_SOCKET_PATH_MAX = 100  # Unix socket paths are limited to ~107 bytes


class EmbeddedDatabaseError(RuntimeError):
    """The embedded cluster could not be created or started."""


def _postgres_bindir() -> Path:
    """The newest installed PostgreSQL whose share folder has the PostGIS extension."""
    explicit = os.environ.get("GRIDMGR_PG_BINDIR")
    if explicit:
        return Path(explicit)
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name), reverse=True)
    for initdb in candidates:
        version = initdb.parent.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return initdb.parent
    if candidates:
        raise EmbeddedDatabaseError(
            "PostGIS is not installed for the local PostgreSQL; run `make postgis` "
            "(apt-get install postgresql-15-postgis-3) or set DATABASE_URL.")
    raise EmbeddedDatabaseError(
        "No PostgreSQL server binaries found under /usr/lib/postgresql; "
        "install postgresql or set DATABASE_URL.")


@dataclass(frozen=True)
class EmbeddedCluster:
    """One embedded cluster, identified by its instance folder."""

    home: Path

    @property
    def datadir(self) -> Path:
        return self.home / "pgdata"

    @property
    def logfile(self) -> Path:
        return self.home / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        preferred = self.home / "run"
        if len(str(preferred)) + len("/.s.PGSQL.5432") <= _SOCKET_PATH_MAX:
            return preferred
        # A deep instance folder would overflow the socket path: use a short, stable one.
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"gridmgr-{digest}"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{DB_USER}@/{DB_NAME}?host={self.socket_dir}&port={PORT}"

    # -- running commands as the cluster's owner ------------------------------------
    def _owner(self) -> str | None:
        """The system user that owns the cluster when we run as root, else None."""
        return "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(_postgres_bindir() / args[0]), *args[1:]]
        owner = self._owner()
        if owner:
            cmd = ["runuser", "-u", owner, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def _prepare_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        owner = self._owner()
        if owner and subprocess.run(["runuser", "-u", owner, "--", "test", "-x", str(self.home)],
                                    check=False).returncode != 0:
            raise EmbeddedDatabaseError(
                f"The '{owner}' system user, which runs the embedded PostgreSQL when gridmgr "
                f"runs as root, cannot enter {self.home}; choose a GRIDMGR_HOME it can reach "
                "(every parent folder needs o+x) or set DATABASE_URL.")
        for path in (self.datadir, self.socket_dir):
            path.mkdir(mode=0o700 if path == self.datadir else 0o755, exist_ok=True)
            owner = self._owner()
            if owner:
                entry = pwd.getpwnam(owner)
                os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- lifecycle ---------------------------------------------------------------------
    def is_initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.datadir), check=False).returncode == 0

    def start(self) -> bool:
        """Create the cluster if needed and start it; True when it was not running before."""
        if self.is_running():
            return False
        self._prepare_dirs()
        if not self.is_initialised():
            try:
                self._run("initdb", "-D", str(self.datadir), "-U", DB_USER, "--auth=trust",
                          "-E", "UTF8", "--locale=C.UTF-8")
            except subprocess.CalledProcessError as exc:
                raise EmbeddedDatabaseError(f"initdb failed: {exc.stderr.strip()}") from exc
        options = (f"-k {self.socket_dir} -p {PORT} -c listen_addresses='' "
                   "-c max_parallel_workers_per_gather=0")
        owner = self._owner()
        if owner:
            self.logfile.touch()
            entry = pwd.getpwnam(owner)
            os.chown(self.logfile, entry.pw_uid, entry.pw_gid)
        result = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir),
                           "-l", str(self.logfile), "-o", options, check=False)
        if result.returncode != 0:
            tail = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise EmbeddedDatabaseError(f"could not start PostgreSQL: {result.stderr}{tail}")
        self._ensure_database()
        return True

    def stop(self) -> bool:
        """Stop the cluster; True when it was running."""
        if not self.is_running():
            return False
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.datadir))
        return True

    def status(self) -> str:
        if not self.is_initialised():
            return f"not created ({self.datadir})"
        state = "running" if self.is_running() else "stopped"
        return f"{state} ({self.datadir}, socket {self.socket_dir})"

    def _ensure_database(self) -> None:
        psql = ["psql", "-X", "-q", "-h", str(self.socket_dir), "-p", str(PORT), "-U", DB_USER,
                "-v", "ON_ERROR_STOP=1"]
        exists = self._run(*psql, "-d", "postgres", "-tAc",
                           f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'")
        if exists.stdout.strip() != "1":
            self._run(*psql, "-d", "postgres", "-c", f"CREATE DATABASE {DB_NAME}")
        self._run(*psql, "-d", DB_NAME, "-c", "CREATE EXTENSION IF NOT EXISTS postgis")

