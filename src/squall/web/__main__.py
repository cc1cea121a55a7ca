"""``python -m squall.web``: aiohttp's ``python -m aiohttp.web`` (see entry.py)."""

import sys

from .entry import main

main(sys.argv[1:])
