"""``python -m squall.web``: aiohttp's ``python -m aiohttp.web`` (see entry.py)."""

import sys

from .entry import build_parser, main

__all__ = ("build_parser", "main")

if __name__ == "__main__":
    main(sys.argv[1:])
