"""Durable orchestrators (deterministic code only: no I/O, clocks or randomness)."""
