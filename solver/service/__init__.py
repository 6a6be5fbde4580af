"""The running service: the single writer over the engine and its journal (``sequencer``),
the runtime that plans and ticks, the watch on batches that do not settle, and the one place
where the whole service is assembled and stopped in order (``wiring``)."""
