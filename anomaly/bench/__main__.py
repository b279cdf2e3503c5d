"""``python -m anomaly.bench`` (``make bench``): see ``anomaly.bench``."""

from anomaly.bench.cli import main

main()
