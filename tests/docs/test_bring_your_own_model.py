"""README's "Bring your own model" configurations, synthesized as written (cdk-nag on).

The snippets are read from README.md (the ```python blocks marked ``# bring-your-own-model:
KIND``), so the guide cannot drift from what the app accepts. Only the local directory is
replaced, by a tiny random-weight model generated offline: the README's path is a user's.
"""

from __future__ import annotations

import ast
import json
import re
import typing
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

import app as cdk_app
from app_config import ENVIRONMENTS, parse_environment
from tests.infra.conftest import cdk_context

from .commands import REPO_ROOT

KINDS = ("hub", "s3", "local")


def readme_models() -> dict[str, dict[str, Any]]:
    blocks = re.findall(
        r"```python\n# bring-your-own-model: (\w+)\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.DOTALL
    )
    return {kind: ast.literal_eval("{" + body.strip().rstrip(",") + "}")["model"] for kind, body in blocks}


def test_the_guide_covers_every_model_kind() -> None:
    from app_config.models import ModelSource

    documented = set(readme_models())
    members = typing.get_args(typing.get_args(ModelSource)[0])  # Annotated[HubModel | S3Model | LocalModel, ...]
    accepted = {member.model_fields["kind"].default for member in members}
    # s3_prefix exists only for multi-model hosting (a prefix of many tarballs), not the async endpoint.
    assert set(KINDS) <= documented <= accepted and accepted - documented <= {"s3_prefix"}, (documented, accepted)
    assert all(model.get("task") for model in readme_models().values())  # the guide names the task each time


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    """One app with an environment per kind, built by app.py's own build_app (cdk-nag included)."""
    from devtools.tiny_model import build_tiny_seq2seq

    models = readme_models()
    models["local"] = {**models["local"], "path": str(build_tiny_seq2seq(tmp_path_factory.mktemp("byom") / "model"))}
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=cdk_context())
    with pytest.MonkeyPatch.context() as patch:
        for kind, model in models.items():
            patch.setitem(ENVIRONMENTS, f"byom-{kind}", {**ENVIRONMENTS["dev"], "name": f"byom-{kind}", "model": model})
        stacks = cdk_app.build_app(app, [f"byom-{kind}" for kind in models])
        app.synth()  # raises on any unacknowledged cdk-nag finding
    return {stack.node.id.removeprefix("AsyncInference-byom-"): Template.from_stack(stack) for stack in stacks}


def _container(template: Template) -> dict[str, Any]:
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    return model["Properties"]["PrimaryContainer"]


def test_a_hub_model_is_downloaded_by_the_container_at_the_pinned_revision(templates: dict[str, Template]) -> None:
    model = readme_models()["hub"]
    container = _container(templates["hub"])
    assert "ModelDataUrl" not in container
    assert container["Environment"]["HF_MODEL_ID"] == model["model_id"]
    assert container["Environment"]["HF_MODEL_REVISION"] == model["revision"]
    assert container["Environment"]["HF_TASK"] == model["task"]


def test_an_s3_model_is_the_model_data_and_the_role_reads_only_that_object(templates: dict[str, Template]) -> None:
    model = readme_models()["s3"]
    container = _container(templates["s3"])
    assert container["ModelDataUrl"] == model["uri"]
    assert container["Environment"]["HF_TASK"] == model["task"]
    assert "HF_MODEL_ID" not in container["Environment"]
    bucket, key = model["uri"].removeprefix("s3://").split("/", 1)
    object_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{bucket}/{key}"]]}
    templates["s3"].has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Action": "s3:GetObject", "Effect": "Allow", "Resource": Match.array_with([object_arn])}
                        ),
                    ]
                )
            }
        },
    )
    # Nothing else of that bucket: every mention of it is the object itself.
    mentions = re.findall(rf"{re.escape(bucket)}[^\"]*", json.dumps(templates["s3"].to_json()))
    assert mentions and set(mentions) == {f"{bucket}/{key}"}, mentions


def test_a_local_directory_becomes_an_uploaded_asset(templates: dict[str, Template]) -> None:
    container = _container(templates["local"])
    assert container["Environment"]["HF_TASK"] == readme_models()["local"]["task"]
    # An asset in the bootstrap bucket, not a fixed URL: cdk deploy uploads the packed directory.
    assert "Fn::Sub" in str(container["ModelDataUrl"]) and "cdk-hnb659fds-assets" in str(container["ModelDataUrl"])


def test_the_local_model_path_of_the_guide_is_relative_to_the_repository(tmp_path: Path) -> None:
    """An invalid path is refused at synth with the field and the value (not at deploy)."""
    from app_config import ConfigError

    with pytest.raises(ConfigError, match=r"model\.local\.path.*'models/my-classifier'.*not a directory"):
        parse_environment({**ENVIRONMENTS["dev"], "model": readme_models()["local"]})
