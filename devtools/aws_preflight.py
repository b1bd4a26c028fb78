"""Before `make diff` / `make deploy`: are there AWS credentials and a region? One clear line if not.

Without credentials the CDK CLI synthesizes first and then fails with "Unable to resolve
AWS account to use" (printed twice); this answers in a second, before any of that, and
says where credentials come from. Uses botocore's own resolution chain (the one the CDK CLI
mirrors: environment, AWS_PROFILE / ~/.aws config and credentials, SSO, container and
instance roles), so it never disagrees with what the deploy would find.
https://docs.aws.amazon.com/cdk/v2/guide/configure-access.html
"""

from __future__ import annotations

import os
import sys


def problems() -> list[str]:
    import botocore.session
    from botocore.exceptions import BotoCoreError

    session = botocore.session.get_session()
    found: list[str] = []
    try:
        credentials = session.get_credentials()
    except BotoCoreError as error:  # e.g. an expired SSO session, a profile that does not exist
        credentials, reason = None, f" ({error})"
    else:
        reason = ""
    if credentials is None:
        found.append(
            f"no AWS credentials found{reason}: run `aws configure` or `aws configure sso` / `aws sso login`, "
            "set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN)"
        )
    # The CDK CLI also reads AWS_REGION, which botocore alone does not (it reads AWS_DEFAULT_REGION).
    if not (os.environ.get("AWS_REGION") or session.get_config_variable("region")):
        found.append("no AWS region: set AWS_REGION (e.g. AWS_REGION=eu-west-1), or `region` in your AWS profile")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
