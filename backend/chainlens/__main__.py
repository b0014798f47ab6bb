"""``python -m chainlens`` is the ``chainlens`` command."""

import sys

from .cli import main

sys.exit(main())
