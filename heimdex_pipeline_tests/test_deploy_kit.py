"""The deploy kit (`deploy/`) against the code, the README and Dagster's own configuration.

No Docker engine or cluster runs here, so these prove what can be proven without one: every file
parses, the Helm values use the chart's keys and render to an instance Dagster loads with the
`K8sRunLauncher`, and the services, commands, ports, variables and secrets the README names are
the ones in the files (secrets only as references).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
README = (ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CODE_MODULE = PYPROJECT["tool"]["dagster"]["module_name"]
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY", "DATABASE_URL")

# Keys of Dagster's Helm chart (helm/dagster/schema/schema/charts/dagster/values.py, its
# subschema modules and templates, chart 1.13, read there; no package ships the chart's values
# schema and this machine cannot download it): a misspelt key is silently ignored by Helm, so we
# check here. The chart copies only the keys it names; the levels it hands on to Dagster's own
# configuration are also checked against the installed dagster and dagster-k8s config schemas
# (`test_the_chart_keys_handed_to_dagster_are_keys_dagster_takes`), so neither list can drift
# from what Dagster accepts.
CHART_TOP_LEVEL = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql",
    "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis",
    "flower", "ingress", "imagePullSecrets", "computeLogManager", "scheduler", "runLauncher",
    "pythonLogs", "dagsterDaemon", "busybox", "migrate", "telemetry", "serviceAccount", "global",
    "retention", "additionalInstanceConfig", "concurrency",
}  # fmt: skip
CHART_GLOBAL = {
    "postgresqlSecretName",
    "dagsterHome",
    "serviceAccountName",
    "celeryConfigSecretName",
}
CHART_POSTGRESQL = {
    "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
    "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service",
}  # fmt: skip
CHART_K8S_RUN_LAUNCHER = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
CHART_RUN_K8S_CONFIG = {
    "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata",
}  # fmt: skip
CHART_QUEUED_RUN_COORDINATOR = {
    "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
    "dequeueUseThreads",
}  # fmt: skip
CHART_DAEMON = {
    "enabled", "image", "runCoordinator", "heartbeatTolerance", "env", "envConfigMaps",
    "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations",
    "podSecurityContext", "securityContext", "resources", "checkDbReadyInitContainer",
    "livenessProbe", "readinessProbe", "startupProbe", "annotations", "runMonitoring",
    "runRetries", "sensors", "schedules", "backfills", "schedulerName", "logFormat",
    "volumeMounts", "volumes", "initContainerResources", "extraContainers",
    "extraPrependedInitContainers",
}  # fmt: skip
CHART_RUN_RETRIES = {"enabled", "maxRetries", "retryOnAssetOrOpFailure"}
CHART_CONCURRENCY = {"enabled", "pools", "runs"}
CHART_POOLS = {"defaultLimit", "granularity", "opGranularityRunBuffer"}
CHART_USER_DEPLOYMENT = {
    "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
    "deploymentNamespace", "port", "env", "envConfigMaps", "envSecrets", "annotations",
    "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext",
    "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts",
    "volumes", "schedulerName", "initContainers", "sidecarContainers", "deploymentLabels",
    "service", "replicaCount",
}  # fmt: skip
# The chart's own names at the levels it hands on: its launcher `image` becomes `job_image`, and
# `concurrency.enabled` says whether it writes the instance's `concurrency` block at all.
CHART_OWN = {"k8sRunLauncher": {"image"}, "concurrency": {"enabled"}}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _dagster_keys() -> dict[str, set[str]]:
    """What Dagster itself takes at each level the chart hands on, from the installed
    packages' config schemas, camelCase as the chart spells it."""
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.job import USER_DEFINED_K8S_JOB_CONFIG_SCHEMA

    instance = dagster_instance_config_schema()

    def fields(config_type) -> set[str]:
        return {_camel(key) for key in config_type.fields}

    concurrency = instance["concurrency"].config_type
    return {
        "k8sRunLauncher": {_camel(k) for k in K8sRunLauncher.config_type()},
        "runK8sConfig": fields(USER_DEFINED_K8S_JOB_CONFIG_SCHEMA),
        "queuedRunCoordinator": {_camel(k) for k in QueuedRunCoordinator.config_type()},
        "runRetries": fields(instance["run_retries"].config_type),
        "concurrency": fields(concurrency),
        "pools": fields(concurrency.fields["pools"].config_type),
    }


