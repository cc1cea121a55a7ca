"""Write the latest full run's figures into README.md, docs/benchmarks.md and docs/hello.svg.

``make bench`` does this itself after a full run; run it by hand after editing the report's
layout: ``python benchmarks/publish.py [results/latest.json]``.
"""

import json
import sys
from pathlib import Path

from harness.publish import publish

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else HERE / "results" / "latest.json"
    for path in publish(json.loads(source.read_text())):
        print("wrote", path.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
