"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` with a matching status."""

from __future__ import annotations

import orjson
from starlette.responses import Response


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
        self.code = code

    def body(self) -> dict[str, object]:
        """The JSON body OpenAI clients parse."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        """This error as an HTTP response."""
        return Response(orjson.dumps(self.body()), status_code=self.status, media_type="application/json")


def bad_request(message: str, param: str | None = None) -> APIError:
    """A 400 for a field the client got wrong."""
    return APIError(400, message, param=param)