CHART_HANDED_ON = {
    "k8sRunLauncher": CHART_K8S_RUN_LAUNCHER,
    "runK8sConfig": CHART_RUN_K8S_CONFIG,
    "queuedRunCoordinator": CHART_QUEUED_RUN_COORDINATOR,
    "runRetries": CHART_RUN_RETRIES,
    "concurrency": CHART_CONCURRENCY,
    "pools": CHART_POOLS,
}


def _unknown_keys(values: dict) -> list[str]:
    """Every key of the Helm values the chart does not take, as a dotted path."""
    daemon = values.get("dagsterDaemon", {})
    launcher = values.get("runLauncher", {}).get("config", {}).get("k8sRunLauncher", {})
    queued = daemon.get("runCoordinator", {}).get("config", {}).get("queuedRunCoordinator", {})
    concurrency = values.get("concurrency", {})
    checked = [
        ("", values, CHART_TOP_LEVEL),
        ("global.", values.get("global", {}), CHART_GLOBAL),
        ("postgresql.", values.get("postgresql", {}), CHART_POSTGRESQL),
        ("dagsterDaemon.", daemon, CHART_DAEMON),
        ("runLauncher.config.k8sRunLauncher.", launcher, CHART_K8S_RUN_LAUNCHER),
        (
            "runLauncher.config.k8sRunLauncher.runK8sConfig.",
            launcher.get("runK8sConfig", {}),
            CHART_RUN_K8S_CONFIG,
        ),
        (
            "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.",
            queued,
            CHART_QUEUED_RUN_COORDINATOR,
        ),
        ("dagsterDaemon.runRetries.", daemon.get("runRetries", {}), CHART_RUN_RETRIES),
        ("concurrency.", concurrency, CHART_CONCURRENCY),
        ("concurrency.pools.", concurrency.get("pools", {}), CHART_POOLS),
    ]
    deployments = values.get("dagster-user-deployments", {}).get("deployments", [])
    checked += [
        (f"dagster-user-deployments.deployments.{n}.", deployment, CHART_USER_DEPLOYMENT)
        for n, deployment in enumerate(deployments)
    ]
    return [f"{prefix}{key}" for prefix, part, known in checked for key in part if key not in known]


