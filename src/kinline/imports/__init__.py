"""Records from other systems: completed calls from a calling vendor's export."""
