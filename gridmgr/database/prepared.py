"""Statements prepared once per pooled connection and run with ``EXECUTE``.

For the hot path of intake the planning of a large statement costs about as much as running
it; a prepared statement is planned once per connection (PostgreSQL then keeps a generic plan
when it is no worse than the custom ones) and its parameters go through psycopg2's usual
quoting. Write the SQL with ``:name`` parameters, as for ``sqlalchemy.text``; the cursor is the
session's own connection, so the statement runs in the session's transaction.
"""

from __future__ import annotations

import re
from collections import namedtuple

from gridmgr.extensions import db

_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Prepared:
    """One named statement; :meth:`execute` prepares it on first use per connection."""

    def __init__(self, name: str, sql: str, setup: str = "") -> None:
        self.name = name
        self._row = None
        names: list[str] = []

        def positional(match: re.Match) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.body = _PARAMETER.sub(positional, sql)
        self.names = tuple(names)
        arguments = ", ".join(f"%({n})s" for n in names)
        # ``setup``: statements sent in the same round trip first (e.g. SET LOCAL).
        self.run = f"{setup}EXECUTE {name}({arguments})" if names else f"{setup}EXECUTE {name}"

    def execute(self, params: dict):
        """Run in the session's transaction; a psycopg2 cursor positioned on the result."""
        connection = db.session.connection()
        if self.name not in connection.info:
            connection.exec_driver_sql(f"PREPARE {self.name} AS {self.body}")
            connection.info[self.name] = True
        cursor = connection.connection.cursor()
        cursor.execute(self.run, {n: params[n] for n in self.names})
        return cursor

    def one(self, params: dict):
        """The single row of the result, with its columns as attributes."""
        cursor = self.execute(params)
        try:
            columns = tuple(c.name for c in cursor.description)
            values = cursor.fetchone()
        finally:
            cursor.close()
        if self._row is None or self._row._fields != columns:
            self._row = namedtuple(f"{self.name}_row", columns)
        return self._row(*values)
