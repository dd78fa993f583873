"""Tests of the app's front: admin, front door, checks, signals, packaging."""
