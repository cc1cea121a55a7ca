"""aiohttp's own server-side tests as the judge of squall (issue 22): ``make aiohttp-suite``.

Downloads the sdist of the aiohttp release installed in .venv (``pip download --no-binary``),
extracts its ``tests/`` and ``pytest.ini`` into build/aiohttp-suite/, builds a venv of its own
there (aiohttp, its test requirements, squall from this checkout), then runs the server-side test
files twice, unmodified: on aiohttp, then on squall through ``squall.install_as_aiohttp()``
(``-p squall.testing.aiohttp_plugin``, with scripts/aiohttp_suite_plugin.py for the names those
files import at module level that squall has no equivalent of). Prints per file the tests passed
on each, and writes every test that passes on aiohttp and fails on squall, grouped by cause, to
build/aiohttp-suite/report.md. Nothing of aiohttp's is committed.

    python scripts/aiohttp_suite.py [--squall-only] [--check] [--files FILE ...] [-k EXPR]

``--check`` (what CI runs, with ``--squall-only``) fails when a test fails on squall that
scripts/aiohttp_suite_known.txt does not list: the tests known to fail, each under the cause
docs/compat.md gives. A listed test that now passes is reported, to be taken off the list.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tarfile
import venv
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "aiohttp-suite"
KNOWN = Path(__file__).resolve().parent / "aiohttp_suite_known.txt"
VERSION = aiohttp.__version__

# Issue 22's files: aiohttp's server-side behaviour, plus test_multipart (shared with the client).
FILES = (
    "test_web_functional.py",
    "test_web_urldispatcher.py",
    "test_web_response.py",
    "test_web_request.py",
    "test_web_middleware.py",
    "test_web_exceptions.py",
    "test_web_sendfile_functional.py",
    "test_web_websocket_functional.py",
    "test_web_app.py",
    "test_web_cli.py",
    "test_web_runner.py",
    "test_multipart.py",
)

# What aiohttp's requirements/test-common*.in list that these files use (not mypy, coverage,
# codspeed, docker or proxy.py, which only other files or aiohttp's CI need).
TEST_REQUIREMENTS = (
    "pytest",
    "pytest-mock",
    "pytest-timeout",
    "pytest-xdist",
    "freezegun",
    "trustme",
    "blockbuster",
    "brotli",
    "coverage",  # pytest.ini's warning filters name its warning class
)


def run(*cmd: str | Path, **kwargs: object) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)  # type: ignore[call-overload]


def fetch_tests() -> Path:
    """build/aiohttp-suite/aiohttp-VERSION with aiohttp's tests/ and pytest.ini."""
    dest = WORK / f"aiohttp-{VERSION}"
    if (dest / "tests" / "conftest.py").is_file():
        return dest
    WORK.mkdir(parents=True, exist_ok=True)
    sdist = WORK / f"aiohttp-{VERSION}.tar.gz"
    if not sdist.is_file():
        run(sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
            f"aiohttp=={VERSION}", "-d", WORK)  # fmt: skip
    prefix = f"aiohttp-{VERSION}/"
    with tarfile.open(sdist) as tar:
        members = [
            m for m in tar.getmembers()
            if m.name.startswith(prefix + "tests/") or m.name == prefix + "pytest.ini"
        ]  # fmt: skip
        tar.extractall(WORK, members=members, filter="data")
    return dest


