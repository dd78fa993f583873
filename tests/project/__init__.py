"""Tests of the project around the app: servers, devstack, emulator, browser."""
