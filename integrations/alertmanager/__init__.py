"""Alertmanager: the receiver snippet users paste into `alertmanager.yml` (see alertmanager.yml)."""
