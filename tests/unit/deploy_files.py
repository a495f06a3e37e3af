"""Reading the deployment files under deploy/ the way their runtimes would, and parsing
the commands in them with Corral's own CLI (tests/unit/test_deploy_manifests.py)."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import click
import yaml

from corral.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
DOCKERFILE = DEPLOY / "Dockerfile"


def manifests() -> list[dict[str, Any]]:
    """Every document of every deploy/k8s/*.yaml."""
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)
    return docs


def find(kind: str, name: str | None = None) -> dict[str, Any]:
    """The one manifest of ``kind`` (named ``name``, if given)."""
    found = [
        doc
        for doc in manifests()
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def only_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{deployment['metadata']['name']}: one container expected"
    container: dict[str, Any] = containers[0]
    return container


def container_argv(container: dict[str, Any]) -> list[str]:
    """What the container runs: its command, else the image's ENTRYPOINT; then its args,
    else the image's CMD (Kubernetes' rules)."""
    instructions = dict(dockerfile_instructions())
    command = container.get("command") or json.loads(instructions["ENTRYPOINT"])
    args = container.get("args") if "args" in container else json.loads(instructions["CMD"])
    return [str(part) for part in [*command, *args]]


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment, with ConfigMap and Secret references resolved from
    the manifests in deploy/k8s (a reference to a missing key fails)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find("ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(find("Secret", source["secretRef"]["name"])["stringData"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            data = find("Secret", ref["secretKeyRef"]["name"])["stringData"]
            env[item["name"]] = data[ref["secretKeyRef"]["key"]]
        else:
            data = find("ConfigMap", ref["configMapKeyRef"]["name"])["data"]
            env[item["name"]] = data[ref["configMapKeyRef"]["key"]]
    return {name: str(value) for name, value in env.items()}


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A port given by number or by the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"no container port named {port!r} (has {sorted(named)})"
    return int(named[port])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    out = []
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values, in order]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{path.name}: {line!r} before any [Section]"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an EnvironmentFile."""
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def seconds(value: str) -> float:
    """A systemd time span: ``45``, ``45s``, ``1min 30s``."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit_name in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        assert unit_name in units, f"unknown time unit in {value!r}"
        total += float(number) * units[unit_name]
    return total


def exec_argv(value: str) -> list[str]:
    # A leading "-", "@", "+" or "!" is a systemd prefix, not part of the path.
    return shlex.split(value.lstrip("-@+!:"))


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ without the host's Corral settings, plus ``env``."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("CORRAL_") and k != "REDIS_URL"
    }
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        yield


def parse_cli(argv: list[str], env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """(command name, its parsed parameters) for ``argv`` run as the ``corral`` program,
    with ``env`` as the environment (options read their env vars), without running it.
    Raises click.UsageError for an unknown command or option, or a bad value."""
    assert Path(argv[0]).name == "corral", f"{argv[0]!r} is not the corral program"
    with environment(env), main.make_context("corral", list(argv[1:])) as ctx:
        ctx.ensure_object(dict)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, sub_args = main.resolve_command(ctx, rest)
        assert name is not None and command is not None
        with command.make_context(name, sub_args, parent=ctx) as sub:
            return name, dict(sub.params)


def check_cli(argv: list[str], env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """parse_cli, failing the test with click's message for a bad command line."""
    try:
        return parse_cli(argv, env)
    except click.UsageError as exc:
        raise AssertionError(f"{shlex.join(argv)}: {exc.format_message()}") from None
