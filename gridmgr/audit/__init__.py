"""The audit log: every administrative change, who made it, when, and the values before and
after. Append-only (a trigger refuses UPDATE and DELETE)."""
