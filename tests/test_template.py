"""template.yaml passes cfn-lint and declares what docs/api.md, "Deployment", lists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambda_trigger.settings import TRIGGER_MODES, Settings

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads short-form intrinsics (!Ref, !GetAtt, !Sub...) as their long form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=CloudFormationLoader)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _one(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    [(name, resource)] = _of_type(template, kind).items()
    return name, resource["Properties"]


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_function_runtime_and_handler(template: dict[str, Any]) -> None:
    _, function = _one(template, "AWS::Serverless::Function")
    assert function["Architectures"] == ["arm64"]
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "lambda_trigger.handler.lambda_handler"
    assert function["CodeUri"] == "dist/lambda.zip"
    assert function["Timeout"] < 29  # API Gateway's integration limit
    [event] = function["Events"].values()
    assert event["Type"] == "Api"
    assert (event["Properties"]["Path"], event["Properties"]["Method"]) == ("/{proxy+}", "ANY")


def test_function_environment_is_what_settings_reads(template: dict[str, Any]) -> None:
    _, function = _one(template, "AWS::Serverless::Function")
    variables = function["Environment"]["Variables"]
    settings = Settings.from_env({name: "x" for name in variables} | {"TRIGGER_MODE": "sqs"})
    assert settings.jwt_secret_arn == "x"
    assert settings.dagster_graphql_url == "x"
    assert settings.sqs_queue_url == "x"
    assert settings.dynamodb_table == "x"
    assert variables["TRIGGER_MODE"] == {"Ref": "TriggerMode"}
    assert variables["DAGSTER_GRAPHQL_URL"] == {"Ref": "DagsterGraphqlUrl"}
    assert template["Parameters"]["TriggerMode"]["AllowedValues"] == list(TRIGGER_MODES)


def test_function_policy_is_least_privilege(template: dict[str, Any]) -> None:
    _, function = _one(template, "AWS::Serverless::Function")
    statements = [s for policy in function["Policies"] for s in policy["Statement"]]
    actions = {action for s in statements for action in s["Action"]}
    assert actions == {"sqs:SendMessage", "dynamodb:Query", "secretsmanager:GetSecretValue"}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        assert "*" not in resources
        assert all(isinstance(r, dict) for r in resources)  # each names a resource of the stack
    by_action = {s["Action"][0]: s["Resource"] for s in statements}
    assert by_action["sqs:SendMessage"] == {"Fn::GetAtt": ["RequestQueue", "Arn"]}
    assert by_action["secretsmanager:GetSecretValue"] == {"Ref": "JwtSecret"}
    assert {"Fn::GetAtt": ["MetricsTable", "Arn"]} in by_action["dynamodb:Query"]


def test_pipeline_policy_writes_only_its_asset_store(template: dict[str, Any]) -> None:
    from perf_pipeline.resources.deployments import ASSET_STORE_PREFIX

    statements = template["Resources"]["PipelinePolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    s3_writes = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    writers = [s for s in statements if s3_writes & set(s["Action"])]
    [writer] = writers  # one statement grants every S3 write
    assert writer["Effect"] == "Allow"
    assert set(writer["Action"]) == s3_writes
    assert writer["Resource"] == {"Fn::Sub": f"${{InputBucket.Arn}}/{ASSET_STORE_PREFIX}/*"}
    readers = [s for s in statements if "s3:GetObject" in s["Action"]]
    assert readers  # the IO manager reads the tables back
    assert all({"Fn::Sub": "${InputBucket.Arn}/*"} in r["Resource"] for r in readers)


def test_queue_and_dead_letter_queue(template: dict[str, Any]) -> None:
    queues = _of_type(template, "AWS::SQS::Queue")
    redrive = queues["RequestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_bucket_encrypted_private_and_notifies_the_queue(template: dict[str, Any]) -> None:
    _, bucket = _one(template, "AWS::S3::Bucket")
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    block = bucket["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    [notification] = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Queue"] == {"Fn::GetAtt": ["RequestQueue", "Arn"]}
    _, queue_policy = _one(template, "AWS::SQS::QueuePolicy")
    [statement] = queue_policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert "aws:SourceArn" in statement["Condition"]["ArnLike"]


def test_dynamodb_table(template: dict[str, Any]) -> None:
    _, table = _one(template, "AWS::DynamoDB::Table")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
    assert keys == {"HASH": "id", "RANGE": "sk"}
    indexes = {
        index["IndexName"]: {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "PortfolioIndex": {"HASH": "portfolio_id", "RANGE": "sk"},
        "ClientIndex": {"HASH": "client_id", "RANGE": "sk"},
    }
    defined = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert defined == dict.fromkeys(["id", "sk", "portfolio_id", "client_id"], "S")


def test_timestream_database_and_table(template: dict[str, Any]) -> None:
    _, database = _one(template, "AWS::Timestream::Database")
    _, table = _one(template, "AWS::Timestream::Table")
    assert database["DatabaseName"] == "investment_performance"
    assert table["TableName"] == "performance_metrics"
    assert table["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"] is True


def test_jwt_secret_is_generated(template: dict[str, Any]) -> None:
    _, secret = _one(template, "AWS::SecretsManager::Secret")
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in secret


def test_alarms(template: dict[str, Any]) -> None:
    alarms = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]): a["Properties"]
        for a in _of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    api = alarms[("AWS/ApiGateway", "5XXError")]
    api_name = template["Resources"]["TriggerApi"]["Properties"]["Name"]
    assert {"Name": "ApiName", "Value": api_name} in api["Dimensions"]
    dlq = alarms[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
    ]
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_parameters_and_outputs(template: dict[str, Any]) -> None:
    assert {"DagsterGraphqlUrl", "TriggerMode"} <= set(template["Parameters"])
    assert {
        "ApiEndpoint",
        "RequestQueueUrl",
        "DeadLetterQueueUrl",
        "InputBucketName",
        "MetricsTableName",
        "JwtSecretArn",
    } <= set(template["Outputs"])
