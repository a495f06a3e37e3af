"""A local stand-in for the mail relay when ``CORRAL_SMTP_URL`` is not set: a tiny
SMTP server on loopback that saves each email to ``outbox/`` and prints one line.
(Enough of SMTP for one trusted client, Corral's own; never expose it.)"""

from __future__ import annotations

import asyncio
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path


class Mailbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailbox", daemon=True)

    def start(self) -> Mailbox:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(f"{line}\r\n".encode())
            await writer.drain()

        await reply("220 bizinsights-mailbox ready")
        try:
            while line := await reader.readline():
                verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
                if verb == "EHLO":
                    await reply("250-bizinsights-mailbox\r\n250-8BITMIME\r\n250 SMTPUTF8")
                elif verb == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    body = await reader.readuntil(b"\r\n.\r\n")
                    self._save(body[: -len(b"\r\n.\r\n")].replace(b"\r\n..", b"\r\n."))
                    await reply("250 saved")
                elif verb == "QUIT":
                    await reply("221 bye")
                    break
                else:  # HELO, MAIL, RCPT, RSET, NOOP
                    await reply("250 OK")
        finally:
            writer.close()

    def _save(self, raw: bytes) -> None:
        message = message_from_bytes(raw, policy=policy.default)
        path = self.folder / f"{time.time_ns()}.eml"
        path.write_bytes(raw)
        print(f"📧 to {message['To']}: {message['Subject']}  ({path})", flush=True)
