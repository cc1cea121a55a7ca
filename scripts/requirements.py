"""Print squall's dependencies from pyproject.toml, plus those of the extras named, one a line.

The Makefile installs them with ``pip install -r /dev/stdin`` and squall itself separately, so
that squall (compiled, setup.py) is built once per change of its sources, not once per extra.
Usage: ``python scripts/requirements.py [extra ...]``.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[1:]:
    requirements += project["optional-dependencies"][extra]
print("\n".join(requirements))
