"""``pytest -p squall.testing.aiohttp_plugin``: an aiohttp test suite, unmodified, on squall.

Loading this plugin installs :func:`squall.install_as_aiohttp` before any conftest.py runs, then
loads ``aiohttp.pytest_plugin``, whose ``aiohttp_client``/``aiohttp_server``/
``aiohttp_raw_server``/``loop`` fixtures now start squall's server (through the aliased
``aiohttp.test_utils``) and talk to it with aiohttp's real client. See docs/migrating.md.
"""

from __future__ import annotations

from ..aiohttp_alias import install_as_aiohttp

install_as_aiohttp()

pytest_plugins = ("aiohttp.pytest_plugin",)
