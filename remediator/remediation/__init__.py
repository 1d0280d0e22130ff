"""Remediation: run the actions a rule names, record every attempt, hand over to verification."""
