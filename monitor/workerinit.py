"""Imported by the extraction workers' fork server before it forks any worker: the
workers then share one copy of trafilatura, the language model and the MinHash
permutations instead of loading one each."""

from monitor.analysis import warm_up

warm_up()
