"""Prevention (数据研判 → 做出预防): hotspots, recurring problems and next week's forecast."""
