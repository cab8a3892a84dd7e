"""``python -m lifecycle``: see :mod:`lifecycle.cli`."""

import sys

from lifecycle.cli import main

sys.exit(main())
