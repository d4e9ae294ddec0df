"""Helpers for the end-to-end suite: processes, Kafka, HTTP, tokens."""
