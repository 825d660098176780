"""deploy/: what can be checked without an AWS account.

The instance file validates against Dagster's own schemas (the whole file, the run launcher's and
the compute log manager's config types); the run queue is the repository's; the task definitions
are accepted by ECS's RegisterTaskDefinition (botocore's parameter validation, moto's service)
and carry every variable the instance file reads; EcsRunLauncher starts against the registered run
worker definition and a run launched through it gets exactly that definition's environment
(PERF_SHARDS and PERF_PARTITION_START, the same in all three definitions);
a single-run backfill over many days x every shard is one run per shard; the Dockerfile and the
task definitions agree on paths and commands; every placeholder is documented in
deploy/README.md.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml
from dagster import AssetKey, BackfillPolicy, DagsterRun, instance_for_test
from dagster._config import process_config, resolve_to_config_type
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

from perf_pipeline.resources.deployments import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
TASK_DEFINITIONS = sorted((DEPLOY / "task-definitions").glob("*.json"))
IAM_POLICIES = sorted((DEPLOY / "iam").glob("*.json"))
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
WORKSPACE_IN_IMAGE = "/opt/dagster/app/workspace.yaml"
DOCUMENTED_COMMANDS = {
    "webserver": ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", WORKSPACE_IN_IMAGE],
    "daemon": ["dagster-daemon", "run", "-w", WORKSPACE_IN_IMAGE],
}
RENDERED = {
    "ACCOUNT_ID": "123456789012",
    "REGION": "us-east-1",
    "IMAGE": "123456789012.dkr.ecr.us-east-1.amazonaws.com/perf-pipeline:1",
    "EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/perf-pipeline-execution",
    "WEBSERVER_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/perf-pipeline-webserver",
    "DAEMON_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/perf-pipeline-daemon",
    "RUN_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/perf-pipeline-run",
    "LOG_GROUP": "/ecs/perf-pipeline",
    "PERF_SHARDS": "16",
    "PERF_PARTITION_START": "2015-01-01",
}
PARTITION_VARIABLES = ("PERF_SHARDS", "PERF_PARTITION_START")


def instance_yaml() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def render(text: str) -> str:
    """A template with every placeholder replaced: known ones by a realistic value, the rest
    (URIs, names) by a plain token."""
    return PLACEHOLDER.sub(lambda m: RENDERED.get(m[1], m[1].lower().replace("_", "-")), text)


def env_names(node: Any) -> set[str]:
    """Every variable a Dagster config reads through `{env: NAME}`."""
    if isinstance(node, dict):
        found = {node["env"]} if set(node) == {"env"} else set()
        return found.union(*(env_names(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(env_names(item) for item in node))
    return set()


def container(task_definition: dict[str, Any]) -> dict[str, Any]:
    (only,) = task_definition["containerDefinitions"]
    return only


def container_env(task_definition: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(task_definition)["environment"]}


@pytest.fixture
def instance_env(monkeypatch) -> dict[str, str]:
    """The environment the task definitions give, rendered."""
    run_worker = json.loads(render((DEPLOY / "task-definitions/run-worker.json").read_text()))
    values = {**container_env(run_worker), "DAGSTER_PG_PASSWORD": "secret"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_yaml_files_parse():
    for path in (DEPLOY / "dagster.yaml", DEPLOY / "workspace.yaml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_instance_file_validates_against_dagster_instance_schema(tmp_path):
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert postgres["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
    assert config["telemetry"] == {"enabled": False}


def test_instance_schema_check_would_catch_a_mistake(tmp_path):
    broken = instance_yaml()
    broken["run_queue"]["max_concurent_runs"] = 4
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_run_launcher_config_validates_against_ecs_run_launcher(instance_env):
    section = instance_yaml()["run_launcher"]
    assert (section["module"], section["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    result = process_config(resolve_to_config_type(EcsRunLauncher.config_type()), section["config"])
    assert result.success, result.errors
    assert result.value["task_definition"] == {"env": "DAGSTER_RUN_TASK_DEFINITION"}
    assert result.value["container_name"] == "run"
    assert result.value["include_sidecars"] is False
    assert result.value["use_current_ecs_task_config"] is True
    assert result.value["secrets_tag"] is None


def test_run_launcher_schema_refuses_an_unknown_field():
    config = {**instance_yaml()["run_launcher"]["config"], "secret_tags": ["dagster"]}
    result = process_config(resolve_to_config_type(EcsRunLauncher.config_type()), config)
    assert not result.success


def test_compute_log_config_validates_against_s3_compute_log_manager(instance_env):
    section = instance_yaml()["compute_logs"]
    assert (section["module"], section["class"]) == (
        "dagster_aws.s3.compute_log_manager",
        "S3ComputeLogManager",
    )
    result = process_config(
        resolve_to_config_type(S3ComputeLogManager.config_type()), section["config"]
    )
    assert result.success, result.errors
    assert result.value["bucket"] == instance_env["DAGSTER_COMPUTE_LOG_BUCKET"]
    assert result.value["prefix"] == "perf-pipeline/compute-logs"


def test_compute_log_config_needs_its_bucket_variable(monkeypatch):
    monkeypatch.delenv("DAGSTER_COMPUTE_LOG_BUCKET", raising=False)
    config = instance_yaml()["compute_logs"]["config"]
    result = process_config(resolve_to_config_type(S3ComputeLogManager.config_type()), config)
    assert not result.success
    assert "DAGSTER_COMPUTE_LOG_BUCKET" in str(result.errors)


def test_run_queue_keeps_the_repository_exclusivity_and_fans_out_to_every_shard():
    repository = yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text())["run_queue"]
    queue = instance_yaml()["run_queue"]
    assert (
        queue["tag_concurrency_limits"]
        == repository["tag_concurrency_limits"]
        == [{"key": "perf/exclusive", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    )
    assert queue["max_concurrent_runs"] >= int(DEFAULTS["PERF_SHARDS"])
    assert (
        "perf/exclusive"
        in instance_yaml()["run_launcher"]["config"]["propagate_tags"]["allow_list"]
    )


def test_workspace_loads_the_repository_code_location():
    deployed = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"]
    local = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert len(deployed) == 1
    module = deployed[0]["python_module"]
    assert module["module_name"] == local[0]["python_module"]["module_name"]
    assert module["location_name"] == local[0]["python_module"]["location_name"] == "perf_pipeline"


def test_dockerfile_installs_the_project_and_the_instance_files():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[12]-slim$", text, re.MULTILINE)
    assert re.search(r"^RUN pip install \. \"dagster-postgres>=0\.29,<0\.30\"$", text, re.MULTILINE)
    assert "COPY pyproject.toml README.md ./" in text
    assert "COPY perf_pipeline ./perf_pipeline" in text
    assert "COPY deploy/dagster.yaml ${DAGSTER_HOME}/dagster.yaml" in text
    assert "WORKDIR /opt/dagster/app" in text
    assert "COPY deploy/workspace.yaml ./workspace.yaml" in text
    assert f"CMD {json.dumps(DOCUMENTED_COMMANDS['webserver'])}" in text
    for command in DOCUMENTED_COMMANDS.values():
        assert " ".join(command) in text


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda p: p.name)
def test_task_definition_carries_everything_the_instance_reads(path):
    task_definition = json.loads(path.read_text())
    env = container_env(task_definition)
    secrets = {item["name"] for item in container(task_definition).get("secrets", [])}
    missing = env_names(instance_yaml()) - set(env) - secrets
    assert not missing, f"{path.name} lacks {sorted(missing)}"
    assert "DAGSTER_PG_PASSWORD" in secrets
    assert "DAGSTER_PG_PASSWORD" not in env
    assert env["PERF_TARGET"] == "aws"
    for name in (
        "PERF_INPUT",
        "PERF_ASSET_STORE",
        "PERF_DYNAMODB_TABLE",
        "PERF_TIMESTREAM_DATABASE",
        "PERF_TIMESTREAM_TABLE",
        "PERF_SQS_QUEUE_URL",
    ):
        assert name in env, name
    for name in PARTITION_VARIABLES:
        assert env[name] == f"${{{name}}}", name
    assert env["DAGSTER_RUN_TASK_DEFINITION"] == "perf-pipeline-run"


def test_task_definitions_share_one_environment():
    environments = [container_env(json.loads(path.read_text())) for path in TASK_DEFINITIONS]
    assert [path.name for path in TASK_DEFINITIONS] == [
        "daemon.json",
        "run-worker.json",
        "webserver.json",
    ]
    assert environments[0] == environments[1] == environments[2]


def test_task_definition_commands_are_the_documented_ones():
    for name, command in DOCUMENTED_COMMANDS.items():
        task_definition = json.loads((DEPLOY / f"task-definitions/{name}.json").read_text())
        assert container(task_definition)["command"] == command
    run_worker = json.loads((DEPLOY / "task-definitions/run-worker.json").read_text())
    assert "command" not in container(run_worker)
    assert (
        container(run_worker)["name"] == instance_yaml()["run_launcher"]["config"]["container_name"]
    )
    assert run_worker["family"] == "perf-pipeline-run"


@pytest.mark.parametrize("path", [*TASK_DEFINITIONS, *IAM_POLICIES], ids=lambda p: p.name)
def test_every_placeholder_is_documented(path):
    readme = (DEPLOY / "README.md").read_text()
    names = set(PLACEHOLDER.findall(path.read_text()))
    assert names or path.parent.name == "iam", f"{path.name} has no placeholder"
    undocumented = {name for name in names if f"`${{{name}}}`" not in readme}
    assert not undocumented, f"{path.name}: {sorted(undocumented)} not in deploy/README.md"
    json.loads(render(path.read_text()))


def test_task_definitions_register_and_the_launcher_starts(aws, instance_env):
    ecs = boto3.client("ecs", endpoint_url=aws)
    for path in TASK_DEFINITIONS:
        registered = ecs.register_task_definition(**json.loads(render(path.read_text())))
        assert registered["taskDefinition"]["status"] == "ACTIVE"
    config = process_config(
        resolve_to_config_type(EcsRunLauncher.config_type()),
        instance_yaml()["run_launcher"]["config"],
    ).value
    launcher = EcsRunLauncher(**config)
    assert launcher.task_definition.endswith(":task-definition/perf-pipeline-run:1")
    assert launcher.container_name == "run"
    assert launcher.secrets_tags == []


def launched_run_task(launcher: EcsRunLauncher) -> dict[str, Any]:
    """The RunTask request the launcher sends for a run of performance_job (captured: moto's
    RunTask cannot start a Fargate task in a VPC)."""
    sent: list[dict[str, Any]] = []

    def run_task(**kwargs: Any) -> dict[str, str]:
        sent.append(kwargs)
        return {
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/perf/1",
            "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/perf",
        }

    launcher._run_task = run_task
    origin = JobPythonOrigin(
        "performance_job",
        RepositoryPythonOrigin(
            "python",
            ModuleCodePointer("perf_pipeline.definitions", "defs", "/opt/dagster/app"),
            container_image=RENDERED["IMAGE"],
        ),
    )
    with instance_for_test() as instance:
        launcher.register_instance(instance)
        run = instance.add_run(DagsterRun(job_name="performance_job", job_code_origin=origin))
        launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
        assert instance.get_run_by_id(run.run_id).tags["ecs/task_arn"].endswith("task/perf/1")
    (request,) = sent
    return request


@pytest.mark.parametrize("env_vars", [None, ["PERF_SHARDS=99"]], ids=["as-deployed", "env_vars"])
def test_a_launched_run_gets_the_run_worker_environment(aws, instance_env, env_vars):
    ecs = boto3.client("ecs", endpoint_url=aws)
    ecs.register_task_definition(
        **json.loads(render((DEPLOY / "task-definitions/run-worker.json").read_text()))
    )
    config = process_config(
        resolve_to_config_type(EcsRunLauncher.config_type()),
        instance_yaml()["run_launcher"]["config"],
    ).value
    assert "env_vars" not in instance_yaml()["run_launcher"]["config"]
    # use_current_ecs_task_config reads the ECS task metadata endpoint, only there in a task
    launcher = EcsRunLauncher(
        **{**config, "use_current_ecs_task_config": False, "env_vars": env_vars}
    )
    request = launched_run_task(launcher)
    assert request["taskDefinition"] == launcher.task_definition
    (override,) = request["overrides"]["containerOverrides"]
    assert set(override) == {"name", "command"}  # env_vars never reach a given definition
    assert override["name"] == "run"
    assert override["command"][-2] == "execute_run"
    registered = ecs.describe_task_definition(taskDefinition=request["taskDefinition"])
    environment = container_env(registered["taskDefinition"])
    for name in PARTITION_VARIABLES:
        assert environment[name] == instance_env[name], name
    assert environment["PERF_SHARDS"] == "16"


def backfill_runs(months: list[str]) -> list[tuple[str, str]]:
    """(range start, range end) of the runs a single-run backfill of `months` of
    daily_valuations and performance_metrics asks for, as Dagster's backfill daemon builds them."""
    from perf_pipeline.definitions import build_definitions

    asset_graph = build_definitions("local").resolve_asset_graph()
    keys = [AssetKey("daily_valuations"), AssetKey("performance_metrics")]
    assert {asset_graph.get(key).backfill_policy for key in keys} == {BackfillPolicy.single_run()}
    partitions = [AssetKeyPartitionKey(key, month) for key in keys for month in months]
    with instance_for_test() as instance:  # the months exist in the instance, as after a run
        instance.add_dynamic_partitions("months", months)
        with partition_loading_context(dynamic_partitions_store=instance):
            requests = build_run_requests_with_backfill_policies(partitions, asset_graph, instance)
    assert all(set(request.asset_selection) == set(keys) for request in requests)
    return sorted(
        (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG])
        for request in requests
    )


