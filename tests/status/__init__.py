"""Tests of flow 3, status (``notification/status/``, ``reconciliation/``)."""
