"""cockpit: a terminal trading cockpit for automated crypto derivatives strategies."""

__version__ = "0.1.0"
