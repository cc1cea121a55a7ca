"""Realistic apps for the differential tests, written only against the aiohttp.web API.

Each module defines ``make_app(web)`` (``web`` is ``aiohttp.web`` or ``squall.web``) and
``REQUESTS``, the list of :class:`tests.compat.harness.Req` sent to both servers.
"""
