"""Who is calling: the IAM principal API Gateway authenticated, reduced to one stable key.

With IAM authorization API Gateway puts the signer's identity in `requestContext.identity`
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html#context-variable-reference):
`accountId`, `caller` (the principal identifier, the value of IAM's `aws:userid`), `user`,
`userArn` and `accessKey`. `aws:userid` is, per IAM's policy-variables page
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable):

    IAM user             AIDA...                       (the user's unique id)
    assumed role         AROA...:<role session name>   (the role's unique id : session)
    federated user       <account>:<caller-specified name>
    account root         <account id>

A caller is the account plus that principal id, **without the role session name**: the
session name is whatever the caller of `sts:AssumeRole` chose (`RoleSessionName`), so anyone
allowed to assume the role can present any session name and it separates nobody; IAM grants
permissions to the role, not to a session. Using the role's unique id rather than its name
also means a role deleted and re-created under the same name does not inherit the old role's
inferences, which is how IAM resource policies treat a re-created principal. Consequence:
every session of one role (all users of one SSO permission set, every task of one ECS service)
is one caller; give callers that must not see each other separate roles.

No identity at all (an API deployed without IAM authorization, the local pipeline's unsigned
requests) is one caller, `anonymous`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANONYMOUS = "anonymous"
# Role unique ids start with AROA; the session name follows the colon.
_ROLE_SESSION = re.compile(r"(AROA[A-Z0-9]+):.*", re.DOTALL)
# arn:aws:sts::<account>:assumed-role/<role>/<session> -> the role part.
_ASSUMED_ROLE_ARN = re.compile(r"(arn:[a-z-]+:sts::\d{12}:assumed-role/[^/]+)/.*", re.DOTALL)


@dataclass(frozen=True)
class Caller:
    """`key` scopes inferences, idempotency keys and uploads; `arn` is for receipts and logs."""

    key: str
    arn: str | None = None

    @property
    def digest(self) -> str:
        """32 hex digits naming the caller in S3 keys (the key itself has ':' and '/')."""
        return hashlib.sha256(b"caller\n" + self.key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def caller_of(event: Mapping[str, Any]) -> Caller:
    context = event.get("requestContext")
    identity = context.get("identity") if isinstance(context, Mapping) else None
    if not isinstance(identity, Mapping):
        return Caller(ANONYMOUS)
    account = _text(identity.get("accountId"))
    principal = _text(identity.get("caller")) or _text(identity.get("user"))
    arn = _text(identity.get("userArn"))
    if principal:
        match = _ROLE_SESSION.fullmatch(principal)
        principal = match.group(1) if match else principal
    elif arn:
        match = _ASSUMED_ROLE_ARN.fullmatch(arn)
        principal = match.group(1) if match else arn
    if not principal:
        return Caller(ANONYMOUS)
    return Caller(f"{account or '-'}/{principal}", arn)


def _text(value: Any) -> str | None:
    """An identity field, or None when missing or empty. Never pattern-filtered: an odd but
    present identity must stay a distinct caller, not fall back to the shared anonymous one."""
    return value if isinstance(value, str) and value.strip() else None
