"""JWT bearer auth: who is calling, and for which organization.

The accepted algorithms are fixed by configuration, so a token cannot choose
its own (``none`` and algorithm confusion are refused by PyJWT's allow-list).
Locally tokens are HS256 with a shared secret; in production they are RS*/ES*,
verified with the public key their ``kid`` names, so keys rotate by adding a file.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from linkproc_ray.config import Settings, jwt_secret
from linkproc_ray.errors import ConfigError, Forbidden, InvalidOrgId, Unauthorized

log = logging.getLogger(__name__)

ORG_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
REQUIRED_CLAIMS: Final = ("sub", "orgId", "exp")
# An ES algorithm is defined for exactly one curve (RFC 7518 §3.4).
ES_CURVES: Final = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
KEY_REFRESH_INTERVAL: Final = 30.0
"""Seconds between re-reads of the keys folder, so a deleted (revoked) key stops working."""


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


def require_org_id(org: str) -> None:
    """Raise :class:`InvalidOrgId` unless ``org`` is a well-formed organization id."""
    if not valid_org_id(org):
        raise InvalidOrgId(f"organization id {org!r} must match {ORG_ID.pattern}")


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key and the configured algorithms it may verify (never more: no algorithm confusion)."""

    key: Any
    algorithms: tuple[str, ...]


def load_public_key(path: Path, accepted: list[str]) -> VerificationKey:
    """A PEM public key and the accepted algorithms its type fits; :class:`ConfigError` names the file."""
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"JWT public key {path}: not a readable PEM public key ({exc})") from None
    if isinstance(key, RSAPublicKey):
        fits = tuple(a for a in accepted if a.startswith("RS"))
    elif isinstance(key, EllipticCurvePublicKey):
        fits = tuple(a for a in accepted if a == ES_CURVES.get(key.curve.name))
    else:
        fits = ()
    if not fits:
        raise ConfigError(
            f"JWT public key {path}: a {type(key).__name__} verifies none of LINKPROC_JWT_ALGORITHMS={accepted}"
        )
    return VerificationKey(key, fits)


class KeySet:
    """The ``<kid>.pem`` public keys of a folder.

    Re-read when a token names an unknown kid (a key added for rotation works
    at once) and every :data:`KEY_REFRESH_INTERVAL` seconds (a deleted key
    stops working); the first read fails at start if any key is bad.
    """

    def __init__(self, folder: Path, accepted: list[str]) -> None:
        self.folder = folder
        self.accepted = accepted
        self.refresh_interval = KEY_REFRESH_INTERVAL
        self._keys = {path.stem: load_public_key(path, accepted) for path in self._files()}
        if not self._keys:
            raise ConfigError(f"LINKPROC_JWT_PUBLIC_KEYS_DIR={folder}: holds no <kid>.pem public key")
        self._read_at = time.monotonic()

    def _files(self) -> list[Path]:
        try:
            return sorted(self.folder.glob("*.pem"))
        except OSError as exc:
            raise ConfigError(f"LINKPROC_JWT_PUBLIC_KEYS_DIR={self.folder}: {exc}") from None

    def _reread(self) -> None:
        keys: dict[str, VerificationKey] = {}
        for path in self._files():
            try:
                keys[path.stem] = load_public_key(path, self.accepted)
            except ConfigError as exc:
                # A key being written or a bad new file must not lock out
                # every holder of a good token: keep the previous version.
                log.warning("%s; keeping the previous key for kid %r", exc, path.stem)
                if path.stem in self._keys:
                    keys[path.stem] = self._keys[path.stem]
        self._keys = keys
        self._read_at = time.monotonic()

    def get(self, kid: str) -> VerificationKey | None:
        if kid not in self._keys or time.monotonic() - self._read_at >= self.refresh_interval:
            self._reread()
        return self._keys.get(kid)


class TokenVerifier:
    """Checks signature, expiry, required claims and optional ``aud``/``iss``.

    The key is the HS secret, the one ``LINKPROC_JWT_PUBLIC_KEY_FILE``, or the
    key of ``LINKPROC_JWT_PUBLIC_KEYS_DIR`` that the token's ``kid`` names; a
    bad key fails here, at start, with :class:`ConfigError`.
    """

    def __init__(self, settings: Settings) -> None:
        self.algorithms = settings.algorithms
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.source: VerificationKey | KeySet
        if all(a.startswith("HS") for a in self.algorithms):
            self.source = VerificationKey(jwt_secret(settings), tuple(self.algorithms))
        elif settings.jwt_public_keys_dir is not None:
            self.source = KeySet(settings.jwt_public_keys_dir, self.algorithms)
        elif settings.jwt_public_key_file is not None:
            self.source = load_public_key(settings.jwt_public_key_file, self.algorithms)
        else:
            raise ConfigError("LINKPROC_JWT_PUBLIC_KEYS_DIR or LINKPROC_JWT_PUBLIC_KEY_FILE: required for RS*/ES*")

    def _key_for(self, token: str) -> VerificationKey:
        if isinstance(self.source, VerificationKey):
            return self.source
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token has no kid header; it must name its signing key")
        key = self.source.get(kid)
        if key is None:
            raise Unauthorized(f"unknown key id {kid!r}")
        return key

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("missing bearer token")
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(key.algorithms),
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
