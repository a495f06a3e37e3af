"""A signed webhook when a job completes, verified on the receiving side.

Runs a small receiver on 127.0.0.1 (opened with ``allow``: the SSRF guard refuses
loopback otherwise), a worker, and one job::

    python examples/notifications.py
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from corral import Corral
from corral.notify import InvalidSignature, NotifySettings, Webhook, verify
from corral.worker import Worker

SECRET = Webhook.new_secret()  # keep yours in the environment of both sides
received: list[dict[str, Any]] = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            event = verify(body, dict(self.headers), SECRET)
        except InvalidSignature as exc:
            print("refused:", exc)
            self.send_response(400)
        else:
            received.append({"id": self.headers["webhook-id"], **event})
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
hook = Webhook(f"http://127.0.0.1:{server.server_port}/hooks", secret=SECRET)
app = Corral(notifications=NotifySettings(allow=["127.0.0.1"]))


@app.task(name="orders.sync", notify=hook)
async def sync_orders(restaurant: int) -> dict[str, int]:
    return {"orders": 5962}


async def main() -> None:
    worker = Worker(app, concurrency=2)
    running = asyncio.create_task(worker.run())
    job = await sync_orders.enqueue(42)
    print("result:", await job.result(timeout=10))
    async with asyncio.timeout(10):
        while not received:
            await asyncio.sleep(0.05)
    event = received[0]
    print(
        f"webhook: {event['type']} for job {event['data']['id']} "
        f"(webhook-id {event['id']}), signature verified"
    )
    worker.stop()
    await running
    await app.close()
    server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
