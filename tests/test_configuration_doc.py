"""docs/configuration.md lists every setting there is, and only those.

Each table there follows a ``<!-- config-table: NAME -->`` line; its first column names the
settings (in code font). They are compared with what the code accepts, read from the objects
themselves: the argparse parsers of ``squall`` and ``python -m squall.web``, the signatures of
``run_app``, the runners, the sites and ``squall.asgi.serve`` (and the keywords ``AppRunner``
takes through ``**kwargs``, from its source), and the environment variables the sources read.
Where a setting has a plain default (a number, a string, a bool, None), its row must show it.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from squall import asgi, cli, web
from squall.web import __main__ as web_main
from squall.web import appserver, runner

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"

TABLE = re.compile(r"^<!-- config-table: (.+?) -->$")
CODE = re.compile(r"`([^`]+)`")


def tables() -> dict[str, dict[str, str]]:
    """NAME -> {setting: its whole row}, for every table of the page."""
    found: dict[str, dict[str, str]] = {}
    lines = DOC.read_text().splitlines()
    for index, line in enumerate(lines):
        marker = TABLE.match(line)
        if marker is None:
            continue
        rows: dict[str, str] = {}
        for row in lines[index + 3 :]:  # past the header and the separator
            if not row.startswith("|"):
                break
            first = row.split(" | ")[0].removeprefix("| ")
            for name in CODE.findall(first):
                rows[name.split()[0]] = row
        found[marker.group(1)] = rows
    return found


def _options(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Every option string (and each positional's metavar) -> its default."""
    found: dict[str, Any] = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        default = None if action.default == argparse.SUPPRESS else action.default
        if not action.option_strings:
            found[str(action.metavar or action.dest)] = default
        elif "$" in (action.help or ""):  # a default taken from the environment
            found.update(dict.fromkeys(action.option_strings, None))
        else:
            found.update(dict.fromkeys(action.option_strings, default))
    return found


def _keywords(*functions: Callable[..., Any], skip: int = 0) -> dict[str, Any]:
    """The named parameters of ``functions`` (after the first ``skip``) -> their defaults."""
    found: dict[str, Any] = {}
    for function in functions:
        params = list(inspect.signature(function).parameters.values())[skip:]
        for param in params:
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                default = None if param.default is param.empty else param.default
                found.setdefault(param.name, default)
    return found


def _runner_kwargs() -> set[str]:
    """The keywords ``AppRunner`` takes through ``**kwargs``: what its server set-up pops."""
    sources = (runner.AppRunner._make_server, appserver.app_server)
    trees = [ast.parse(textwrap.dedent(inspect.getsource(f))) for f in sources]
    names = set(appserver._LIMIT_KEYS)
    for node in (node for tree in trees for node in ast.walk(tree)):
        popped = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "pop"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "kwargs"
        )
        if popped:
            assert isinstance(node, ast.Call)
            first = node.args[0]
            if isinstance(first, ast.Constant):
                names.add(str(first.value))
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple):
            names |= {str(e.value) for e in node.iter.elts if isinstance(e, ast.Constant)}
    return names


ENV_READ = re.compile(
    r"""os\.(?:environ(?:\.get|\.pop)?\(\s*|environ\[\s*|getenv\(\s*)["']([A-Z][A-Z0-9_]*)["']"""
)


def _environment() -> dict[str, Any]:
    sources = [*sorted((ROOT / "src").rglob("*.py")), ROOT / "setup.py"]
    return {name: None for path in sources for name in ENV_READ.findall(path.read_text())}


def _app_runner() -> dict[str, Any]:
    found = _keywords(web.AppRunner, skip=1) | _keywords(runner.BaseRunner)
    return found | {name: None for name in _runner_kwargs() if name not in found}


# NAME of a table -> the settings the code has, with their defaults.
SOURCES: dict[str, Callable[[], dict[str, Any]]] = {
    "squall": lambda: _options(cli.build_parser()),
    "python -m squall.web": lambda: _options(web_main.build_parser()),
    "web.run_app": lambda: _keywords(web.run_app, skip=1),
    "web.AppRunner": _app_runner,
    "web.TCPSite": lambda: _keywords(web.TCPSite, skip=1),
    "web.UnixSite": lambda: _keywords(web.UnixSite, skip=1),
    "web.SockSite": lambda: _keywords(web.SockSite, skip=1),
    "squall.asgi.serve": lambda: _keywords(asgi.serve, skip=1),
    "environment": _environment,
}


def test_every_source_has_a_table() -> None:
    assert sorted(tables()) == sorted(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_table_lists_exactly_what_the_code_has(name: str) -> None:
    code = SOURCES[name]()
    documented = tables()[name]
    missing = sorted(set(code) - set(documented))
    stale = sorted(set(documented) - set(code))
    assert not missing, f"docs/configuration.md, table {name!r}: document {missing}"
    assert not stale, f"docs/configuration.md, table {name!r}: {stale} no longer exist"


def _shown(default: Any, command_line: bool) -> str | None:
    """How a default appears in its row, or None where it is not checked."""
    if isinstance(default, bool) or default is None or default == "" or default == []:
        return None  # on/off and none are worded; "" is its own row's business
    if command_line:
        return f"{default:g}" if isinstance(default, float) else str(default)
    return repr(default) if isinstance(default, int | float | str) else None


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_defaults_shown_are_the_code_s(name: str) -> None:
    command_line = name in ("squall", "python -m squall.web")
    rows = tables()[name]
    for setting, default in SOURCES[name]().items():
        shown = _shown(default, command_line)
        if shown is not None:
            assert f"`{shown}`" in rows[setting], f"{name}: {setting} defaults to {shown}"


def test_the_tables_find_what_they_should() -> None:
    """The readers above work: a few settings each must find, whatever else changes."""
    assert {"--host", "--no-access-log", "MODULE:APP", "--version"} <= set(SOURCES["squall"]())
    assert {"-P", "--port", "entry-func"} <= set(SOURCES["python -m squall.web"]())
    assert {"header_timeout", "max_headers", "http2", "forwarded_allow_ips"} <= set(
        SOURCES["web.AppRunner"]()
    )
    assert {"SQUALL_NO_UVLOOP", "LISTEN_FDS", "FORWARDED_ALLOW_IPS"} <= set(
        SOURCES["environment"]()
    )
