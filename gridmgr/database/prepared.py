"""Statements prepared once per pooled connection and run with ``EXECUTE``.

For the hot path of intake the planning of a large statement costs about as much as running
it; a prepared statement is planned once per connection (PostgreSQL then keeps a generic plan
when it is no worse than the custom ones) and its parameters go through psycopg2's usual
quoting. Write the SQL with ``:name`` parameters, as for ``sqlalchemy.text``. The statement runs
on the pooled connection given, by default the session's own, in its transaction;
:func:`autocommit_connection` lends one in autocommit mode, for a write that is one statement.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
from sqlalchemy.pool import PoolProxiedConnection

from gridmgr.extensions import db


@contextmanager
def autocommit_connection() -> Iterator[PoolProxiedConnection]:
    """A connection from the pool in autocommit mode: each statement commits by itself, with
    no BEGIN or COMMIT round trip. It goes back to the pool in the ordinary mode."""
    connection = db.engine.raw_connection()
    try:
        connection.dbapi_connection.autocommit = True
        yield connection
    finally:
        if not connection.dbapi_connection.closed:
            connection.dbapi_connection.autocommit = False
        connection.close()


# A ``setup`` for a statement best run as a generic plan: planning it each time would cost as much
# as running it, and left to its own choice PostgreSQL keeps planning it (a generic plan's
# estimates of a box or a parameter's rows look worse than they are). The setting lasts for the
# statement's own transaction only; in autocommit mode each statement is a transaction of its own.
GENERIC_PLAN = "SET LOCAL plan_cache_mode = force_generic_plan; "

_ENCODER = msgspec.json.Encoder()

# A ``:name`` parameter of SQL written as for ``sqlalchemy.text`` (not a ``::type`` cast).
PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Prepared:
    """One named statement; :meth:`execute` prepares it on first use per connection.

    With ``types`` (each parameter's SQL type, ``jsonb`` for JSON values) the parameters go as
    one JSON object, the statement's only parameter, instead of one literal each: psycopg2
    quotes a value in about 0.7 µs, so a statement of 35 spent 24 µs there (and more inside a
    request), against 3 µs to encode them all with msgspec. Values are then plain Python
    (dicts and lists for ``jsonb``, not JSON text)."""

    def __init__(self, name: str, sql: str, setup: str = "",
                 types: dict[str, str] | None = None) -> None:
        self.name = name
        self._row = None
        names: list[str] = []

        def positional(match: re.Match) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        def field(match: re.Match) -> str:
            names.append(match.group(1))
            kind = types[match.group(1)]
            if kind == "jsonb":
                return f"($1->'{match.group(1)}')"
            return f"CAST($1->>'{match.group(1)}' AS {kind})"

        self.packed = types is not None
        self.body = PARAMETER.sub(field if self.packed else positional, sql)
        self.names = tuple(dict.fromkeys(names))
        # Positional: psycopg2 fills a tuple faster than a dict (about 30 µs for 40 values).
        arguments = "%s" if self.packed else ", ".join("%s" for _ in names)
        # ``setup``: statements sent in the same round trip first (e.g. SET LOCAL).
        self.run = f"{setup}EXECUTE {name}({arguments})" if names else f"{setup}EXECUTE {name}"

    def execute(self, params: dict, connection: PoolProxiedConnection | None = None):
        """Run on ``connection`` (by default the session's, in its transaction); a psycopg2
        cursor positioned on the result."""
        if connection is None:
            connection = db.session.connection().connection
        cursor = connection.cursor()
        if self.name not in connection.info:
            signature = "(jsonb)" if self.packed else ""
            cursor.execute(f"PREPARE {self.name}{signature} AS {self.body}")
            connection.info[self.name] = True
        if self.packed:
            values = (_ENCODER.encode({n: params[n] for n in self.names}).decode(),)
        else:
            values = tuple([params[n] for n in self.names])
        cursor.execute(self.run, values)
        return cursor

    def one(self, params: dict, connection: PoolProxiedConnection | None = None):
        """The single row of the result, with its columns as attributes."""
        cursor = self.execute(params, connection)
        try:
            columns = tuple(c.name for c in cursor.description)
            values = cursor.fetchone()
        finally:
            cursor.close()
        if self._row is None or self._row._fields != columns:
            self._row = namedtuple(f"{self.name}_row", columns)
        return self._row(*values)
