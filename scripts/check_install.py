"""Install squall as a user would, outside the checkout, and check that it works there.

In a new directory (a temporary one, or the one given): a fresh venv with nothing but pip builds
squall's wheel from this checkout the standard way (``pip wheel``, in pip's isolated build
environment), installs it with its ``[testing]`` extra and pytest, then checks that

- the wheel is compiled for this platform and ``squall.COMPILED`` is True (unless
  ``SQUALL_NO_COMPILE`` is set: then both say pure Python);
- the seed example serves ``Hello, World!`` on http://127.0.0.1:8080/;
- a test file that uses the pytest plugin's ``squall_client`` fixture passes;
- the install commands of README.md and docs/ (the blocks marked ``<!-- docs-test: install -->``)
  work as printed: each page's, in order, in a fresh directory with ``$SQUALL_REPO`` pointing at
  this checkout (its committed state, as a git URL) and a venv on PATH. These builds are made with
  ``SQUALL_NO_COMPILE=1``: the compiled build is checked once above, and a dozen compiled builds
  would take a quarter of an hour.

It needs the package index (for the build requirements and the dependencies) and a C compiler for
the compiled build. ``make check-install`` runs it; so does CI. Usage:
``python scripts/check_install.py [DIRECTORY]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from doc_blocks import Block, all_blocks  # noqa: E402

USER_TEST = """
from squall import web


async def hello(request):
    return web.Response(text=f"Hello, {request.match_info['name']}!")


async def test_hello(squall_client):
    app = web.Application()
    app.router.add_get("/{name}", hello)
    client = await squall_client(app)
    resp = await client.get("/squall")
    assert resp.status == 200
    assert await resp.text() == "Hello, squall!"
"""


def run(*args: str | Path, cwd: Path) -> str:
    print("+", " ".join(map(str, args)), flush=True)
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"exit {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def get(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def check(where: Path) -> None:
    expect_compiled = not os.environ.get("SQUALL_NO_COMPILE")
    venv = where / "venv"
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "venv", venv, cwd=where)
    run(python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", where / "dist", ROOT, cwd=where)
    (wheel,) = (where / "dist").glob("squall-*.whl")
    print("wheel:", wheel.name, flush=True)
    assert wheel.name.endswith("-py3-none-any.whl") != expect_compiled, wheel.name
    run(python, "-m", "pip", "install", "-q", f"{wheel}[testing]", "pytest", cwd=where)
    compiled = run(python, "-c", "import squall; print(squall.COMPILED)", cwd=where).strip()
    print("squall.COMPILED:", compiled, flush=True)
    assert compiled == str(expect_compiled), compiled

    (where / "seed.py").write_bytes((ROOT / "examples" / "seed.py").read_bytes())
    seed = subprocess.Popen([python, "seed.py"], cwd=where, stdout=subprocess.DEVNULL)
    try:
        answer = get("http://127.0.0.1:8080/World", time.monotonic() + 15)
        assert answer == "Hello, World!", answer
        print("seed example:", answer, flush=True)
    finally:
        seed.terminate()
        seed.wait(timeout=15)

    (where / "test_user.py").write_text(USER_TEST)
    print(run(python, "-m", "pytest", "-q", "test_user.py", cwd=where).strip().splitlines()[-1])


def check_docs(where: Path) -> None:
    pages: dict[Path, list[Block]] = {}
    for block in all_blocks():
        if block.mark == "install":
            pages.setdefault(block.page, []).append(block)
    assert pages, "no <!-- docs-test: install --> block"
    for page, blocks in pages.items():
        name = page.relative_to(ROOT)
        home = where / f"docs-{page.stem}"
        home.mkdir()
        run(sys.executable, "-m", "venv", home / ".venv", cwd=home)
        env = os.environ | {
            # file://localhost/...: pip refuses "squall @ git+file:///..." (it takes it for a path)
            "SQUALL_REPO": f"file://localhost{ROOT}",
            "SQUALL_NO_COMPILE": "1",
            "PATH": f"{home / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        script = "".join(block.code for block in blocks)
        print(f"+ {name}: {len(blocks)} install blocks", flush=True)
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-e", "-x", "-c", script], cwd=home, env=env, capture_output=True, text=True
        )
        if done.returncode:
            lines = ", ".join(str(block.line) for block in blocks)
            sys.exit(
                f"{name} (blocks at lines {lines}): exit {done.returncode}\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
            )
        print(f"  {name}: ran as printed ({time.monotonic() - started:.0f} s)", flush=True)


def main() -> None:
    if len(sys.argv) > 1:
        where = Path(sys.argv[1]).resolve()
        where.mkdir(parents=True, exist_ok=True)
        check(where)
        check_docs(where)
    else:
        with tempfile.TemporaryDirectory(prefix="squall-install-") as tmp:
            check(Path(tmp))
            check_docs(Path(tmp))
    print("check_install: squall installs and runs outside the checkout")


if __name__ == "__main__":
    main()
