"""The batch transform construct: what a transform job of the environment's model needs, granted
exactly (botocore's CreateTransformJob takes no role: the model's execution role does the I/O).
"""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from inference_client.batch import BatchRequest, create_transform_job_params, new_job_name
from inference_constructs.batch_transform import BATCH_INPUT_PREFIX, BATCH_OUTPUT_PREFIX, JOB_NAME_PREFIX


def _execution_statements(template: Template) -> list[dict]:
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if "Execution" in json.dumps(policy["Properties"]["Roles"]):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_execution_role_lists_only_the_batch_input_prefix(template: Template) -> None:
    listing = [s for s in _execution_statements(template) if s["Action"] == "s3:ListBucket"]
    assert len(listing) == 1, listing
    [statement] = listing
    assert (
        statement["Resource"]["Fn::GetAtt"][0].startswith("StorageInput")
        and statement["Resource"]["Fn::GetAtt"][1] == "Arn"
    )
    assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"{BATCH_INPUT_PREFIX}*"]}}


def test_execution_role_writes_transform_job_logs(template: Template) -> None:
    logs = [
        s
        for s in _execution_statements(template)
        if "logs:PutLogEvents" in s["Action"] and "TransformJobs" in json.dumps(s["Resource"])
    ]
    assert len(logs) == 1
    resources = json.dumps(logs[0]["Resource"])
    assert (
        "log-group:/aws/sagemaker/TransformJobs" in resources
        and "log-group:/aws/sagemaker/TransformJobs:log-stream:*" in resources
    )


def test_the_batch_prefixes_lie_under_what_the_role_already_reads_and_writes(template: Template) -> None:
    # GetObject on requests/* and PutObject on responses/* come from the endpoint's own grants.
    statements = _execution_statements(template)
    gets = json.dumps([s["Resource"] for s in statements if "s3:GetObject" in json.dumps(s["Action"])])
    puts = json.dumps([s["Resource"] for s in statements if "s3:PutObject" in json.dumps(s["Action"])])
    assert "/requests/*" in gets and BATCH_INPUT_PREFIX.startswith("requests/")
    assert "/responses/*" in puts and BATCH_OUTPUT_PREFIX.startswith("responses/")


def test_callers_may_start_follow_and_stop_batch_jobs_only(template: Template) -> None:
    [policy] = template.find_resources(
        "AWS::IAM::ManagedPolicy", {"Properties": {"Description": Match.string_like_regexp("batch transform")}}
    ).values()
    [statement] = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "sagemaker:CreateTransformJob" in s["Action"]
    ]
    assert sorted(statement["Action"]) == [
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob",
    ]
    assert json.dumps(statement["Resource"]).endswith(f':transform-job/{JOB_NAME_PREFIX}*"]]}}')


def test_the_clis_job_names_fall_under_the_callers_policy() -> None:
    name = new_job_name("InferenceModel-A1B2C3D4E5F6")
    assert name.startswith(JOB_NAME_PREFIX)
    params = create_transform_job_params(
        BatchRequest(
            input_uri="s3://bucket-name/requests/batch/x/",
            output_uri="s3://bucket-name/responses/batch/x/",
            model_name="m",
        )
    )
    assert params["TransformJobName"].startswith(JOB_NAME_PREFIX)


def test_outputs_name_the_model_and_the_batch_prefixes(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert {"ModelName", "BatchInputUri", "BatchOutputUri", "BatchCallerPolicyArn"} <= set(outputs)
    assert outputs["ModelName"]["Value"]["Fn::GetAtt"][1] == "ModelName"
    assert json.dumps(outputs["BatchInputUri"]["Value"]).endswith(f'/{BATCH_INPUT_PREFIX}"]]}}')
    assert json.dumps(outputs["BatchOutputUri"]["Value"]).endswith(f'/{BATCH_OUTPUT_PREFIX}"]]}}')


def test_callers_may_put_the_dataset_and_read_the_results_only(template: Template) -> None:
    [policy] = template.find_resources(
        "AWS::IAM::ManagedPolicy", {"Properties": {"Description": Match.string_like_regexp("batch transform")}}
    ).values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_action = {json.dumps(s["Action"]): json.dumps(s["Resource"]) for s in statements}
    assert by_action['"s3:PutObject"'].endswith(f'/{BATCH_INPUT_PREFIX}*"]]}}')
    assert by_action['"s3:GetObject"'].endswith(f'/{BATCH_OUTPUT_PREFIX}*"]]}}')
    [listing] = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{BATCH_OUTPUT_PREFIX}*"]}}
