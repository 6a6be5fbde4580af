"""The journal: every transaction in SQLite before its events reach anyone (``store``), the
exact JSON codec, replay and snapshots, and tables for analysis (``recorder``)."""
