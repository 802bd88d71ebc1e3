"""Drift tests for categorical columns, one per module."""
