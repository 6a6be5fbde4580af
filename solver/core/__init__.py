"""The pure core: the domain and the single writer's engine.

No I/O, no clock, no randomness, no threads: time and ids come in with the inputs, and
``Engine.apply`` takes one input and returns the ``Transaction`` of events it caused. It
imports only the standard library (an import-linter contract in ``make test``).
"""
