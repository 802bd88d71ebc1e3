"""Drift tests for numeric columns, one per module."""
