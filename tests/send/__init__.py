"""Tests of flow 2, send (``notification/send/``, ``jobs/``, ``processes``)."""
