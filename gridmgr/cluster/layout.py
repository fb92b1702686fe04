"""Where the one-machine cluster lives and how its engines are configured.

Everything sits in ``$GRIDMGR_HOME/cluster``: ``cluster.json`` (the ports chosen at the first
``up`` and the process ids), the rendered configuration files, one folder per PostgreSQL node
(owned by the ``postgres`` system user when we are root) and every process's log.
"""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

NODE_NAMES = ("node1", "node2", "node3")
SERVER_NAMES = ("server1", "server2")
WORKER_NAMES = ("worker1", "worker2")
DB_NAME = "gridmgr"
DB_USER = "gridmgr"
_PORT_NAMES = ("etcd", "etcd_peer", "primary", "replica", "http",
               *(f"{n}_pg" for n in NODE_NAMES), *(f"{n}_rest" for n in NODE_NAMES),
               *SERVER_NAMES)
# A replica further behind the primary than this (bytes of WAL, as Patroni's /replica?lag=
# measures it) is left out of the replica entry point; docs/deploy.md.
REPLICA_MAX_LAG = "1MB"
_SOCKET_PATH_MAX = 100  # Unix socket paths are limited to ~107 bytes

_templates = Environment(loader=PackageLoader("gridmgr.cluster", "templates"),
                         undefined=StrictUndefined, keep_trailing_newline=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Node:
    """One PostgreSQL node and the Patroni that runs it."""

    name: str
    folder: Path
    pg_port: int
    rest_port: int

    @property
    def datadir(self) -> Path:
        return self.folder / "pgdata"

    @property
    def config(self) -> Path:
        return self.folder / "patroni.yml"

    @property
    def socket_dir(self) -> Path:
        if len(str(self.folder)) + len("/.s.PGSQL.65535") <= _SOCKET_PATH_MAX:
            return self.folder
        digest = hashlib.sha1(str(self.folder).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"gridmgr-{digest}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


@dataclass(frozen=True)
class AppServer:
    """One gridmgr server process behind HAProxy."""

    name: str
    port: int


class Layout:
    """The cluster folder of one instance: its ports, nodes, files and recorded processes."""

    def __init__(self, home: Path):
        self.home = home
        self.folder = home / "cluster"
        self.state_file = self.folder / "cluster.json"
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.ports: dict[str, int] = state.get("ports", {})
        self.pids: dict[str, int] = state.get("pids", {})
        self.with_servers: bool = state.get("with_servers", False)

    def allocate_ports(self) -> None:
        """Choose a free loopback port for every piece that has none yet (kept across ups)."""
        taken = set(self.ports.values())
        for name in _PORT_NAMES:
            if name not in self.ports:
                port = _free_port()
                while port in taken:
                    port = _free_port()
                self.ports[name] = port
                taken.add(port)

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(
            {"ports": self.ports, "pids": self.pids, "with_servers": self.with_servers},
            indent=2) + "\n")

    @property
    def nodes(self) -> list[Node]:
        return [Node(name, self.folder / name, self.ports[f"{name}_pg"],
                     self.ports[f"{name}_rest"]) for name in NODE_NAMES]

    @property
    def servers(self) -> list[AppServer]:
        return [AppServer(name, self.ports[name]) for name in SERVER_NAMES]

    @property
    def etcd_dir(self) -> Path:
        return self.folder / "etcd"

    @property
    def haproxy_config(self) -> Path:
        return self.folder / "haproxy.cfg"

    def log(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"

    # -- entry points -------------------------------------------------------------------
    @property
    def primary_url(self) -> str:
        """libpq URL of the entry point that always leads to the current primary."""
        return f"postgresql://{DB_USER}@127.0.0.1:{self.ports['primary']}/{DB_NAME}"

    @property
    def replica_url(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.ports['replica']}/{DB_NAME}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    # -- configuration files -----------------------------------------------------------
    def render_patroni(self, node: Node, bindir: Path) -> str:
        return _templates.get_template("patroni.yml").render(
            node=node, etcd_port=self.ports["etcd"], bindir=bindir)

    def render_haproxy(self) -> str:
        return _templates.get_template("haproxy.cfg").render(
            ports=self.ports, nodes=self.nodes, replica_max_lag=REPLICA_MAX_LAG,
            servers=self.servers if self.with_servers else [])
