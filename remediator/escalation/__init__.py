"""Escalation: policies, durable chains of steps, notifications through channels by name."""
