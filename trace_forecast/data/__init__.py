"""Data: synthetic corpus generator."""
