"""Configuration: the typed config file, where it lives, and the secrets kept outside it."""
