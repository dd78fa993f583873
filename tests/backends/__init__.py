"""Tests of the SMS backends (``notification/backends/``)."""
