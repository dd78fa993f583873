"""Tests of the compliance and cost guardrails."""
