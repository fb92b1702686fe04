"""Open data: cases and region boundaries for the public, with nothing personal in them."""
