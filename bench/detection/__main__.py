"""``python -m bench.detection``: see bench/detection/run.py."""

import sys

from bench.detection.run import main

sys.exit(main())
