"""Where the model's weights come from: the hub, an S3 tarball, or a local directory."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct
from model_server import contract as container_contract

from app_config.models import HubModel, LocalModel, S3Model, S3PrefixModel
from inference_constructs.model_package import pack_model_directory


class ModelArtifact(Construct):
    """Resolves a model source into the SageMaker model's ModelDataUrl and environment.

    - hub: no ModelDataUrl; the container downloads HF_MODEL_ID at start-up.
    - s3: ModelDataUrl is the given tarball; SageMaker unpacks it into /opt/ml/model.
    - s3_prefix (multi-model endpoints): ModelDataUrl is the prefix; SageMaker fetches
      `<prefix><TargetModel>` on demand, so the role may read objects under the prefix only.
    - local: the directory is packed into a reproducible tarball (see model_package)
      and uploaded as a file asset, so an unchanged model gives an unchanged hash.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source: HubModel | S3Model | LocalModel | S3PrefixModel,
        build_dir: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self._object_arn: str | None = None
        self.model_data_url: str | None = None
        self.environment: dict[str, str] = {}
        if source.task:
            self.environment[container_contract.HF_TASK] = source.task

        if isinstance(source, HubModel):
            self.environment[container_contract.HF_MODEL_ID] = source.model_id
            if source.revision:
                self.environment[container_contract.HF_MODEL_REVISION] = source.revision
            else:
                # Not an error (trying a model out should stay one line), but loud: an unpinned
                # hub model changes under a running service whenever its main branch moves.
                cdk.Annotations.of(self).add_warning_v2(
                    "inference:unpinned-hub-model",
                    f"hub model {source.model_id!r} has no revision: every new instance downloads whatever "
                    "its main branch holds then. Pin model.revision to a 40-hex commit id.",
                )
        elif isinstance(source, S3PrefixModel):
            self.model_data_url = source.uri
            # Objects under the prefix and nothing else: the prefix ends in '/', so a sibling
            # prefix sharing its first characters ('models-old/') is not readable.
            self._object_arn = f"arn:{cdk.Aws.PARTITION}:s3:::{source.bucket}/{source.prefix}*"
        elif isinstance(source, S3Model):
            self.model_data_url = source.uri
            self._object_arn = f"arn:{cdk.Aws.PARTITION}:s3:::{source.bucket}/{source.key}"
        else:
            tarball = pack_model_directory(source.path, build_dir)
            self.asset = s3_assets.Asset(self, "Tarball", path=str(tarball))
            self.model_data_url = self.asset.s3_object_url
            self._object_arn = f"arn:{cdk.Aws.PARTITION}:s3:::{self.asset.s3_bucket_name}/{self.asset.s3_object_key}"

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """s3:GetObject on exactly the model object, or the objects under a multi-model prefix
        (nothing for a hub model)."""
        if self._object_arn is None:
            return iam.Grant.drop(grantee, "read a hub model: the container downloads it, nothing in S3")
        return iam.Grant.add_to_principal(grantee=grantee, actions=["s3:GetObject"], resource_arns=[self._object_arn])
