"""Notifications: incidents followed from events, routed to named targets, delivered through apprise off the
engine's hot path."""
