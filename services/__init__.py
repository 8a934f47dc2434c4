"""Minqing's services: intake, routing, notification, reporting; each its own process."""
