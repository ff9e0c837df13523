"""Real local servers and builders shared by tests (loopback only)."""
