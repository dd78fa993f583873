"""Tests of flow 1, create (``notification/create/``, ``values``)."""
