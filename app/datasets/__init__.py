"""Contributions and versioned datasets built from reviewed images."""
