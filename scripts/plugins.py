"""aiohttp plugins' own tests as the judge of squall: ``make plugins``.

Downloads the pinned sdists of five aiohttp.web plugins (``pip download --no-binary``) into
build/plugins/, builds a venv of its own there (the aiohttp release installed in .venv, the
plugins, the test requirements their tests import, squall from this checkout as pure Python), then
runs each plugin's unmodified tests twice: on aiohttp (``-p no:squall``), then on squall through
``squall.install_as_aiohttp()`` (``-p squall.testing.aiohttp_plugin``). Prints per plugin the
tests passed on each and every test that passes on aiohttp and fails on squall, and writes the
same to build/plugins/report.md. Nothing of the plugins' is committed.

    python scripts/plugins.py [--plugins aiohttp-jinja2 ...] [-k EXPR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import venv
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "plugins"
AIOHTTP = aiohttp.__version__
Results = dict[str, tuple[str, str]]  # test id -> (outcome, the first line of its failure)


@dataclass(frozen=True)
class Plugin:
    name: str  # the PyPI name
    version: str
    left_out: tuple[str, ...] = ()  # test files that need what this machine has not
    why: str = ""

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


PLUGINS = (
    Plugin("aiohttp-jinja2", "1.6"),
    Plugin(
        "aiohttp-session",
        "2.12.1",
        ("tests/test_redis_storage.py", "tests/test_memcached_storage.py"),
        "redis and memcached servers (in docker)",
    ),
    Plugin("aiohttp-cors", "0.8.1", ("tests/integration/test_real_browser.py",), "a browser"),
    Plugin("aiohttp-sse", "3.0"),
    Plugin("aiohttp-security", "0.5.0"),
)

# What the plugins' tests and conftest.py files import (aiohttp-session's conftest imports the
# redis, memcached and docker clients even when their tests are left out), and pytest's side.
TEST_REQUIREMENTS = (
    "pytest",
    "pytest-aiohttp",
    "pytest-asyncio",
    "pytest-mock",
    "pytest-timeout",
    "cryptography",
    "pynacl",
    "redis",
    "aiomcache",
    "docker",
    "pyjwt",
    "packaging",
)


def run(*cmd: str | Path, **kwargs: object) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)  # type: ignore[call-overload]


def fetch(plugin: Plugin) -> Path:
    """build/plugins/NAME-VERSION: the plugin's sdist, extracted (its tests and its config)."""
    sdist_dir = WORK / "sdists"
    found = [d for d in WORK.glob("*/") if _is_sdist_of(d, plugin) and (d / "tests").is_dir()]
    if found:
        return found[0]
    sdist_dir.mkdir(parents=True, exist_ok=True)
    sdists = [p for p in sdist_dir.glob("*.tar.gz") if _is_sdist_of(p, plugin)]
    if not sdists:
        run(sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
            plugin.spec, "-d", sdist_dir)  # fmt: skip
        sdists = [p for p in sdist_dir.glob("*.tar.gz") if _is_sdist_of(p, plugin)]
    with tarfile.open(sdists[0]) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(WORK, filter="data")
    return WORK / top


def _is_sdist_of(path: Path, plugin: Plugin) -> bool:
    """``aiohttp_cors-0.8.1`` and ``aiohttp-jinja2-1.6`` are both spelled on PyPI."""
    stem = path.name.removesuffix(".tar.gz").replace("_", "-")
    return stem == f"{plugin.name}-{plugin.version}"


