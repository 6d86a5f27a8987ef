"""Test utilities shared across test modules (owned by the "convert" helper; others may import them)."""