def test_a_single_run_backfill_of_a_year_is_one_run_over_its_twelve_months():
    # Shards are no partition dimension: the run covers every shard of its months.
    months = [f"2024-{month:02d}" for month in range(1, 13)]
    assert backfill_runs(months) == [("2024-01", "2024-12")]


def test_the_partitions_of_ten_years_are_a_hundred_and_twenty_months():
    from perf_pipeline.partitions import month_keys

    keys = month_keys(pd.Timestamp("2015-01-02"), pd.Timestamp("2024-12-31"))
    assert keys[:2] == ["2015-01", "2015-02"] and keys[-1] == "2024-12"
    assert len(keys) == 10 * 12


# --- least privilege and the private webserver (issue 13) ---------------------------------


def iam_policy(name: str) -> dict[str, Any]:
    return json.loads(render((DEPLOY / "iam" / name).read_text()))


def statements_with(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if action in s["Action"]]


def test_launcher_runs_only_the_run_worker_in_the_cluster_and_passes_only_its_roles():
    launcher = iam_policy("launcher-policy.json")
    [run_task] = statements_with(launcher, "ecs:RunTask")
    assert run_task["Action"] == ["ecs:RunTask"]
    assert run_task["Resource"] == (
        "arn:aws:ecs:us-east-1:123456789012:task-definition/perf-pipeline-run:*"
    )
    assert run_task["Condition"]["ArnEquals"]["ecs:cluster"].endswith(":cluster/cluster")
    [pass_role] = statements_with(launcher, "iam:PassRole")
    assert pass_role["Resource"] == [RENDERED["RUN_TASK_ROLE_ARN"], RENDERED["EXECUTION_ROLE_ARN"]]
    assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"] == (
        "ecs-tasks.amazonaws.com"
    )
    for statement in launcher["Statement"]:
        if statement["Resource"] == "*":  # only actions without resource-level permissions
            assert set(statement["Action"]) <= {
                "ecs:DescribeTaskDefinition",
                "ec2:DescribeNetworkInterfaces",
            }


