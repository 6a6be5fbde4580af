"""The chain layer: the Vyper contracts (``chain/contracts``), their committed compiled artifacts
(``chain/artifacts``) and the Python that loads them. Run-time code needs no compiler: it reads
only the artifacts (``chain.artifacts``); ``python -m chain.compile`` rewrites them (docs/chain.md).
"""
