"""``python -m pipeline`` is the ``wirestream`` command."""

import sys

from pipeline.cli import main

sys.exit(main())
