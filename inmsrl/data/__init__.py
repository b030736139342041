"""Corpora, data directories, dumps, segment tables and the ABX listening-test data."""
