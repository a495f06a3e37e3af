"""BullMQ on Node: workers and producer are Node scripts in systems/bullmq_node/.

The producer runs in its own Node process (``out_of_process``) and times its own
enqueues, so Node's start-up is not counted; it prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from systems.base import System

HERE = Path(__file__).resolve().parent / "bullmq_node"


class BullMQNode(System):
    id = "bullmq-node"
    label = "BullMQ (Node)"
    package = "bullmq (npm)"
    bulk_api = "Queue.addBulk() (one MULTI per 1,000 jobs)"
    settings: ClassVar[dict[str, Any]] = {
        "worker": "node worker.mjs: new Worker(concurrency: 50), one per process",
        "event loop": "Node's (libuv)",
        "concurrency": "50",
        "task": "async function; INCR through a plain ioredis client of the process",
        "acks": "after the job (moveToFinished)",
        "retention": "default (every completed job kept)",
    }

    def version(self) -> str:
        root = self.ctx.bench_dir / "node_modules"
        if not (root / "bullmq" / "package.json").exists():
            raise RuntimeError(
                "bench/node_modules/bullmq is missing: run python bench/run.py --setup"
            )
        bullmq, ioredis = (
            json.loads((root / name / "package.json").read_text())["version"]
            for name in ("bullmq", "ioredis")
        )
        return f"{bullmq} (ioredis {ioredis}, Node {self.node_version()})"

    def node(self) -> str:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH")
        return node

    def node_version(self) -> str:
        out = subprocess.run([self.node(), "--version"], capture_output=True, text=True)
        return out.stdout.strip()

    def out_of_process(self) -> bool:
        return True

    def producer_command(self, *args: Any) -> list[str]:
        return [self.node(), str(HERE / "producer.mjs"), *map(str, args)]

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[self.node(), str(HERE / "worker.mjs")]] * processes
