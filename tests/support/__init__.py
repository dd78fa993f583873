"""Test helpers and pytest plugins (``tests/conftest.py`` lists the plugins)."""
