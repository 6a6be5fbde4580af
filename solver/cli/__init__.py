"""``index-solver``: the command line (``main``) and its journal commands (``journal``)."""
