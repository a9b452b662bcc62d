"""Peers measured on the reading benchmark, each run in a venv of its own."""
