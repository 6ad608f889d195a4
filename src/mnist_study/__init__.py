"""Helpers for the MNIST classification study: data loading, models and figures."""
