"""`cockpit …` subcommands, one module each; `cli` builds the parser and dispatches."""
