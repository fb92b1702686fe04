"""Geodesy helpers shared by every domain: coordinate systems of Chinese web maps, metric CRSs."""
