"""Web errors: each knows its HTTP status; one handler renders them all as JSON."""
from __future__ import annotations

import logging

import psycopg2
from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from geo.errors import GeoError
from layers.errors import UnknownLayerError
from services import errors as service_errors

log = logging.getLogger(__name__)


class APIError(Exception):
    status = 500
    default = "internal error"

    def __init__(self, message: str | None = None, *, parameter: str | None = None, allowed=None, headers=None):
        self.message = message or self.default
        self.parameter = parameter
        self.allowed = allowed
        self.headers = headers or {}
        super().__init__(self.message)

    def as_dict(self) -> dict:
        body = {"status": self.status, "message": self.message}
        if self.parameter is not None:
            body["parameter"] = self.parameter
        if self.allowed is not None:
            body["allowed"] = self.allowed
        return {"error": body}


class BadParameter(APIError):
    status = 400
    default = "bad parameter"


class Unauthorized(APIError):
    status = 401
    default = "a bearer token is required"


class Forbidden(APIError):
    status = 403
    default = "this token's role may not do that"


class NotFound(APIError):
    status = 404
    default = "not found"


class Conflict(APIError):
    status = 409
    default = "conflict"


class PreconditionFailed(APIError):
    status = 412
    default = "the resource changed since you read it (If-Match did not match the current ETag)"


class PreconditionRequired(APIError):
    status = 428
    default = "If-Match with the resource's ETag is required for this change"


#: ``Retry-After`` (seconds) of a 503: the database, or a helper program, is expected back shortly.
RETRY_AFTER_UNAVAILABLE = "5"


class ServiceUnavailable(APIError):
    status = 503
    default = "the database is unavailable; please try again shortly"


def _json(err: APIError):
    response = jsonify(err.as_dict())
    response.status_code = err.status
    for key, value in err.headers.items():
        response.headers[key] = value
    if err.status in (503, 507):
        response.headers["Retry-After"] = RETRY_AFTER_UNAVAILABLE if err.status == 503 else "60"
    return response


def _wants_html() -> bool:
    if request.path.startswith(("/api", "/ogc", "/export", "/tiles", "/healthz", "/openapi")):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


#: HTTP status of each service error (the most specific class wins).
SERVICE_STATUS: dict[type[service_errors.ServiceError], int] = {
    service_errors.InvalidRequest: 400, service_errors.NotFound: 404, service_errors.Conflict: 409,
    service_errors.VersionMismatch: 412, service_errors.TooMuchWork: 400, service_errors.StorageFull: 507,
    service_errors.Unavailable: 503,
}


def service_status(err: service_errors.ServiceError) -> int:
    """The HTTP status of ``err``: its most specific class in :data:`SERVICE_STATUS`, else 400."""
    return next((SERVICE_STATUS[c] for c in type(err).__mro__ if c in SERVICE_STATUS), 400)


def service_error_response(err: service_errors.ServiceError):
    status = service_status(err)
    api = APIError(err.message, parameter=err.parameter, allowed=err.allowed)
    api.status = status
    if isinstance(err, service_errors.VersionMismatch):
        api.headers = {"ETag": err.current_etag}
    return _json(api)


def database_unavailable(err: BaseException) -> bool:
    """Whether ``err`` means the database cannot serve now (a 503 with Retry-After), not a fault of the request.

    So it is: the server refusing or ending connections (``OperationalError``, wrapped by SQLAlchemy or
    straight from psycopg2, e.g. a fast shutdown's "terminating connection due to administrator command"),
    a connection found lost mid-use (``connection_invalidated``, or psycopg2's ``InterfaceError``
    "connection already closed"), and a pool with no connection free in time. Any other database error
    (bad SQL, a constraint) is a fault, a 500.
    """
    if isinstance(err, PoolTimeout):
        return True
    if isinstance(err, DBAPIError):
        return isinstance(err, OperationalError) or err.connection_invalidated
    return isinstance(err, psycopg2.OperationalError | psycopg2.InterfaceError)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(service_errors.ServiceError, service_error_response)

    @app.errorhandler(APIError)
    def _api_error(err: APIError):
        if err.status == 503 and _wants_html():
            return render_template("unavailable.html", message=err.message), 503
        return _json(err)

    @app.errorhandler(UnknownLayerError)
    def _unknown_layer(err: UnknownLayerError):
        return _json(BadParameter(str(err), parameter="layer", allowed=list(err.allowed)))

    @app.errorhandler(GeoError)
    def _geo_error(err: GeoError):
        return _json(BadParameter(str(err)))

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(psycopg2.Error)
    def _db_error(err: Exception):
        if not database_unavailable(err):
            log.exception("database error")
            return _json(APIError("internal database error"))
        log.warning("database unavailable: %s: %s", type(err).__name__, (str(err).splitlines() or [""])[0])
        return _api_error(ServiceUnavailable())

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        if _wants_html():
            return err
        body = APIError(err.description)
        body.status = err.code or 500
        # Keep what the exception says in its headers (405's Allow: the methods the resource takes).
        body.headers = {k: v for k, v in err.get_headers() if k.lower() != "content-type"}
        if err.code == 405 and "Allow" in body.headers:
            body.message = f"{request.method} is not allowed here; allowed: {body.headers['Allow']}"
            body.allowed = [m.strip() for m in body.headers["Allow"].split(",")]
        return _json(body)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unexpected error")
        return _json(APIError("internal error"))
