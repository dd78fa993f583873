"""Tests of what operators see: probes, metrics, alert rules, logs."""
