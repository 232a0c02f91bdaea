"""Prometheus metrics: a collector that reads the engine's State at scrape time, served at `/metrics`."""
