"""Shared tools for the hostile-input, damage and fault tests (issue 6)."""