def make_venv() -> Path:
    """build/plugins/venv: aiohttp, the plugins, their test requirements, squall (pure Python)."""
    env_dir = WORK / "venv"
    python = env_dir / "bin" / "python"
    wanted = (f"aiohttp=={AIOHTTP}", *(p.spec for p in PLUGINS), *TEST_REQUIREMENTS)
    stamp = env_dir / f".ready-{zlib.crc32(' '.join(wanted).encode())}"
    if not stamp.is_file():
        if not python.exists():
            venv.create(env_dir, with_pip=True)
        run(python, "-m", "pip", "install", "-q", *wanted)
        stamp.touch()
    # squall from this checkout, reinstalled each run (pure Python: behaviour, not speed).
    env = {**os.environ, "SQUALL_NO_COMPILE": "1"}
    run(python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", ROOT, env=env)
    run(python, "-m", "pip", "install", "-q", ROOT, env=env)  # squall's own dependencies
    return python


def pytest_run(
    python: Path, plugin: Plugin, where: Path, squall: bool, extra: list[str]
) -> Results:
    """Run the plugin's tests on aiohttp or on squall: test id -> (outcome, first line)."""
    name = "squall" if squall else "aiohttp"
    xml = WORK / f"{plugin.name}.{name}.xml"
    xml.unlink(missing_ok=True)
    cmd: list[str | Path] = [
        python, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q", "--no-header",
        "-rN", "--timeout=60", f"--junitxml={xml}",
        # the plugins' configs set asyncio_mode = auto (pytest-asyncio) or leave it unset
        "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
        "-p", "squall.testing.aiohttp_plugin" if squall else "no:squall",
    ]  # fmt: skip
    cmd += [arg for path in plugin.left_out for arg in ("--ignore", path)]
    cmd += ["tests", *extra]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    log = WORK / f"{plugin.name}.{name}.log"
    print(f"== {plugin.name} {plugin.version}'s tests on {name} (output in {log})", flush=True)
    with open(log, "w") as out:
        subprocess.run([str(c) for c in cmd], cwd=where, env=env, stdout=out, stderr=out)
    if not xml.is_file():
        raise SystemExit(f"pytest wrote no report: see {log}")
    return results(xml)


def results(xml: Path) -> Results:
    """Test id -> (outcome, the first line of its failure) from a junit XML report."""
    out: dict[str, tuple[str, str]] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        # the class name starts where pytest found the rootdir: from "tests." on, for all
        classname = case.get("classname", "")
        classname = classname[classname.find("tests.") :] if "tests." in classname else classname
        test_id = f"{classname}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                lines = (child.get("message") or "").strip().splitlines()[:1]
                message = lines[0] if lines else child.tag
                break
            if child.tag == "skipped":
                outcome = "skipped"
        out[test_id] = (outcome, message)
    return out


def report(runs: list[tuple[Plugin, Results, Results]]) -> str:
    lines = [
        f"# aiohttp plugins' tests on aiohttp {AIOHTTP} and on squall",
        "",
        "| plugin | tests | passed on aiohttp | passed on squall | only on aiohttp |",
        "| --- | --- | --- | --- | --- |",
    ]
    details: list[str] = []
    for plugin, on_aiohttp, on_squall in runs:
        passed_a = sum(outcome == "passed" for outcome, _ in on_aiohttp.values())
        passed_s = sum(outcome == "passed" for outcome, _ in on_squall.values())
        regressions = [
            (test_id, message)
            for test_id, (outcome, message) in sorted(on_squall.items())
            if outcome in ("failed", "error") and on_aiohttp.get(test_id, ("",))[0] == "passed"
        ]
        total = len(on_aiohttp)
        name = f"{plugin.name} {plugin.version}"
        if plugin.left_out:
            name += f" ({', '.join(Path(f).name for f in plugin.left_out)} left out: {plugin.why})"
        lines.append(f"| {name} | {total} | {passed_a} | {passed_s} | {len(regressions)} |")
        if regressions:
            details += [f"## {plugin.name}: pass on aiohttp, fail on squall", ""]
            details += [f"- {test_id}: {message}" for test_id, message in regressions]
            details.append("")
        also = [
            test_id
            for test_id, (outcome, _) in sorted(on_aiohttp.items())
            if outcome != "passed" and on_squall.get(test_id, ("",))[0] != "passed"
        ]
        if also:
            details += [f"## {plugin.name}: fail on both", ""]
            details += [f"- {test_id}: {on_aiohttp[test_id][1]}" for test_id in also]
            details.append("")
    return "\n".join([*lines, "", *details])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [p.name for p in PLUGINS]
    parser.add_argument("--plugins", nargs="+", default=names, choices=names, metavar="NAME")
    parser.add_argument("-k", help="pytest's -k expression")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    chosen = [p for p in PLUGINS if p.name in args.plugins]
    where = {plugin.name: fetch(plugin) for plugin in chosen}
    python = make_venv()
    extra = ["-k", args.k] if args.k else []
    runs = []
    for plugin in chosen:
        on_aiohttp = pytest_run(python, plugin, where[plugin.name], False, extra)
        on_squall = pytest_run(python, plugin, where[plugin.name], True, extra)
        runs.append((plugin, on_aiohttp, on_squall))
    text = report(runs)
    (WORK / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
