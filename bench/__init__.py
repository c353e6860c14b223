"""Benchmarks that measure the app on the recording corpus and print tables (not timed tests)."""
