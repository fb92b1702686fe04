"""Where gridmgr's database lives: an external server or the embedded PostGIS cluster."""
