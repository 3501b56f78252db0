"""Response declarations shared by the views' OpenAPI operations, and the download response."""
from __future__ import annotations

from typing import Any

from flask import Response

ERROR_TEXT = {400: "A parameter is invalid; the body names it and what is allowed.", 401: "No or bad bearer token.",
              403: "The token's role may not do this.", 404: "Not found.", 409: "Conflict.",
              412: "If-Match did not match the current ETag.", 428: "If-Match is required.",
              503: "The database is unavailable; retry later."}


def errors(*codes: int) -> dict[str, Any]:
    """Error responses, each with the JSON error body."""
    return {str(c): {"description": ERROR_TEXT[c], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for c in codes}


def body(description: str, media: str = "application/json", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema or {"type": "object"}}}}


def json_ok_or_503(description: str) -> dict[str, Any]:
    return {"200": body(description), **errors(503)}


def download(body: bytes, media_type: str, filename: str) -> Response:
    """A file to save: ``body`` with its media type, and ``Content-Disposition`` naming the file."""
    return Response(body, content_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
