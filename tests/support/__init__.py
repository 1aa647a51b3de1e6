"""Fixtures shared by several test suites that are more than a pytest fixture (servers)."""
