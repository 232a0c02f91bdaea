"""Exchange simulator: a Binance USD-M futures server on loopback, with fault injection.

It is the embedded default (`cockpit demo`) and the world the tests run in. Nothing here imports Textual.
"""