def _yaml(name: str):
    return yaml.safe_load((DEPLOY / name).read_text())


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _readme_table(section: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the table in README section `section` whose first column is `first_header`."""
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = body.splitlines()
    for number, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            rows = []
            for row in lines[number + 2 :]:
                if not row.startswith("|"):
                    break
                values = [c.strip() for c in row.strip().strip("|").split("|")]
                rows.append(dict(zip(cells, values, strict=True)))
            return rows
    raise AssertionError(f"no table starting with {first_header!r} in README section {section!r}")


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _settings_variables() -> set[str]:
    """Every variable the code reads, and the instance's PostgreSQL variables."""
    sources = [*(ROOT / "heimdex_pipeline").rglob("*.py"), DEPLOY / "dagster.yaml"]
    return {
        name for path in sources for name in re.findall(r"HEIMDEX_[A-Z0-9_]+", path.read_text())
    }


def _compose_env(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def _compose_command(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def test_every_deploy_file_parses():
    assert set(_yaml("compose.yaml")["services"])
    assert _yaml("workspace.yaml")["load_from"]
    assert _yaml("dagster.yaml")["storage"]["custom"]["config"]["postgres_db"]
    assert _yaml("helm/values.yaml")["runLauncher"]
    docs = list(yaml.safe_load_all((DEPLOY / "helm" / "heimdex.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["Job", "Deployment", "Service"]
    instructions = _dockerfile()
    assert instructions[0][0] == "ARG" and any(op == "FROM" for op, _ in instructions)
    assert "CREATE DATABASE dagster" in (DEPLOY / "postgres-init.sql").read_text()


def test_the_image_holds_what_every_service_runs():
    instructions = _dockerfile()
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    assert args["TORCH_INDEX_URL"].endswith("/whl/cpu")  # CPU by default, CUDA by build argument
    pins = dict(d.split("==") for d in PYPROJECT["project"]["dependencies"] if "==" in d)
    assert (
        args["TORCH_VERSION"] == pins["torch"]
        and args["TORCHVISION_VERSION"] == pins["torchvision"]
    )
    for op, arguments in instructions:
        if op == "COPY":
            *sources, _ = arguments.split()
            assert all((ROOT / s).exists() for s in sources), arguments
    copies = {a.split()[0]: a.split()[1] for op, a in instructions if op == "COPY"}
    env = " ".join(a for op, a in instructions if op == "ENV")
    dagster_home = re.search(r"DAGSTER_HOME=(\S+)", env).group(1)
    assert copies["deploy/dagster.yaml"] == f"{dagster_home}/dagster.yaml"
    assert any(op == "USER" and a != "root" for op, a in instructions)
    (exposed,) = [a for op, a in instructions if op == "EXPOSE"]
    services = {
        row["service"].strip("`"): row for row in _readme_table("Operating Heimdex", "service")
    }
    readme_ports = {
        int(p)
        for name in ("code", "webserver", "serve")
        for p in re.findall(r"\d{4}", services[name]["port"])
    }
    assert {int(p) for p in exposed.split()} == readme_ports
    (cmd,) = [a for op, a in instructions if op == "CMD"]
    compose = _yaml("compose.yaml")["services"]
    assert yaml.safe_load(cmd) == _compose_command(compose["code"])
    assert CODE_MODULE in yaml.safe_load(cmd)


def test_compose_runs_the_services_the_readme_lists_on_its_ports():
    compose = _yaml("compose.yaml")["services"]
    rows = {row["service"].strip("`"): row for row in _readme_table("Operating Heimdex", "service")}
    assert set(compose) == set(rows)
    for name, row in rows.items():
        service = compose[name]
        published = {int(p.split(":")[0]) for p in service.get("ports", [])}
        if "internal" in row["port"] or row["port"] == "none":
            assert not published, name
        else:
            assert published == {int(p) for p in re.findall(r"\d+", row["port"])}, name
        if row["image"] == "heimdex":
            assert service["image"].startswith("${HEIMDEX_IMAGE") and service["build"], name
        else:
            assert service["image"] == row["image"].strip("`"), name
    (grpc,) = [entry["grpc_server"] for entry in _yaml("workspace.yaml")["load_from"]]
    code = _compose_command(compose["code"])
    assert grpc["host"] == "code" and str(grpc["port"]) == code[code.index("-p") + 1]
    assert code[code.index("-m") + 1] == CODE_MODULE
    for name in ("webserver", "daemon"):
        command = _compose_command(compose[name])
        workspace = command[command.index("-w") + 1]
        copies = {a.split()[0]: a.split()[1] for op, a in _dockerfile() if op == "COPY"}
        assert copies["deploy/workspace.yaml"] == workspace
    assert _compose_command(compose["migrate"]) == ["heimdex", "db", "upgrade"]
    waits = compose["code"]["depends_on"]["migrate"]["condition"]
    assert waits == "service_completed_successfully"
    serve = _compose_command(compose["serve"])
    assert serve[:2] == ["heimdex", "serve"] and serve[serve.index("--port") + 1] == "8080"


def test_compose_secrets_are_references_and_every_variable_is_one_the_code_reads():
    compose = _yaml("compose.yaml")["services"]
    known = _settings_variables()
    required: set[str] = set()
    for name, service in compose.items():
        for variable, value in _compose_env(service).items():
            references = re.findall(r"\$\{([A-Z0-9_]+)(:\?|:-)?", value)
            if any(word in variable for word in SECRET_WORDS):
                assert references and all(kind == ":?" for _, kind in references), (name, variable)
            required |= {ref for ref, kind in references if kind == ":?"}
            if variable.startswith("HEIMDEX_"):
                assert variable in known, (name, variable)
    secrets = _readme_table("Operating Heimdex", "secret")
    readme_refs = {ref for row in secrets for ref in _ticked(row["compose (`deploy/.env`)"])}
    assert readme_refs == required
    example = (DEPLOY / "heimdex.env.example").read_text()
    assert required <= set(re.findall(r"^([A-Z0-9_]+)=$", example, re.MULTILINE))
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().split()


def test_helm_values_use_only_keys_of_the_chart():
    values = _yaml("helm/values.yaml")
    assert _unknown_keys(values) == []
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("-m") + 1] == CODE_MODULE


def test_the_chart_keys_handed_to_dagster_are_keys_dagster_takes():
    """A chart key Dagster dropped or renamed (a chart list copied wrong, or an upgrade) fails."""
    dagster = _dagster_keys()
    for level, keys in CHART_HANDED_ON.items():
        assert keys - CHART_OWN.get(level, set()) <= dagster[level], level


@pytest.mark.parametrize(
    "path",
    [
        "dagsterWebServer",
        "global.postgresqlSecret",
        "postgresql.postgresqlHostname",
        "dagsterDaemon.runMonitor",
        "runLauncher.config.k8sRunLauncher.envSecret",
        "runLauncher.config.k8sRunLauncher.runK8sConfig.podSpec",
        "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurentRuns",
        "dagsterDaemon.runRetries.maxRetry",
        "concurrency.pool",
        "concurrency.pools.defaultLimits",
        "dagster-user-deployments.deployments.0.envSecret",
    ],
)
def test_a_misspelt_helm_key_is_caught_wherever_it_is(path):
    values = _yaml("helm/values.yaml")
    *parents, key = path.split(".")
    part = values
    for name in parents:
        part = part[int(name)] if isinstance(part, list) else part[name]
    part[key] = "misspelt"
    assert _unknown_keys(values) == [path]


def test_helm_values_hold_no_secret_and_name_the_readmes():
    values = _yaml("helm/values.yaml")
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    assert "postgresqlPassword" not in text and values["generatePostgresqlPasswordSecret"] is False
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    secret_names = {s["name"] for s in launcher["envSecrets"]} | {
        s["name"] for s in deployment["envSecrets"]
    }
    secret_names.add(values["global"]["postgresqlSecretName"])
    readme = {
        ref.split(":")[0]
        for row in _readme_table("Operating Heimdex", "secret")
        for ref in re.findall(r"`([a-z-]+)`:", row["Kubernetes"])
    }
    assert secret_names == readme
    for doc in yaml.safe_load_all((DEPLOY / "helm" / "heimdex.yaml").read_text()):
        if doc["kind"] == "Service":
            continue
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        image = deployment["image"]
        assert container["image"] == f"{image['repository']}:{image['tag']}"
        refs = {e.get("secretRef", {}).get("name") for e in container["envFrom"]} - {None}
        assert refs == {s["name"] for s in deployment["envSecrets"]}
        assert not container.get("env")  # nothing set literally


def _render_instance(values: dict, pg_url, kubeconfig: Path) -> dict:
    """The instance configuration the chart writes from these values (its `configmap-instance`
    template, for the parts Heimdex sets), pointed at the test's PostgreSQL."""
    pg = values["postgresql"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    daemon = values["dagsterDaemon"]
    monitoring = daemon["runMonitoring"]
    retries = daemon["runRetries"]
    pools = values["concurrency"]["pools"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]

    def snake(config: dict) -> dict:
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in config.items()}

    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": pg_url.host,
                    "port": pg_url.port or pg["service"]["port"],
                    "username": pg_url.username,
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "db_name": pg_url.database,
                    "scheme": pg["postgresqlScheme"],
                }
            }
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": {
                "load_incluster_config": False,
                "kubeconfig_file": str(kubeconfig),
                "job_namespace": "heimdex",
                "image_pull_policy": "IfNotPresent",
                "service_account_name": "heimdex-dagster",
                "instance_config_map": "heimdex-dagster-instance",
                "postgres_password_secret": values["global"]["postgresqlSecretName"],
                "dagster_home": "/opt/dagster/dagster_home",
                "env_config_maps": [c["name"] for c in launcher["envConfigMaps"]],
                "env_secrets": [s["name"] for s in launcher["envSecrets"]],
                "run_k8s_config": snake(launcher["runK8sConfig"]),
            },
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
        },
        "concurrency": {
            "runs": {"max_concurrent_runs": queued["maxConcurrentRuns"]},
            "pools": {"default_limit": pools["defaultLimit"], "granularity": pools["granularity"]},
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
            "max_runtime_seconds": monitoring["maxRuntimeSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
        },
        "run_retries": {
            "enabled": retries["enabled"],
            "max_retries": retries["maxRetries"],
            "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: test, user: {token: not-a-real-token}}]
contexts: [{name: test, context: {cluster: test, user: test, namespace: heimdex}}]
current-context: test
"""


@pytest.mark.slow  # PostgreSQL
def test_the_helm_values_render_to_an_instance_dagster_loads_with_the_k8s_launcher(
    postgres_url: str, tmp_path: Path, monkeypatch
):
    from dagster_k8s import K8sRunLauncher

    values = _yaml("helm/values.yaml")
    url = make_url(postgres_url)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "unused-with-trust-auth")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    home = tmp_path / "home"
    home.mkdir()
    rendered = _render_instance(values, url, kubeconfig)
    (home / "dagster.yaml").write_text(yaml.safe_dump(rendered))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        launcher = instance.run_launcher
        assert isinstance(launcher, K8sRunLauncher)
        assert launcher.env_secrets == ["heimdex-secrets"]
        pod_spec = launcher.run_k8s_config["pod_spec_config"]
        assert pod_spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        limits = launcher.run_k8s_config["container_config"]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == 1
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    finally:
        instance.dispose()


def test_kubernetes_and_compose_keep_the_promises_of_deploy_dagster_yaml():
    """The same limits wherever Heimdex runs: queue size, `clip` pool, monitoring, retries."""
    instance = _yaml("dagster.yaml")
    values = _yaml("helm/values.yaml")
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    pools = values["concurrency"]["pools"]
    assert pools["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"] == 1
    assert pools["granularity"] == instance["concurrency"]["pools"]["granularity"] == "op"
    monitoring = instance["run_monitoring"]
    assert daemon["runMonitoring"]["enabled"] is monitoring["enabled"] is True
    for key in ("start_timeout_seconds", "max_runtime_seconds", "poll_interval_seconds"):
        camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), key)
        assert daemon["runMonitoring"][camel] == monitoring[key], key
    retries = instance["run_retries"]
    assert daemon["runRetries"]["maxRetries"] == retries["max_retries"]
    assert (
        daemon["runRetries"]["retryOnAssetOrOpFailure"]
        is retries["retry_on_asset_or_op_failure"]
        is False
    )


@pytest.mark.parametrize("variable", ["HEIMDEX_DATABASE_URL", "HEIMDEX_S3_SECRET_KEY"])
def test_the_readme_names_where_each_secret_lives(variable):
    secrets = _readme_table("Operating Heimdex", "secret")
    assert any(variable in row["Kubernetes"] for row in secrets)
