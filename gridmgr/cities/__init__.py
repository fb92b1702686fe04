"""The cities of a platform: a province runs one gridmgr for several cities and counties. A city
is made of its regions (``gridmgr.grids``), its working calendar (``gridmgr.calendar``) and its
staff (``gridmgr.people``), so adding and listing cities stands above all three."""
