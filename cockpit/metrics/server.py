"""`GET /metrics` on `[metrics] listen = "HOST:PORT"`, served by aiohttp inside the engine's event loop.

    server = MetricsServer(metrics.exposition, "127.0.0.1:9464")
    await server.start()        # MetricsListenError (exit 2) when the address cannot be bound
    server.address              # ("127.0.0.1", 9464): the bound port, also for "HOST:0"
    await server.stop()

`/` is a short page linking `/metrics`; any other path is a 404. The endpoint has no authentication: it is
meant for 127.0.0.1, or a port firewalled to the Prometheus server.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from cockpit.core.errors import UsageError

log = logging.getLogger(__name__)

INDEX = (
    "<!doctype html><title>cockpit metrics</title>"
    '<p>cockpit engine: Prometheus metrics at <a href="/metrics">/metrics</a></p>\n'
)


class MetricsListenError(UsageError):
    """`[metrics] listen` names an address the engine cannot serve on (exit code 2: fix the config)."""


def split_listen(listen: str) -> tuple[str, int]:
    """`"127.0.0.1:9464"` → ("127.0.0.1", 9464); `"[::1]:9464"` → ("::1", 9464)."""
    host, _, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _why(exc: OSError) -> tuple[str, str]:
    """What went wrong binding, and what to do about it."""
    if exc.errno == errno.EADDRINUSE:
        return (
            "the address is already in use (another engine's metrics, or another exporter, listens there)",
            "give this engine its own port in [metrics] listen (one port per engine), or stop what listens "
            "there (`ss -ltnp` names it)",
        )
    if exc.errno == errno.EACCES:
        return (
            "permission denied (ports below 1024 need privileges)",
            "use a port from 1024 up in [metrics] listen, e.g. 127.0.0.1:9464",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            "that host is not an address of this machine",
            "use 127.0.0.1 (or an address of this machine) in [metrics] listen",
        )
    if isinstance(exc, socket.gaierror):
        return (f"the host name does not resolve ({exc.strerror})", "use an IP address in [metrics] listen")
    return (exc.strerror or str(exc), "check [metrics] listen in the config")


class MetricsServer:
    def __init__(self, render: Callable[[], bytes], listen: str) -> None:
        self.listen = listen
        self._render = render
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self) -> None:
        host, port = split_listen(self.listen)
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._index)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            detail, fix = _why(exc)
            raise MetricsListenError(
                f"cannot serve metrics on {self.listen}",
                f'metrics.listen = "{self.listen}": {detail}',
                fix,
            ) from exc
        self._runner = runner
        bound = runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))
        log.info("metrics at http://%s/metrics", self.url_host)

    @property
    def url_host(self) -> str:
        if self.address is None:
            return self.listen
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            body = self._render()
        except Exception:  # a bug in a reading: the scrape fails (Prometheus shows it), the engine goes on
            log.exception("metrics scrape failed")
            return web.Response(status=500, text="metrics scrape failed: see the engine's log\n")
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=INDEX, content_type="text/html")
