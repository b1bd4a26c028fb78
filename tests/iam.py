"""IAM statement helpers shared by the infrastructure and delivery tests: one meaning everywhere.

A role's grants are every statement that applies to it, wherever CloudFormation puts them
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iam-role.html):
the role's own inline `Policies`, and each AWS::IAM::Policy or AWS::IAM::ManagedPolicy whose
`Roles` lists it. Leaving one kind out would let a grant slip past a least-privilege test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk.assertions import Template

_ATTACHED_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def _resources(template: Template | Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    if isinstance(template, Template):
        return dict(template.find_resources(kind))
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    """IAM allows a single value or a list for Action and Resource."""
    return value if isinstance(value, list) else [value]


def actions(statement: Mapping[str, Any]) -> list[str]:
    return as_list(statement["Action"])


def resources(statement: Mapping[str, Any]) -> list[Any]:
    return as_list(statement["Resource"])


def policy_statements(template: Template | Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(policy logical id, statement) for every identity policy statement in the template."""
    found = []
    for kind in _ATTACHED_POLICY_TYPES:
        for lid, policy in _resources(template, kind).items():
            found += [(lid, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    for lid, role in _resources(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            found += [(lid, s) for s in inline["PolicyDocument"]["Statement"]]
    return found


def role_statements(template: Template | Mapping[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every statement granted to the role `role_id`: inline, attached policies and managed policies."""
    role = _resources(template, "AWS::IAM::Role")[role_id]["Properties"]
    statements = [s for inline in role.get("Policies", []) for s in inline["PolicyDocument"]["Statement"]]
    for kind in _ATTACHED_POLICY_TYPES:
        for policy in _resources(template, kind).values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def granted(statements: list[dict[str, Any]], action: str) -> list[str]:
    """The resources (as JSON text) on which Allow statements grant `action`."""
    return [
        json.dumps(r, sort_keys=True)
        for s in statements
        if s["Effect"] == "Allow" and action in actions(s)
        for r in resources(s)
    ]
