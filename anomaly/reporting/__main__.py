"""``python -m anomaly.reporting DIR [DIR ...]``: the paper's tables from the results of runs."""

import sys

from anomaly.reporting.report import main

sys.exit(main())
