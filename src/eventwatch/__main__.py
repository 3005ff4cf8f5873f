"""Run the command line as ``python -m eventwatch``."""

import sys

from eventwatch.cli import main

sys.exit(main())
