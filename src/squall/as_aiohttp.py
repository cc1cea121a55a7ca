"""``python -m squall.as_aiohttp SCRIPT [ARGS...]``: run an unmodified aiohttp program on squall.

For a program that starts its own server (``web.run_app(app)``, or ``AppRunner`` and
``TCPSite``): :func:`squall.install_as_aiohttp` first, then the script runs as ``__main__``
with ``sys.argv`` set to ``[SCRIPT, *ARGS]``, as ``python SCRIPT ARGS...`` would run it. For an
application object or factory, ``squall --as-aiohttp MODULE:APP`` does the same.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from .aiohttp_alias import install_as_aiohttp

__all__ = ("main",)


def main(argv: list[str]) -> None:
    """Install the alias, then run the script ``argv[0]`` as ``__main__`` with ``argv``."""
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m squall.as_aiohttp SCRIPT [ARGS...]\n\n{__doc__}")
        raise SystemExit(0 if argv else 2)
    install_as_aiohttp()
    sys.argv = list(argv)
    sys.path.insert(0, str(Path(argv[0]).resolve().parent))  # as python SCRIPT puts it
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
