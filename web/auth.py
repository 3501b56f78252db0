"""Bearer tokens for the admin API.

A request carries ``Authorization: Bearer <token>``. The token's SHA-256 is
looked up (:func:`services.editing.find_token`; the secret itself is never
stored). Roles: ``viewer`` may read admin views, ``editor`` may also edit.
Use :func:`require` as a decorator; the token is then ``g.token``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, request

from services.editing import ROLES, Token, find_token
from web.database import get_engine
from web.errors import Forbidden, Unauthorized

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="minsheng-admin"'}
#: Tokens are ``msm_`` + 43 url-safe characters; anything far longer is refused unread.
MAX_TOKEN_LEN = 200


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("an 'Authorization: Bearer <token>' header is required; create a token with "
                           "`flask admin create-token --role editor`", headers=_CHALLENGE)
    secret = secret.strip()
    if len(secret) > MAX_TOKEN_LEN:
        raise Unauthorized("the bearer token is not valid", headers=_CHALLENGE)
    return secret


def current_token(min_role: str) -> Token:
    """The request's live token, if its role is at least ``min_role``.

    Raises
    ------
    Unauthorized
        No bearer token, or an unknown, revoked or expired one (401).
    Forbidden
        A valid token whose role is weaker than ``min_role`` (403).
    """
    token = find_token(get_engine(), _bearer())
    if token is None:
        raise Unauthorized("the bearer token is not valid (unknown or revoked)", headers=_CHALLENGE)
    if token.expired():
        assert token.expires_at is not None
        raise Unauthorized(f"the bearer token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; ask an administrator "
                           "for a new one (`flask admin create-token`)", headers=_CHALLENGE)
    if not token.allows(min_role):
        raise Forbidden(f"a {token.role} token may not do this; it needs the {min_role} role",
                        allowed=[r for r in ROLES if ROLES.index(r) >= ROLES.index(min_role)])
    return token


def require(min_role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the view runs only for a token of ``min_role`` or stronger."""
    if min_role not in ROLES:
        raise ValueError(f"min_role was {min_role!r} but is expected to be one of {', '.join(ROLES)}")

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            g.token = current_token(min_role)
            return view(*args, **kwargs)
        return inner
    return wrap
