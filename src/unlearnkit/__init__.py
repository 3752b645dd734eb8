"""unlearnkit: make a trained language model forget chosen content, and measure it honestly."""

__version__ = "0.1.0"
