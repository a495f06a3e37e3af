"""The deployment files (deploy/, docs/deploy.md) agree with the code they run: every
command line parses with Corral's own CLI in the environment it gets, every stop timeout
outlasts the worker's --grace, probes hit routes `corral serve` has and that answer
without a key, and the autoscaling query selects series the real /metrics serves."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from corral import Corral
from corral.cli.loader import load_app
from corral.cli.serve import _is_loopback
from corral.settings import resolve_url
from corral.web import create_app
from corral.web.auth import Scope, parse_api_keys
from tests.unit.deploy_files import (
    DEPLOY,
    ROOT,
    SYSTEMD,
    check_cli,
    container_argv,
    container_env,
    container_port,
    dockerfile_instructions,
    env_file,
    exec_argv,
    find,
    manifests,
    only_container,
    parse_cli,
    seconds,
    unit,
)

# After --grace the worker takes up to 2 s more to record the jobs it hands back
# (README, "Graceful shutdown"); a stop timeout must cover both.
RECORD_MARGIN = 2.0

DOCS = ROOT / "docs" / "deploy.md"


def worker_command() -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """The worker Deployment, its container's environment and its parsed CLI params."""
    deployment = find("Deployment", "corral-worker")
    container = only_container(deployment)
    env = container_env(container)
    name, params = check_cli(container_argv(container), env)
    assert name == "worker"
    return deployment, env, params


def api_command() -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    deployment = find("Deployment", "corral-api")
    container = only_container(deployment)
    env = container_env(container)
    name, params = check_cli(container_argv(container), env)
    assert name == "serve"
    return deployment, env, params


def waiting_selector() -> tuple[str, dict[str, tuple[str, str]]]:
    """The metric and label matchers ({label: (op, value)}) of the KEDA query."""
    (trigger,) = find("ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    match = re.search(r"(corral_\w+)\{([^}]*)\}", trigger["metadata"]["query"])
    assert match, f"no corral_* selector in {trigger['metadata']['query']!r}"
    matchers = {
        label: (op, value)
        for label, op, value in re.findall(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"', match[2])
    }
    return match[1], matchers


def selects(matchers: dict[str, tuple[str, str]], labels: dict[str, str]) -> bool:
    """Whether PromQL label matchers select a series with these labels."""
    for label, (op, value) in matchers.items():
        actual = labels.get(label, "")
        hit = re.fullmatch(value, actual) is not None if "~" in op else actual == value
        if hit != (op in ("=", "=~")):
            return False
    return True


def test_the_cli_check_catches_a_renamed_flag_and_a_bad_env_value() -> None:
    assert parse_cli(["corral", "worker", "a:app", "--grace", "5"], {})[1]["grace"] == 5
    with pytest.raises(AssertionError, match="No such option"):
        check_cli(["corral", "worker", "a:app", "--graze", "5"], {})
    with pytest.raises(AssertionError, match="No such command"):
        check_cli(["corral", "wrker", "a:app"], {})
    with pytest.raises(AssertionError, match="concurrency"):
        check_cli(["corral", "worker", "a:app"], {"CORRAL_CONCURRENCY": "0"})


def test_every_manifest_is_a_named_kubernetes_object() -> None:
    docs = manifests()
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "ScaledObject"} <= kinds
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"], doc


def test_worker_pods_get_longer_to_stop_than_the_worker_takes() -> None:
    deployment, _, params = worker_command()
    period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert period > params["grace"] + RECORD_MARGIN, (
        f"terminationGracePeriodSeconds {period} must exceed --grace {params['grace']} "
        f"+ {RECORD_MARGIN}: a pod killed sooner leaves its jobs to wait out their lease"
    )


def test_worker_environment_is_what_the_cli_and_app_accept() -> None:
    _, env, params = worker_command()
    resolve_url(env["CORRAL_URL"])  # a known scheme
    assert params["concurrency"] == int(env["CORRAL_CONCURRENCY"])
    assert params["log_format"] == env["CORRAL_LOG_FORMAT"]
    app = load_app(params["app_spec"])
    served = params["queues"].split(",")
    task_queues = {task.queue for task in app.tasks.values()}
    assert set(served) <= task_queues, f"workers serve queues no task uses: {served}"


def test_api_listens_where_its_probes_and_service_point() -> None:
    deployment, _, params = api_command()
    container = only_container(deployment)
    assert not _is_loopback(params["host"]), "a loopback address is unreachable from probes"
    ports = {container_port(container, p["containerPort"]) for p in container["ports"]}
    assert ports == {params["port"]}
    probes = {
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
    }
    for probe, path in probes.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert container_port(container, get["port"]) == params["port"], probe
    service = find("Service", "corral-api")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    for port in service["spec"]["ports"]:
        assert container_port(container, port["targetPort"]) == params["port"]


def test_public_api_has_keys() -> None:
    _, env, params = api_command()
    assert not params["insecure_public_without_auth"]
    keys = parse_api_keys(",".join([*params["api_keys"], env.get("CORRAL_API_KEYS", "")]))
    assert keys, "corral serve refuses a public address without API keys"


