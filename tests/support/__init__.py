"""Helpers shared by tests and benchmarks (real servers, real clients)."""
