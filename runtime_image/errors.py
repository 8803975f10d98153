"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` with a matching status."""

from __future__ import annotations

import orjson
from starlette.responses import Response

# The code of an error that names none, by status: the router's vocabulary (router/errors.py), so
# every error a client sees through the router carries a string code, as docs/openapi.yaml says.
DEFAULT_CODES = {
    400: "bad_request",
    401: "auth",
    404: "not_found",
    408: "timeout",
    409: "conflict",
    413: "bad_request",
    422: "bad_request",
    429: "rate_limited",
    503: "unavailable",
    504: "timeout",
}


class APIError(Exception):
    """A request the runtime refuses, with the HTTP status and OpenAI error type to answer with."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code or DEFAULT_CODES.get(status, "server_error" if status >= 500 else "bad_request")

    def body(self) -> dict[str, object]:
        """The JSON body OpenAI clients parse."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        """This error as an HTTP response."""
        return Response(orjson.dumps(self.body()), status_code=self.status, media_type="application/json")


def bad_request(message: str, param: str | None = None) -> APIError:
    """A 400 for a field the client got wrong."""
    return APIError(400, message, param=param)
