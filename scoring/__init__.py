"""Batch scoring: streamed on one machine, or on Spark."""
