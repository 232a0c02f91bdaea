"""Textual widgets: read-only views of cockpit State."""
