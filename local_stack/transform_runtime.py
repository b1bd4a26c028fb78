"""A local stand-in for SageMaker batch transform (CreateTransformJob / DescribeTransformJob).

It speaks SageMaker's JSON wire protocol (botocore's ``sagemaker`` model: ``POST /`` with
``X-Amz-Target: SageMaker.<Operation>``), so an unmodified boto3 client works against it
through ``endpoint_url`` (or ``AWS_ENDPOINT_URL_SAGEMAKER``). Then it does what the batch
transform guide says (https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html):

- the request is validated against botocore's service model (required members, enums,
  ranges, patterns) and the model name must exist: ValidationException otherwise;
- the job lists every object under ``S3Uri``; each object (or each line, ``SplitType=Line``)
  is one ``POST /invocations`` to the container with the job's ``ContentType`` and ``Accept``;
- each object's answers go to ``S3OutputPath`` + the object's key relative to the input
  prefix + ``.out`` (joined by newlines with ``AssembleWith=Line``);
- a record the container answers non-2xx fails the job (``FailureReason`` names the object);
- DescribeTransformJob reports InProgress, then Completed or Failed.

Not modelled: several instances, MaxPayloadInMB, manifests, compression, data processing
filters, SigV4 checks, the job's instance start-up time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from devtools.aws_contract.service_models import validate_request

log = logging.getLogger("local_stack.transform_runtime")

ACCOUNT = "123456789012"
REGION = "us-east-1"


class TransformRuntime:
    """Runs transform jobs of the models it knows (model name -> container URL) against S3."""

    def __init__(self, *, models: dict[str, str], s3: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"host={host!r}: the stand-in accepts any credentials, so it listens on loopback only")
        self.models = dict(models)
        self.s3 = s3
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests_sent = 0
        self._lock = threading.Lock()
        runtime = self

        class Handler(_Handler):
            owner = runtime

        self._host = host
        self._server = ThreadingHTTPServer((host, port), Handler)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> str:
        threading.Thread(target=self._server.serve_forever, name="transform-runtime", daemon=True).start()
        return self.endpoint_url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ operations
    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        problems = validate_request("sagemaker", "CreateTransformJob", params)
        if problems:
            raise _Refused("ValidationException", "; ".join(map(str, problems)))
        if params["ModelName"] not in self.models:
            raise _Refused(
                "ValidationException",
                f'Could not find model "arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{params["ModelName"]}".',
            )
        name = params["TransformJobName"]
        with self._lock:
            if name in self.jobs:
                raise _Refused(
                    "ResourceInUse",
                    "Job name must be unique within an AWS account and region, and a job with this name already "
                    f"exists (arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{name})",
                )
            job = {
                **params,
                "TransformJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{name.lower()}",
                "TransformJobStatus": "InProgress",
                "CreationTime": time.time(),
            }
            self.jobs[name] = job
        threading.Thread(target=self._run, args=(job,), name=f"transform-{name}", daemon=True).start()
        return {"TransformJobArn": job["TransformJobArn"]}

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs.get(params.get("TransformJobName", ""))
        if job is None:
            raise _Refused(
                "ValidationException", f"Could not find requested job with name {params.get('TransformJobName')}"
            )
        return dict(job)

    # ------------------------------------------------------------------ the job
    def _run(self, job: dict[str, Any]) -> None:
        job["TransformStartTime"] = time.time()
        try:
            self._transform(job)
            job["TransformJobStatus"] = "Completed"
        except _RecordFailed as failure:
            job["TransformJobStatus"], job["FailureReason"] = "Failed", str(failure)
        except Exception as error:
            log.exception("transform job %s failed", job["TransformJobName"])
            job["TransformJobStatus"], job["FailureReason"] = "Failed", f"ClientError: {error}"
        job["TransformEndTime"] = time.time()

    def _transform(self, job: dict[str, Any]) -> None:
        source = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        bucket, prefix = _split(source)
        out_bucket, out_prefix = _split(job["TransformOutput"]["S3OutputPath"])
        if out_prefix and not out_prefix.endswith("/"):
            out_prefix += "/"
        container = self.models[job["ModelName"]]
        split = job["TransformInput"].get("SplitType", "None") == "Line"
        joiner = b"\n" if job["TransformOutput"].get("AssembleWith") == "Line" else b""
        headers = {
            k: v
            for k, v in (
                ("Content-Type", job["TransformInput"].get("ContentType")),
                ("Accept", job["TransformOutput"].get("Accept")),
            )
            if v
        }
        keys = [
            item["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/")
        ]
        if not keys:
            raise _RecordFailed(f"ClientError: no input objects under {source}")
        with httpx.Client(timeout=600, trust_env=False) as http:
            for key in keys:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                records = [line for line in body.splitlines() if line.strip()] if split else [body]
                answers = []
                for record in records:
                    response = http.post(f"{container}/invocations", content=record, headers=headers)
                    self.requests_sent += 1
                    if not 200 <= response.status_code < 300:
                        raise _RecordFailed(
                            f"ClientError: See job logs for more information. {key}: the container answered "
                            f"{response.status_code}: {response.text[:300]}"
                        )
                    answers.append(response.content)
                relative = key[len(prefix) :] if key.startswith(prefix) else key
                self.s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{relative}.out", Body=joiner.join(answers))


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _RecordFailed(Exception):
    pass


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


OPERATIONS = {
    "SageMaker.CreateTransformJob": TransformRuntime.create,
    "SageMaker.DescribeTransformJob": TransformRuntime.describe,
}


class _Handler(BaseHTTPRequestHandler):
    owner: TransformRuntime

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        operation = OPERATIONS.get(self.headers.get("X-Amz-Target", ""))
        if operation is None:
            self._send(
                400,
                {
                    "__type": "UnknownOperationException",
                    "message": f"{self.headers.get('X-Amz-Target')} is not served here",
                },
            )
            return
        try:
            self._send(200, operation(self.owner, json.loads(body or b"{}")))
        except _Refused as refused:
            self._send(400, {"__type": refused.code, "message": refused.message})

    def _send(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug(format, *args)