def make_venv() -> Path:
    """build/aiohttp-suite/venv: aiohttp, its test requirements, and squall (pure Python)."""
    env_dir = WORK / "venv"
    python = env_dir / "bin" / "python"
    stamp = env_dir / f".ready-{VERSION}-{zlib.crc32(' '.join(TEST_REQUIREMENTS).encode())}"
    if not stamp.is_file():
        if not python.exists():
            venv.create(env_dir, with_pip=True)
        run(python, "-m", "pip", "install", "-q", f"aiohttp=={VERSION}", *TEST_REQUIREMENTS)
        stamp.touch()
    # squall from this checkout, reinstalled each run (pure Python: behaviour, not speed).
    env = {**os.environ, "SQUALL_NO_COMPILE": "1"}
    run(python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", ROOT, env=env)
    run(python, "-m", "pip", "install", "-q", ROOT, env=env)  # squall's own dependencies
    return python


def pytest_run(python: Path, suite: Path, files: list[str], squall: bool, extra: list[str]) -> Path:
    """Run the files on aiohttp or on squall; the junit XML report's path."""
    name = "squall" if squall else "aiohttp"
    xml = WORK / f"{name}.xml"
    cmd: list[str | Path] = [
        python, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider",
        "-m", "not dev_mode and not autobahn and not internal",
        "-q", "--no-header", "-rN", "--timeout=60", "-n", "2", f"--junitxml={xml}",
    ]  # fmt: skip
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if squall:
        env["PYTHONPATH"] = str(ROOT / "scripts")
        # aiohttp's `loop` fixture asks for asyncio's loop (pyloop); importing squall would
        # make that uvloop, whose C loop pytest-timeout cannot interrupt in a hung test.
        env["SQUALL_NO_UVLOOP"] = "1"
        cmd += ["-p", "aiohttp_suite_plugin"]
    else:  # squall's own plugin would import squall, which changes the loop policy
        cmd += ["-p", "no:squall"]
    cmd += [f"tests/{f}" for f in files] + extra
    print(f"== aiohttp's tests on {name} (output in {WORK / name}.log)", flush=True)
    with open(WORK / f"{name}.log", "w") as log:
        subprocess.run([str(c) for c in cmd], cwd=suite, env=env, stdout=log, stderr=log)
    if not xml.is_file():
        raise SystemExit(f"pytest wrote no report: see {WORK / name}.log")
    return xml


def results(xml: Path) -> dict[str, tuple[str, str]]:
    """Test id -> (outcome, the first line of its failure) from a junit XML report."""
    out: dict[str, tuple[str, str]] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                message = (child.get("message") or "").strip().splitlines()[:1]
                message = message[0] if message else child.tag
                break
            if child.tag == "skipped":
                outcome = "skipped"
        out[test_id] = (outcome, str(message))
    return out


def cause(message: str) -> str:
    """A failure message with its variable parts (numbers, addresses, quoted values) blanked."""
    message = re.sub(r"0x[0-9a-f]+", "0x…", message)
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    message = re.sub(r"\d+", "N", message)
    return message[:160]


def module_of(test_id: str) -> str:
    """``tests.test_web_app.TestX::test_y`` -> ``test_web_app``."""
    return test_id.split("::")[0].removeprefix("tests.").split(".")[0]


def report(
    on_aiohttp: dict[str, tuple[str, str]] | None, on_squall: dict[str, tuple[str, str]]
) -> str:
    per_file: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    regressions: list[tuple[str, str]] = []
    for test_id, (outcome, message) in on_squall.items():
        module = module_of(test_id)
        per_file[module]["squall " + outcome] += 1
        base = on_aiohttp.get(test_id, ("?", ""))[0] if on_aiohttp else "passed"
        if base == "passed" and outcome in ("failed", "error"):
            regressions.append((test_id, message))
    for test_id, (outcome, _) in (on_aiohttp or {}).items():
        per_file[module_of(test_id)]["aiohttp " + outcome] += 1
    lines = [
        f"# aiohttp {VERSION}'s server-side tests on squall",
        "",
        "| file | passed on aiohttp | passed on squall | failed on squall |",
        "| --- | --- | --- | --- |",
    ]
    total: collections.Counter[str] = collections.Counter()
    for module in sorted(per_file):
        counts = per_file[module]
        total.update(counts)
        bad = counts["squall failed"] + counts["squall error"]
        base = counts["aiohttp passed"] if on_aiohttp else "-"
        lines.append(f"| {module} | {base} | {counts['squall passed']} | {bad} |")
    bad = total["squall failed"] + total["squall error"]
    base = total["aiohttp passed"] if on_aiohttp else "-"
    lines += [f"| total | {base} | {total['squall passed']} | {bad} |", ""]
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for test_id, message in regressions:
        groups[cause(message)].append(test_id)
    lines += [f"## {len(regressions)} tests that pass on aiohttp and fail on squall, by cause", ""]
    for message, ids in sorted(groups.items(), key=lambda item: -len(item[1])):
        lines.append(f"### {len(ids)}: {message}")
        lines += [f"- {test_id}" for test_id in sorted(ids)]
        lines.append("")
    return "\n".join(lines)


def known_failures() -> set[str]:
    """The test ids of KNOWN (one per line; ``#`` starts a comment, a heading names a cause)."""
    ids = (line.split("#")[0].strip() for line in KNOWN.read_text().splitlines())
    return {test_id for test_id in ids if test_id}


def check(on_squall: dict[str, tuple[str, str]], files: list[str], k: str | None) -> int:
    """0 if every test that fails on squall is a known failure; prints what is not."""
    known = known_failures()
    failing = {t for t, (outcome, _) in on_squall.items() if outcome in ("failed", "error")}
    new = sorted(failing - known)
    ran = {module_of(t) + ".py" for t in on_squall}
    fixed = sorted(t for t in known - failing if t in on_squall)
    missing = sorted(t for t in known if t not in on_squall and module_of(t) + ".py" in ran)
    for test_id in new:
        print(f"NEW FAILURE on squall: {test_id}: {on_squall[test_id][1]}")
    for test_id in fixed:
        print(f"now passes on squall (take it off {KNOWN.name}): {test_id}")
    if missing and not k and sorted(ran) == sorted(files):
        print(f"{len(missing)} known failures did not run (renamed?): {', '.join(missing[:5])}")
    print(
        f"check: {len(failing)} tests fail on squall, {len(failing & known)} of them known;"
        f" {len(new)} new"
    )
    return 1 if new else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squall-only", action="store_true", help="skip the run on aiohttp")
    parser.add_argument(
        "--check", action="store_true", help=f"fail on a squall failure {KNOWN.name} lacks"
    )
    parser.add_argument("--files", nargs="+", default=list(FILES), metavar="FILE")
    parser.add_argument("-k", help="pytest's -k expression")
    args = parser.parse_args()
    suite = fetch_tests()
    python = make_venv()
    extra = ["-k", args.k] if args.k else []
    on_aiohttp = None
    if not args.squall_only:
        on_aiohttp = results(pytest_run(python, suite, args.files, False, extra))
    on_squall = results(pytest_run(python, suite, args.files, True, extra))
    text = report(on_aiohttp, on_squall)
    (WORK / "report.md").write_text(text)
    table = text.split("## ")[0]
    print(table)
    stand_ins = (WORK / "stand-ins.txt").read_text().split()
    print(f"stand-ins for aiohttp internals the files import: {', '.join(stand_ins) or 'none'}")
    print(f"every failure, grouped by cause: {WORK / 'report.md'}")
    return check(on_squall, args.files, args.k) if args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
