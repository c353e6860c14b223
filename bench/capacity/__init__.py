"""Capacity benchmark: held calls per core for the whole app process (``python -m bench.capacity``)."""
