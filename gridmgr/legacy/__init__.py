"""Past cases from a city's old system: ``gridmgr cases import FILE`` (docs/history-import.md)."""
