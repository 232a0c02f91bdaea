"""The exchange gateway: the only path from cockpit to an exchange (ccxt underneath)."""
