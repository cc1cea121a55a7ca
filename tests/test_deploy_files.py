"""deploy/: the systemd units, the Dockerfile and the Kubernetes manifests.

What can be checked without systemd, Docker or a cluster: the command lines they hold are run
(with the application swapped for tests/nginx_app.py, on loopback) exactly as those would run
them, and the numbers that have to agree across files (stop timeouts against squall's graceful
timeout, probe paths and ports, labels, the user) are compared. deploy/nginx/squall.conf is
run by tests/test_nginx.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from squall.cli import parse_config
from squall.http.proxy import TrustedProxies
from squall.server.config import Config

from .server_process import SquallProcess

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
TESTS = Path(__file__).resolve().parent
APP = ["nginx_app:app", "--app-dir", str(TESTS)]
KILL_MARGIN = 5  # squall kills a worker still running this long after the graceful timeout
SUPERVISOR_MIB = 30  # the supervisor's resident memory, about
DOC = ROOT / "docs" / "deployment.md"
TIMEOUT = 15.0

# What systemd does for a socket-activated service: the socket at fd 3, LISTEN_PID = our pid.
LAUNCHER = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.executable, [sys.executable, "-m", "squall", *sys.argv[2:]])
"""


def swap_app(args: list[str]) -> list[str]:
    """``args`` with the deployed ``app:app`` replaced by the test application."""
    assert args.count("app:app") == 1, args
    i = args.index("app:app")
    return [*args[:i], *APP, *args[i + 1 :]]


