"""Baseline servers the benchmark compares convlens against; benchmark-only code."""
