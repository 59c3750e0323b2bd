"""``python -m vs_controllers.benchmark`` (see :mod:`vs_controllers.benchmark.cli`)."""

import sys

from vs_controllers.benchmark.cli import main

sys.exit(main())
