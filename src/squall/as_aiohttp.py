"""``python -m squall.as_aiohttp SCRIPT [ARGS...]``: run an unmodified aiohttp program on squall.

For a program that starts its own server (``web.run_app(app)``, or ``AppRunner`` and
``TCPSite``): :func:`squall.install_as_aiohttp` first, then the script runs as ``__main__``
with ``sys.argv`` set to ``[SCRIPT, *ARGS]``, as ``python SCRIPT ARGS...`` would run it.
``python -m squall.as_aiohttp -m MODULE [ARGS...]`` runs a module as ``python -m MODULE`` would,
after the alias: ``-m aiohttp.web -H HOST -P PORT pkg:init`` is aiohttp's own command line, on
squall. For an application object or factory, ``squall --as-aiohttp MODULE:APP`` does the same.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from .aiohttp_alias import install_as_aiohttp

__all__ = ("main",)

USAGE = "usage: python -m squall.as_aiohttp SCRIPT [ARGS...] | -m MODULE [ARGS...]"


def main(argv: list[str]) -> None:
    """Install the alias, then run the script ``argv[0]`` (or the module after ``-m``) as
    ``__main__`` with ``argv``."""
    if not argv or argv[0] in ("-h", "--help") or argv == ["-m"]:
        print(f"{USAGE}\n\n{__doc__}")
        raise SystemExit(0 if argv and argv[0] != "-m" else 2)
    install_as_aiohttp()
    if argv[0] == "-m":
        name = argv[1]
        # An aliased name (aiohttp.web is squall.web) runs the module it stands for, whose
        # relative imports then resolve in squall.
        target = getattr(sys.modules.get(name), "__name__", name)
        sys.argv = [name, *argv[2:]]  # run_module puts the module's file first, as python -m
        runpy.run_module(target, run_name="__main__", alter_sys=True)
        return
    sys.argv = list(argv)
    sys.path.insert(0, str(Path(argv[0]).resolve().parent))  # as python SCRIPT puts it
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
