"""Dispatch: rosters, duty and positions of grid workers, the rules that pick a receiver, and the
timed work (acknowledgement timeouts, escalation, clock events) run by ``gridmgr worker``."""

# Dispatch stands above the case workflow and hands filing its planner: an application that
# has dispatch files a case of an ``auto_dispatch`` category straight to its receiver.
from gridmgr.dispatch import assign  # noqa: F401
