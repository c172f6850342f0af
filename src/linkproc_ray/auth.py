"""JWT bearer auth: who is calling, and for which organization.

The accepted algorithms are fixed by configuration, so a token cannot choose
its own (``none`` and algorithm confusion are refused by PyJWT's allow-list).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Final

import jwt

from .config import Settings, jwt_secret
from .errors import Forbidden, Unauthorized

ORG_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
REQUIRED_CLAIMS: Final = ("sub", "orgId", "exp")


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller."""

    sub: str
    org_id: str
    expires_at: float

    def require_org(self, org: str) -> None:
        """Raise :class:`Forbidden` unless the token belongs to ``org``."""
        if self.org_id != org:
            raise Forbidden(f"token is for organization {self.org_id!r}, not {org!r}")


def valid_org_id(org: str) -> bool:
    return bool(ORG_ID.fullmatch(org))


class TokenVerifier:
    """Checks signature, expiry, required claims and optional ``aud``/``iss``."""

    def __init__(self, settings: Settings) -> None:
        self.algorithms = settings.algorithms
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        if any(a.startswith("HS") for a in self.algorithms):
            self._key: Any = jwt_secret(settings)
        elif settings.jwt_public_key_file is not None:
            self._key = settings.jwt_public_key_file.read_text()
        else:
            raise Unauthorized("LINKPROC_JWT_PUBLIC_KEY_FILE is required for asymmetric algorithms")

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("missing bearer token")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        sub, org = claims.get("sub"), claims.get("orgId")
        if not isinstance(sub, str) or not sub or not isinstance(org, str) or not valid_org_id(org):
            raise Unauthorized("token claims sub and orgId must be non-empty strings (orgId a valid org id)")
        return Principal(sub=sub, org_id=org, expires_at=float(claims["exp"]))


def issue_token(settings: Settings, org: str, sub: str = "dev", ttl: float = 3600.0) -> str:
    """A token signed with the configured HS secret (for local use and tests)."""
    algorithm = next((a for a in settings.algorithms if a.startswith("HS")), None)
    if algorithm is None:
        raise Unauthorized("tokens can only be issued locally with an HS algorithm")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "orgId": org, "iat": now, "exp": now + int(ttl)}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, jwt_secret(settings), algorithm=algorithm)
