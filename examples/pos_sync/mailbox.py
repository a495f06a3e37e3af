"""A local mail sink for trying the example without a mail provider: an SMTP server
on loopback that prints each message it accepts (plain SMTP, no TLS: point
``CORRAL_SMTP_URL=smtp://127.0.0.1:PORT?tls=none`` at it). In production set
``CORRAL_SMTP_URL`` to your provider instead (README: Email).

    python -m examples.pos_sync.mailbox --port 8025
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from email import message_from_bytes, policy


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    def reply(line: str) -> None:
        writer.write(f"{line}\r\n".encode())

    reply("220 pos-sync mailbox")
    try:
        while line := await reader.readline():
            verb = line.decode(errors="replace").strip().split(" ")[0].upper()
            if verb == "EHLO":
                reply("250-pos-sync mailbox\r\n250 8BITMIME")
            elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                reply("250 OK")
            elif verb == "DATA":
                reply("354 End data with <CR><LF>.<CR><LF>")
                await writer.drain()
                lines = []
                while (data := await reader.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                show(b"".join(lines))
                reply("250 Message accepted")
            elif verb == "QUIT":
                reply("221 Bye")
                break
            else:
                reply("502 Command not implemented")
            await writer.drain()
    finally:
        writer.close()


def show(raw: bytes) -> None:
    message = message_from_bytes(raw, policy=policy.default)
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    print(f"\n📧 To: {message['To']}\n   Subject: {message['Subject']}\n", flush=True)
    print("   " + text.strip().replace("\n", "\n   ") + "\n", flush=True)


async def serve(port: int) -> None:
    server = await asyncio.start_server(session, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="a local SMTP sink that prints messages")
    parser.add_argument("--port", type=int, default=8025)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