async def test_probes_answer_without_a_key_and_metrics_feed_the_autoscaler(
    tmp_path: Path,
) -> None:
    """Against the real app: the probe paths answer 200 with no Authorization header
    while keys are required elsewhere, the ServiceMonitor's token reads /metrics, and
    the KEDA selector matches one waiting series per watched queue."""
    _, env, _ = api_command()
    secret = find("Secret", "corral-secrets")["stringData"]
    endpoint = find("ServiceMonitor")["spec"]["endpoints"][0]
    token = secret[endpoint["authorization"]["credentials"]["key"]]
    keys = parse_api_keys(env["CORRAL_API_KEYS"])
    admin = next(key.token for key in keys if key.scope == Scope.ADMIN)
    metric, matchers = waiting_selector()
    queues = matchers["queue"][1].split("|")

    corral = Corral(f"sqlite:///{tmp_path / 'deploy.db'}")
    web = create_app(corral, api_keys=keys, allow_unregistered=True, dashboard=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=web), base_url="http://api"
        ) as client:
            deployment = find("Deployment", "corral-api")
            container = only_container(deployment)
            for probe in ("readinessProbe", "livenessProbe"):
                answer = await client.get(container[probe]["httpGet"]["path"])
                assert answer.status_code == 200, (probe, answer.text)
            assert (await client.get("/api/v1/queues")).status_code == 401
            for queue in queues:
                job = {"task": "deploy.check", "queue": queue}
                added = await client.post(
                    "/api/v1/jobs", json=job, headers={"authorization": f"Bearer {admin}"}
                )
                assert added.status_code == 201, added.text
            scraped = await client.get(
                endpoint["path"], headers={"authorization": f"Bearer {token}"}
            )
            assert scraped.status_code == 200, "the ServiceMonitor's token cannot read /metrics"
    finally:
        await corral.close()
    selected = [
        sample
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name == metric and selects(matchers, sample.labels)
    ]
    assert sorted(s.labels["queue"] for s in selected) == sorted(queues)
    assert all(s.value == 1 for s in selected)


def test_autoscaler_scales_the_workers_on_their_own_waiting_jobs() -> None:
    scaled = find("ScaledObject")
    deployment, _, params = worker_command()
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    # Workers fire schedules and promote delayed jobs: none running means neither happens.
    assert scaled["spec"]["minReplicaCount"] >= 1
    metric, matchers = waiting_selector()
    assert metric == "corral_jobs"
    assert matchers["state"] == ("=", "waiting")
    op, pattern = matchers["queue"]
    assert op == "=~"
    assert set(pattern.split("|")) == set(params["queues"].split(","))


def test_service_monitor_scrapes_the_api_service() -> None:
    monitor = find("ServiceMonitor")
    service = find("Service", "corral-api")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_worker_unit_stops_gracefully_within_its_timeout() -> None:
    service = unit(SYSTEMD / "corral-worker@.service")["Service"]
    env = env_file(SYSTEMD / "corral.env.example")
    name, params = check_cli(exec_argv(service["ExecStart"][-1]), env)
    assert name == "worker"
    timeout = seconds(service["TimeoutStopSec"][-1])
    assert timeout > params["grace"] + RECORD_MARGIN, (
        f"TimeoutStopSec {timeout} must exceed --grace {params['grace']} + {RECORD_MARGIN}"
    )
    assert service["KillSignal"] == ["SIGTERM"]
    # SIGTERM to the worker only: subprocesses of running tasks get the grace too.
    assert service["KillMode"] == ["mixed"]
    assert service["Restart"] == ["on-failure"]
    resolve_url(env["CORRAL_URL"])


def test_api_unit_runs_corral_serve() -> None:
    service = unit(SYSTEMD / "corral-api.service")["Service"]
    env = env_file(SYSTEMD / "corral.env.example")
    name, params = check_cli(exec_argv(service["ExecStart"][-1]), env)
    assert name == "serve"
    assert parse_api_keys(env["CORRAL_API_KEYS"]), "behind a proxy, keys are the only gate"
    load_app(params["app_spec"])


def test_image_runs_corral_as_a_non_root_user_with_the_server_extras() -> None:
    instructions = dockerfile_instructions()
    final = [i for i, (word, _) in enumerate(instructions) if word == "FROM"][-1]
    stage = instructions[final:]
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim|python:[\d.]+-slim", stage[0][1])
    words = dict(stage)
    assert json.loads(words["ENTRYPOINT"]) == ["corral"]
    name, params = check_cli(["corral", *json.loads(words["CMD"])], {})
    assert name == "worker"
    load_app(params["app_spec"])
    assert words["USER"] not in {"root", "0"}
    (install,) = [args for word, args in stage if word == "RUN" and "pip install" in args]
    named = re.search(r"corral-\*\.whl\)\[([\w,]+)\]", install)
    assert named, f"no extras in {install!r}"
    extras = set(named[1].split(","))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "web" in extras, "corral serve needs the web extra"
    assert extras <= declared["optional-dependencies"].keys()
    for word, args in instructions:
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the build context"


def test_deploy_doc_links_exist_and_name_every_deploy_file() -> None:
    text = DOCS.read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative, "docs/deploy.md links no file"
    for link in relative:
        assert (DOCS.parent / link).resolve().exists(), f"docs/deploy.md links missing {link}"
    paths = set(re.findall(r"`((?:deploy|docs|examples|src|tests)/[\w./@-]+)`", text))
    for path in paths:
        assert (ROOT / path).exists(), f"docs/deploy.md names missing {path}"
    named = {(DOCS.parent / link).resolve() for link in relative} | {
        (ROOT / p).resolve() for p in paths
    }
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            assert path.resolve() in named, f"docs/deploy.md never mentions {path}"
