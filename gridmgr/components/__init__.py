"""The city's components (部件): inventory, codes, owners, and the cases reported at them."""
