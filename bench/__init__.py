"""Benchmarks that drive a real remediator process; see bench/README.md."""
