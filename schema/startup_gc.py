"""Long-lived processes hide their start-up objects from the cyclic garbage collector."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, classes, ORM mappers, the SDK's models: about
    166,000 in a worker) to the permanent generation, so a full collection scans only what
    was made since. Unfrozen, each full collection held a worker's GIL for up to 0.17 s,
    every thread of the process stopped, 2-3 times per efficiency run (bench/throughput.py),
    and one cost the producer 0.09 s between writing a run and sending its first message."""
    gc.collect()  # what is garbage now is freed, not kept for good
    gc.freeze()
