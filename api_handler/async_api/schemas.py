"""JSON schemas (draft-04) shared by API Gateway and the handler.

The stack turns UPLOAD_REQUEST into the API Gateway request model of POST /uploads and
the handler validates the same document with Powertools' validator, so a request that
reaches the Lambda some other way (local runs, a test event) meets the same rules.
Pure data: the CDK app imports this module too.
"""

from __future__ import annotations

from typing import Any

DRAFT_04 = "http://json-schema.org/draft-04/schema#"

# type/subtype with an optional parameter list, as in an HTTP Content-Type header: visible
# ASCII only (`.` would admit characters that cannot be a header, which SageMaker refuses).
MEDIA_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9!#&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#&^_.+-]*( *;[\x20-\x7e]*)?$"
UPLOAD_ID_PATTERN = r"^u[0-9a-f]{32}$"

UPLOAD_REQUEST: dict[str, Any] = {
    "$schema": DRAFT_04,
    "title": "UploadRequest",
    "description": "Ask for a presigned URL to upload a large payload.",
    "type": "object",
    "required": ["contentType"],
    "additionalProperties": False,
    "properties": {
        "contentType": {
            "type": "string",
            "description": "Content-Type of the payload; the upload must send this exact header.",
            "minLength": 3,
            "maxLength": 256,
            "pattern": MEDIA_TYPE_PATTERN,
        }
    },
}
