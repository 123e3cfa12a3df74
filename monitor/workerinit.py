"""Imported by the extraction workers' fork server before it forks any worker: the
workers then share one copy of trafilatura, the language model and the MinHash
permutations instead of loading one each."""

import gc

from monitor.analysis import warm_up
from monitor.logs import configure_worker_logging

configure_worker_logging()
warm_up()
# Keep the collector's hands off what is loaded now: its bookkeeping writes would copy
# every page holding those objects into each worker.
gc.collect()
gc.freeze()
