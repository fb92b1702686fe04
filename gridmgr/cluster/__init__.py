"""A highly available layout on one machine: etcd, three PostgreSQL + PostGIS nodes under
Patroni with a synchronous standby, HAProxy entry points, and optionally two gridmgr servers
and two background workers (``gridmgr cluster up|down|status``; docs/deploy.md)."""
