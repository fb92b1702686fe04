"""Regions and unit grids: district → street → community → unit grid, in PostGIS."""
