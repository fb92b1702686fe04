"""Dispatch: rosters, duty and positions of grid workers, the rules that pick a receiver, and the
timed work (acknowledgement timeouts, escalation, clock events) run by ``gridmgr worker``."""
