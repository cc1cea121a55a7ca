"""Autobahn|Testsuite's fuzzing client as the judge of squall's WebSockets: ``make autobahn``.

Runs the unmodified ``wstest -m fuzzingclient`` (autobahntestsuite 0.8.2, which is Python 2 only)
against three echo servers on 127.0.0.1 (scripts/autobahn_apps.py): squall's aiohttp.web echo,
squall's raw ASGI echo, and the same aiohttp.web echo on aiohttp as the reference. All cases by
default, 9.* (limits and performance) and 12.*/13.* (permessage-deflate) included.

The Python 2.7 interpreter comes from ``$AUTOBAHN_PYTHON2``, else pyenv's newest 2.7, else
``python2.7``/``python2`` on PATH; the suite and its pinned dependencies (PINS) are installed with
that interpreter's pip into build/autobahn/py27 (``pip install --target``) on first use.

Prints per server the count of each verdict (OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED,
FAILED, ...) and writes them, per case group, the cases that are not OK and the 9.*/12.*/13.*
durations, to benchmarks/results/autobahn.md (a full run) or build/autobahn/summary.md (a subset,
or --summarize). Autobahn's own HTML reports are in build/autobahn/reports/. Exits 1 when a squall
server has a FAILED case.

    python scripts/autobahn.py [--cases '1.*,2.*'] [--exclude '12.*,13.*'] [--servers squall-web]
        [--jobs 3] [--max-msg-size 4194304] [--summarize] [--out FILE]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "autobahn"
ENV = WORK / "py27"
REPORTS = WORK / "reports"
RESULT = ROOT / "benchmarks" / "results" / "autobahn.md"

# autobahntestsuite 0.8.2 and everything it pulls in, at the last releases that install and run on
# Python 2.7 (resolved by pip 19.2 on CPython 2.7.18, December 2026). All pinned: the suite wants
# autobahn 0.10.9 and txaio <= 2.1.0, and newer releases of the rest dropped Python 2.
PINS = (
    "autobahntestsuite==0.8.2",
    "autobahn[accelerate,twisted]==0.10.9",
    "txaio==2.1.0",
    "Twisted==20.3.0",
    "zope.interface==5.5.2",
    "Automat==22.10.0",
    "attrs==21.4.0",
    "constantly==15.1.0",
    "hyperlink==21.0.0",
    "incremental==22.10.0",
    "PyHamcrest==1.10.1",
    "idna==2.10",
    "six==1.17.0",
    "typing==3.10.0.0",
    "enum34==1.1.10",
    "ipaddress==1.0.23",
    "pyOpenSSL==21.0.0",
    "cryptography==3.3.2",
    "cffi==1.15.1",
    "pycparser==2.21",
    "service-identity==21.1.0",
    "pyasn1==0.5.1",
    "pyasn1-modules==0.3.0",
    "klein==20.6.0",
    "Tubes==0.2.1",
    "Werkzeug==1.0.1",
    "Jinja2==2.11.3",
    "MarkupSafe==1.1.1",
    "unittest2==1.1.0",
    "argparse==1.4.0",
    "linecache2==1.0.0",
    "traceback2==1.4.0",
    "wsaccel==0.6.6",
    "ujson==2.0.3",
    "setuptools==44.1.1",
)

SERVERS = ("squall-web", "squall-asgi", "aiohttp")
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
GROUPS = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "7": "Close handling",
    "9": "Limits/performance",
    "10": "Miscellaneous",
    "12": "permessage-deflate (payloads)",
    "13": "permessage-deflate (parameters)",
}

# Runs wstest from the --target directory: site.addsitedir also reads its .pth files, which
# zope.interface's namespace package needs.
WSTEST = (
    "import site, sys; site.addsitedir(sys.argv.pop(1)); sys.argv[0] = 'wstest'; "
    "from autobahntestsuite.wstest import run; run()"
)


def find_python2() -> str:
    """A Python 2.7 interpreter, or SystemExit saying where it was looked for."""
    candidates = []
    if os.environ.get("AUTOBAHN_PYTHON2"):
        candidates.append(os.environ["AUTOBAHN_PYTHON2"])
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    if shutil.which("pyenv"):
        done = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        roots.insert(0, done.stdout.strip())
    for root in filter(None, roots):
        found = glob.glob(os.path.join(root, "versions", "2.7*", "bin", "python"))
        candidates += sorted(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p)])[::-1]
    candidates += filter(None, (shutil.which("python2.7"), shutil.which("python2")))
    for path in candidates:
        try:
            done = subprocess.run(
                [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except OSError:
            continue
        if done.stdout.strip() == "2.7":
            return path
    raise SystemExit(
        "autobahn: no Python 2.7 found (autobahntestsuite runs on Python 2 only). Looked at "
        "$AUTOBAHN_PYTHON2, pyenv's versions/2.7*/bin/python and python2.7/python2 on PATH; "
        "install one (e.g. `pyenv install 2.7.18`) or point AUTOBAHN_PYTHON2 at it."
    )


def ensure_env(python2: str) -> None:
    """build/autobahn/py27 with PINS installed, unless it already has exactly those."""
    stamp = ENV / ".pins"
    wanted = "\n".join(PINS) + "\n"
    if stamp.is_file() and stamp.read_text() == wanted:
        return
    shutil.rmtree(ENV, ignore_errors=True)
    ENV.mkdir(parents=True)
    print(f"autobahn: installing autobahntestsuite for {python2} into {ENV} (minutes)", flush=True)
    subprocess.run(
        [python2, "-m", "pip", "install", "-q", "--no-warn-script-location",
         "--target", str(ENV), *PINS],
        check=True,
    )  # fmt: skip
    stamp.write_text(wanted)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(name: str, port: int, max_msg_size: int) -> list[str]:
    apps = str(ROOT / "scripts" / "autobahn_apps.py")
    if name == "squall-asgi":
        return [
            sys.executable, "-m", "squall", "autobahn_apps:asgi_echo", "--interface", "asgi",
            "--app-dir", str(ROOT / "scripts"), "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    kind = "aiohttp" if name == "aiohttp" else "squall"
    return [sys.executable, apps, kind, str(port), str(max_msg_size)]


def wait_listening(port: int, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"autobahn: the {name} server exited ({proc.returncode}): see {WORK}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"autobahn: the {name} server did not listen on {port} within 30 s")


def case_key(case: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case.split("."))


def versions(python2: str) -> str:
    def version_of(code: str, python: str = sys.executable) -> str:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
        return done.stdout.strip() or "?"

    compiled = version_of("import squall; print(squall.COMPILED)") == "True"
    squall = version_of("import squall; print(squall.__version__)")
    aiohttp = version_of("import aiohttp; print(aiohttp.__version__)")
    py2 = version_of("import platform; print(platform.python_version())", python2)
    return (
        f"squall {squall} ({'compiled' if compiled else 'pure Python'}), aiohttp {aiohttp}, "
        f"autobahntestsuite 0.8.2 on Python {py2}, servers on Python "
        f"{platform.python_version()} with uvloop"
    )


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or "?"


def summarize(index: dict[str, dict[str, dict[str, object]]], names: list[str]) -> str:
    """The markdown report: counts, counts per case group, the cases not OK, durations."""
    lines: list[str] = []
    seen = {str(r["behavior"]) for cases in index.values() for r in cases.values()}
    columns = [*VERDICTS, *sorted(seen - set(VERDICTS))]
    lines += ["| server | cases | " + " | ".join(columns) + " |"]
    lines += ["|---|---:|" + "---:|" * len(columns)]
    for name in names:
        counts = collections.Counter(str(r["behavior"]) for r in index[name].values())
        row = " | ".join(str(counts[c]) for c in columns)
        lines += [f"| {name} | {len(index[name])} | {row} |"]

    lines += ["", "**Per case group** (OK of all; the rest by verdict)", ""]
    lines += ["| group | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    groups = sorted({c.split(".")[0] for n in names for c in index[n]}, key=int)
    for group in groups:
        cells: list[str] = []
        for name in names:
            rows = [r for c, r in index[name].items() if c.split(".")[0] == group]
            counts = collections.Counter(str(r["behavior"]) for r in rows)
            rest = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()) if v != "OK")
            cells.append(f"{counts['OK']}/{len(rows)}" + (f" ({rest})" if rest else ""))
        lines += [f"| {group} {GROUPS.get(group, '')} | " + " | ".join(cells) + " |"]

    lines += ["", "**Cases not OK**", ""]
    odd = sorted(
        {c for n in names for c, r in index[n].items() if r["behavior"] != "OK"}, key=case_key
    )
    if odd:
        lines += ["| case | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for case in odd:
            cells = []
            for name in names:
                r = index[name].get(case)
                cells.append(
                    "-" if r is None
                    else f"{r['behavior']} (close {r['behaviorClose']}, {r['remoteCloseCode']})"
                )  # fmt: skip
            lines += [f"| {case} | " + " | ".join(cells) + " |"]
    else:
        lines += ["None."]

    lines += ["", "**Durations** (ms, the fuzzing client's per-case figures, summed)", ""]
    lines += ["| cases | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    sections = sorted(
        {".".join(c.split(".")[:2]) for n in names for c in index[n]
         if c.split(".")[0] in ("9", "12", "13")},
        key=case_key,
    )  # fmt: skip
    for section in [*sections, "all"]:
        cells = []
        for name in names:
            rows = [
                r for c, r in index[name].items()
                if section == "all" or c.startswith(section + ".")
            ]  # fmt: skip
            cells.append(f"{sum(int(str(r['duration'])) for r in rows):,}" if rows else "-")
        lines += [f"| {section}{'' if section == 'all' else '.*'} | " + " | ".join(cells) + " |"]
    return "\n".join(lines) + "\n"


def run_suite(
    python2: str, names: list[str], cases: list[str], exclude: list[str], jobs: int, limit: int
) -> float:
    """Start the servers and run one fuzzing client per server (``jobs`` at once); seconds."""
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[tuple[str, subprocess.Popen[bytes]]] = []
    started = time.monotonic()
    try:
        for name in names:
            port = free_port()
            log = open(WORK / f"{name}.log", "wb")  # noqa: SIM115 (the server's lifetime)
            command = server_command(name, port, limit)
            proc = subprocess.Popen(command, stdout=log, stderr=log, cwd=ROOT)
            procs.append(proc)
            wait_listening(port, proc, name)
            spec = {
                "outdir": str(REPORTS / name),
                "servers": [{"agent": name, "url": f"ws://127.0.0.1:{port}/"}],
                "cases": cases,
                "exclude-cases": exclude,
                "exclude-agent-cases": {},
            }
            (WORK / f"{name}.json").write_text(json.dumps(spec, indent=2))
        print(f"autobahn: {', '.join(names)}, {jobs} at a time; progress in "
              f"{WORK.relative_to(ROOT)}/wstest-*.log", flush=True)  # fmt: skip
        started = time.monotonic()
        waiting = list(names)
        while waiting or clients:
            while waiting and len(clients) < jobs:
                name = waiting.pop(0)
                log = open(WORK / f"wstest-{name}.log", "wb")  # noqa: SIM115
                clients.append((name, subprocess.Popen(
                    [python2, "-W", "ignore", "-c", WSTEST, str(ENV),
                     "-m", "fuzzingclient", "-s", str(WORK / f"{name}.json")],
                    cwd=WORK, stdout=log, stderr=subprocess.STDOUT,
                )))  # fmt: skip
            time.sleep(1)
            for name, client in list(clients):
                if client.poll() is None:
                    continue
                clients.remove((name, client))
                if not (REPORTS / name / "index.json").is_file():
                    raise SystemExit(
                        f"autobahn: the fuzzing client for {name} ended ({client.returncode}) "
                        f"without a report: see {WORK / f'wstest-{name}.log'}"
                    )
                print(f"autobahn: {name} done after {time.monotonic() - started:.0f} s",
                      flush=True)  # fmt: skip
    finally:
        for _, client in clients:
            client.terminate()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="*", help="comma-separated case patterns [*]")
    parser.add_argument("--exclude", default="", help="comma-separated case patterns to skip")
    parser.add_argument("--servers", default=",".join(SERVERS), help="[%(default)s]")
    parser.add_argument(
        "--jobs", type=int, default=1,
        help="fuzzing clients at once, one per server [1: one after another, so that the "
        "durations compare]",
    )  # fmt: skip
    parser.add_argument(
        "--max-msg-size", type=int, default=0,
        help="the web echoes' max_msg_size [0: none; WebSocketResponse's default is 4194304]",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="markdown summary [see the docstring]")
    parser.add_argument(
        "--summarize", action="store_true",
        help="no run: summarize the reports the last run left in build/autobahn/reports",
    )  # fmt: skip
    ns = parser.parse_args()
    names = [n for n in ns.servers.split(",") if n]
    if unknown := set(names) - set(SERVERS):
        parser.error(f"unknown servers {sorted(unknown)}; known: {', '.join(SERVERS)}")
    cases = [c for c in ns.cases.split(",") if c]
    exclude = [c for c in ns.exclude.split(",") if c]
    full = (
        cases == ["*"] and not exclude and sorted(names) == sorted(SERVERS) and not ns.max_msg_size
    )
    # (--summarize cannot tell what the reports it reads were run with: never the results file)
    out = ns.out or (RESULT if full and not ns.summarize else WORK / "summary.md")

    # A terminated run stops its servers and clients too (run_suite's finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    python2 = find_python2()
    elapsed = None
    if not ns.summarize:
        ensure_env(python2)
        shutil.rmtree(REPORTS, ignore_errors=True)
        REPORTS.mkdir(parents=True)
        elapsed = run_suite(python2, names, cases, exclude, max(1, ns.jobs), ns.max_msg_size)

    index = {}
    for name in names:
        report = REPORTS / name / "index.json"
        if not report.is_file():
            raise SystemExit(f"autobahn: no report for {name} in {REPORTS}: run it first")
        index.update(json.loads(report.read_text()))
    table = summarize(index, names)
    print(table)
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}"
    head = (
        f"# Autobahn|Testsuite\n\n{stamp} · commit {git_commit()} · `make autobahn"
        f"{' ARGS=' + repr(' '.join(sys.argv[1:])) if sys.argv[1:] else ''}` · fuzzing client, "
        f"{len(next(iter(index.values())))} cases per server"
        f"{'' if elapsed is None else f', {elapsed:.0f} s in all'} · "
        f"{versions(python2)} · {machine}.\n\n"
        "Echo servers: scripts/autobahn_apps.py (WebSocketResponse defaults but "
        f"`max_msg_size={ns.max_msg_size}`; the ASGI echo at squall's fixed 16 MiB limit). "
        "Verdicts per server:\n\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(head + table)
    print(f"autobahn: summary in {out.relative_to(ROOT)}, Autobahn's reports in "
          f"{REPORTS.relative_to(ROOT)}/*/index.html")  # fmt: skip
    failed = [
        f"{name} {case}"
        for name in names if name.startswith("squall")
        for case, r in sorted(index[name].items(), key=lambda kv: case_key(kv[0]))
        if r["behavior"] == "FAILED"
    ]  # fmt: skip
    if failed:
        print("autobahn: FAILED on squall: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
