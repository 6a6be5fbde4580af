"""The service, the thing that runs: ``process`` runs one in an OS process (signals, the
operator's endpoints, a graceful stop); ``service`` assembles it and stops it in order; its
``runtime`` is the single writer over the engine and its journal (``sequencer``) with the
exchange adapter, the planner and the clock; around them, the watch on batches that do not
settle and the link to the chain."""
