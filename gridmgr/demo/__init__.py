"""The demo city loaded by ``gridmgr demo load`` (and ``make demo``)."""
