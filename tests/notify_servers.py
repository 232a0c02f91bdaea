"""Real local servers that notifications are delivered to: an HTTP endpoint for apprise's `json://` and an
SMTP server (aiosmtpd) for `mailto://`, both on loopback in the test's event loop; and one that accepts and
never answers (a target that hangs)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    at: float  # wall clock, when the server had it
    title: str
    body: str
    kind: str  # apprise's type (info, warning, failure) or "email"


@dataclass
class Webhook:
    """apprise `json://127.0.0.1:PORT/notify` posts here."""

    got: list[Received] = field(default_factory=list)
    pings: list[float] = field(default_factory=list)  # GET /ping: a heartbeat
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> Webhook:
        app = web.Application()
        app.router.add_post("/notify", self._post)
        app.router.add_get("/ping", self._ping)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/notify"

    async def _post(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.got.append(
            Received(time.time(), data.get("title", ""), data.get("message", ""), data.get("type", ""))
        )
        return web.Response(text="ok")

    async def _ping(self, request: web.Request) -> web.Response:
        self.pings.append(time.time())
        return web.Response(text="ok")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def titles(self) -> list[str]:
        return [r.title for r in self.got]


class _Mailbox:
    def __init__(self, got: list[Received]) -> None:
        self.got = got

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        mail = email.message_from_bytes(content, policy=email.policy.default)
        part = mail.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
        body = part.get_content() if part is not None else ""
        self.got.append(Received(time.time(), str(mail["Subject"]), body, "email"))
        return "250 OK"


@dataclass
class Mailserver:
    """A real SMTP server (aiosmtpd) on loopback; apprise's `mailto://` delivers to it."""

    got: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> Mailserver:
        loop = asyncio.get_running_loop()
        mailbox = _Mailbox(self.got)
        self._server = await loop.create_server(lambda: SMTP(mailbox), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"mailto://cockpit@example.com?smtp=127.0.0.1&port={self.port}&to=ops@example.com&secure=no"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class Hanging:
    """Accepts connections and never answers: a target whose server hangs."""

    port: int = 0
    _server: asyncio.Server | None = None
    _held: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> Hanging:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._held.append(writer)

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/notify"

    async def stop(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()
