"""``python -m squall MODULE:APP``: the ``squall`` command line."""

import sys

from .cli import main

sys.exit(main())
