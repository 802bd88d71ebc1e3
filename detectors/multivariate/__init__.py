"""Multivariate drift: changes in the joint distribution that per-column tests can miss."""