def test_webserver_has_no_launcher_rights():
    webserver = iam_policy("webserver-policy.json")
    actions = {action for s in webserver["Statement"] for action in s["Action"]}
    assert not actions & {"ecs:RunTask", "iam:PassRole", "ecs:RegisterTaskDefinition"}
    assert actions == {"ecs:DescribeTasks", "ecs:StopTask", "ecs:DescribeTaskDefinition"}
    readme = (DEPLOY / "README.md").read_text()
    [row] = [line for line in readme.splitlines() if line.startswith("| webserver")]
    assert "webserver-policy.json" in row and "launcher-policy.json" not in row


def test_task_roles_trust_ecs_tasks_of_this_account_only():
    [statement] = iam_policy("ecs-tasks-trust.json")["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"].startswith(
        "arn:aws:ecs:us-east-1:123456789012:"
    )


def test_webserver_is_private_behind_an_internal_load_balancer():
    import subprocess
    import sys

    path = DEPLOY / "webserver-network.yaml"
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: node.value})
    resources = yaml.load(path.read_text(), Loader=Loader)["Resources"]
    balancer = resources["LoadBalancer"]["Properties"]
    assert balancer["Scheme"] == "internal"
    service = resources["WebserverService"]["Properties"]
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert network["Subnets"] == balancer["Subnets"] == {"Ref": "PrivateSubnetIds"}
    [webserver_in] = resources["WebserverSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert webserver_in["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    for rule in resources["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]:
        assert rule.get("CidrIp") != "0.0.0.0/0"
    sources = resources["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert {"Ref": "FunctionSecurityGroupId"} in [r.get("SourceSecurityGroupId") for r in sources]