def get(port: int, path: str, *headers: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        head = "".join(f"{h}\r\n" for h in headers)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{head}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


# -- systemd -----------------------------------------------------------------------------------


def mebibytes(size: str) -> float:
    """A memory size as systemd (``2G``) or Kubernetes (``1Gi``, ``512Mi``) writes it, in MiB."""
    number, unit_ = re.fullmatch(r"(\d+)([KMGT]?)i?", size).groups()  # type: ignore[union-attr]
    return int(number) * 1024.0 ** ("KMGT".index(unit_) - 1 if unit_ else -2)


def check_memory_bound(config: Config, limit: str) -> None:
    """The workers, one replacement beside them and the supervisor fit in ``limit`` while each
    worker stays under --max-worker-memory (docs/deployment.md)."""
    assert config.max_worker_memory > 0
    needed = (config.workers + 1) * config.max_worker_memory + SUPERVISOR_MIB
    assert needed < mebibytes(limit), (needed, limit)


def doc_block(language: str, marker: str) -> str:
    """The ``language`` code block of docs/deployment.md that contains ``marker``."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.M | re.S)
    (found,) = [b for b in blocks if marker in b]
    return str(found)


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (keys may repeat, as Environment=)."""
    return parse_unit((DEPLOY / "systemd" / name).read_text())


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key, []).append(value)
    return sections


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("needs systemd-analyze")
    # verify insists on an executable ExecStart and an existing WorkingDirectory.
    squall = Path(sys.executable).parent / "squall"
    if not squall.exists():
        pytest.skip(f"no {squall} (squall not installed in this interpreter's bin)")
    text = (DEPLOY / "systemd" / "squall.service").read_text()
    text = text.replace("/srv/app/.venv/bin/squall", str(squall))
    text = text.replace("WorkingDirectory=/srv/app", f"WorkingDirectory={tmp_path}")
    (tmp_path / "squall.service").write_text(text)
    shutil.copy(DEPLOY / "systemd" / "squall.socket", tmp_path / "squall.socket")
    done = subprocess.run(
        [analyze, "verify", "--man=no", "squall.socket", "squall.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and not done.stdout + done.stderr, done.stdout + done.stderr


def test_systemd_exec_start_serves_on_the_activated_socket() -> None:
    """The unit's ExecStart, environment and signals, on a socket passed as systemd passes
    it: serves with its workers, trusts nginx's headers, reloads on SIGHUP (ExecReload),
    stops with KillSignal well within TimeoutStopSec."""
    service, socket_unit = unit("squall.service")["Service"], unit("squall.socket")["Socket"]
    assert socket_unit["ListenStream"] == ["127.0.0.1:8001"]  # nginx's first upstream
    argv = shlex.split(service["ExecStart"][0])
    assert argv[0] == "/srv/app/.venv/bin/squall"
    config = parse_config(argv[1:])
    assert config.workers > 1 and config.host == "127.0.0.1"  # --host unused: the socket's
    assert float(service["TimeoutStopSec"][0]) > config.timeout_graceful_shutdown + KILL_MARGIN
    check_memory_bound(config, service["MemoryMax"][0])
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["KillMode"] == ["mixed"]  # SIGTERM to the supervisor only
    env = dict(value.partition("=")[::2] for value in service["Environment"])
    kill_signal = getattr(signal, service["KillSignal"][0])

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(int(socket_unit["Backlog"][0]))
    port, fd = listener.getsockname()[1], listener.fileno()
    launcher = [sys.executable, "-c", LAUNCHER, str(fd)]
    try:
        with SquallProcess(
            TESTS, *swap_app(argv[1:]), env=env, pass_fds=[fd], launcher=launcher
        ) as server:
            listener.close()
            assert server.wait_ready() == f"http://127.0.0.1:{port}"
            old = server.wait_workers(config.workers)
            assert get(port, "/healthz") == (200, b"ok")
            _, body = get(port, "/info", "X-Forwarded-For: 198.51.100.7")
            assert json.loads(body)["remote"] == "198.51.100.7"  # FORWARDED_ALLOW_IPS
            server.send_signal(signal.SIGHUP)
            new = server.wait_workers(config.workers, exclude=old, timeout=30)
            assert json.loads(get(port, "/info")[1])["pid"] in new
            code, took = server.stop(kill_signal)
            assert code == 0 and took < config.timeout_graceful_shutdown
    finally:
        listener.close()


# -- Docker ------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def one(instructions: list[tuple[str, str]], keyword: str) -> str:
    found = [rest for kw, rest in instructions if kw == keyword]
    assert len(found) == 1, (keyword, found)
    return found[0]


def test_dockerfile_command_and_healthcheck_run() -> None:
    """The image's ENTRYPOINT + CMD serve (host and port swapped for a loopback test port);
    its HEALTHCHECK command passes against it and fails once it stopped with STOPSIGNAL."""
    instructions = dockerfile()
    stages = [rest for kw, rest in instructions if kw == "FROM"]
    assert stages[-1] == "python:3.11-slim"
    # squall from its sdist in the build context, compiled in the full image (never by name from
    # an index, where it is not), then installed in the slim one.
    assert stages[0] == "python:3.11 AS squall-wheel"
    runs = [rest for kw, rest in instructions if kw == "RUN"]
    assert any("SQUALL_EXPECT_COMPILED=1 pip wheel" in r and "squall-*.tar.gz" in r for r in runs)
    assert any(r.startswith("pip install /wheels/squall-*.whl") for r in runs)
    uid = one(instructions, "USER").split(":")[0]
    assert uid not in ("root", "0")
    assert any(f"--uid {uid}" in rest for kw, rest in instructions if kw == "RUN")  # useradd
    entrypoint = json.loads(one(instructions, "ENTRYPOINT"))
    cmd = json.loads(one(instructions, "CMD"))
    assert entrypoint == ["squall"]
    config = parse_config(cmd)
    assert (config.host, config.port, config.workers) == ("0.0.0.0", 8000, 2)
    assert one(instructions, "EXPOSE") == str(config.port)
    stop_signal = getattr(signal, one(instructions, "STOPSIGNAL"))
    options, _, check = one(instructions, "HEALTHCHECK").partition("CMD ")
    assert "--timeout=" in options and "--interval=" in options
    check_argv = json.loads(check)

    args = swap_app(cmd)
    args[args.index("0.0.0.0")] = "127.0.0.1"  # loopback only in tests
    args[args.index("8000")] = "0"
    with SquallProcess(TESTS, *args) as server:
        server.wait_ready()
        assert len(server.wait_workers(config.workers)) == config.workers
        probe = [
            sys.executable if check_argv[0] == "python" else check_argv[0],
            *(a.replace(":8000/", f":{server.port}/") for a in check_argv[1:]),
        ]
        assert subprocess.run(probe, capture_output=True, timeout=TIMEOUT).returncode == 0
        code, _ = server.stop(stop_signal)
        assert code == 0
    assert subprocess.run(probe, capture_output=True, timeout=TIMEOUT).returncode != 0


# -- Kubernetes --------------------------------------------------------------------------------


def manifest(name: str) -> Any:
    yaml = pytest.importorskip("yaml", reason="needs PyYAML to read the manifests")
    with open(DEPLOY / "kubernetes" / name) as f:
        documents = [d for d in yaml.safe_load_all(f) if d is not None]
    assert len(documents) == 1
    return documents[0]


def test_kubernetes_manifests_agree() -> None:
    deployment, service = manifest("deployment.yaml"), manifest("service.yaml")
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()

    # The arguments are a valid squall command line, for the port the probes and Service use.
    config: Config = parse_config(swap_app(container["args"]))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[service["spec"]["ports"][0]["targetPort"]] == config.port
    assert config.host == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get_ = container[probe]["httpGet"]
        assert (get_["path"], ports[get_["port"]]) == ("/healthz", config.port), probe

    # SIGTERM comes after preStop, and the grace period counts both.
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and int(sleep[1]) >= 3
    needed = int(sleep[1]) + config.timeout_graceful_shutdown + KILL_MARGIN
    assert pod["terminationGracePeriodSeconds"] > needed

    env = {e["name"]: e["value"] for e in container["env"]}
    TrustedProxies(env["FORWARDED_ALLOW_IPS"])  # parses
    assert env["FORWARDED_ALLOW_IPS"] != "*"
    assert int(container["resources"]["requests"]["cpu"]) == config.workers
    check_memory_bound(config, container["resources"]["limits"]["memory"])

    # The Dockerfile's user, which runAsNonRoot checks by number.
    user = one(dockerfile(), "USER").split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user
    mounts = {m["mountPath"] for m in container.get("volumeMounts", ())}
    assert not container["securityContext"]["readOnlyRootFilesystem"] or "/tmp" in mounts


def test_the_documented_unit_and_pod_hold_together() -> None:
    """docs/deployment.md's copy-paste systemd unit and pod spec: valid squall command lines
    whose stop and memory numbers agree with the unit's and the pod's, as the files in deploy/
    (the pod spec is the manifest's, abridged)."""
    service = parse_unit(doc_block("ini", "[Service]"))["Service"]
    argv = shlex.split(service["ExecStart"][0])
    config = parse_config(argv[1:])
    assert config.workers > 1 and config.max_worker_lifetime > 0
    assert float(service["TimeoutStopSec"][0]) > config.timeout_graceful_shutdown + KILL_MARGIN
    check_memory_bound(config, service["MemoryMax"][0])
    assert service["KillMode"] == ["mixed"]

    yaml = pytest.importorskip("yaml", reason="needs PyYAML to read the snippet")
    pod = yaml.safe_load(doc_block("yaml", "terminationGracePeriodSeconds"))["spec"]
    (container,) = pod["containers"]
    config = parse_config(swap_app(container["args"]))
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    needed = int(sleep[1]) + config.timeout_graceful_shutdown + KILL_MARGIN
    assert pod["terminationGracePeriodSeconds"] > needed
    check_memory_bound(config, container["resources"]["limits"]["memory"])
    full = manifest("deployment.yaml")["spec"]["template"]["spec"]
    (deployed,) = full["containers"]
    assert pod["terminationGracePeriodSeconds"] == full["terminationGracePeriodSeconds"]
    for key in ("args", "ports", "lifecycle", "resources", *(k for k in deployed if "Probe" in k)):
        assert container[key] == deployed[key], key


def test_deploy_files_are_documented() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text()
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert str(path.relative_to(ROOT)) in text, f"docs/deployment.md: {path}"
    assert os.path.exists(ROOT / "README.md")
    assert "docs/deployment.md" in (ROOT / "README.md").read_text()
