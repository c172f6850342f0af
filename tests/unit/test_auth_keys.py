"""Production JWT keys: RS256/ES256 public keys chosen by ``kid``, rotation, ``aud``/``iss``, and start-up errors.

Keys are real RSA and EC keys generated per test; tokens are signed with the
private half exactly as an identity provider would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from linkproc_ray.api.auth import TokenVerifier, issue_token
from linkproc_ray.config import Settings, load_settings
from linkproc_ray.errors import ConfigError, Unauthorized

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_key(folder: Path, kid: str, key: PrivateKey) -> Path:
    path = folder / f"{kid}.pem"
    path.write_bytes(public_pem(key))
    return path


def sign(key: PrivateKey, algorithm: str, kid: str | None, **claims: Any) -> str:
    body = {"sub": "ada", "orgId": "acme", "exp": int(time.time()) + 600, **claims}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "jwt-keys"
    folder.mkdir()
    return folder


def verifier_for(keys_dir: Path, algorithms: str = "RS256,ES256", **extra: Any) -> TokenVerifier:
    return TokenVerifier(
        Settings(data_dir=keys_dir.parent, jwt_algorithms=algorithms, jwt_public_keys_dir=keys_dir, **extra)
    )


def test_rs256_token_is_verified_with_the_key_its_kid_names(keys_dir):
    key = rsa_key()
    write_key(keys_dir, "2026-01", key)
    principal = verifier_for(keys_dir).verify(sign(key, "RS256", "2026-01"))
    assert (principal.sub, principal.org_id) == ("ada", "acme")


def test_es256_token_is_verified_with_an_ec_p256_key(keys_dir):
    key = ec_key()
    write_key(keys_dir, "ec-1", key)
    assert verifier_for(keys_dir).verify(sign(key, "ES256", "ec-1")).org_id == "acme"


def test_during_rotation_tokens_of_the_old_and_the_new_key_both_verify(keys_dir):
    old, new = rsa_key(), rsa_key()
    write_key(keys_dir, "old", old)
    write_key(keys_dir, "new", new)
    verifier = verifier_for(keys_dir)
    assert verifier.verify(sign(old, "RS256", "old")).sub == "ada"
    assert verifier.verify(sign(new, "RS256", "new")).sub == "ada"


def test_a_key_added_after_start_works_without_a_restart(keys_dir):
    write_key(keys_dir, "old", rsa_key())
    verifier = verifier_for(keys_dir)
    new = rsa_key()
    write_key(keys_dir, "new", new)
    assert verifier.verify(sign(new, "RS256", "new")).sub == "ada"


def test_a_deleted_key_stops_working_at_the_next_refresh(keys_dir):
    old, new = rsa_key(), rsa_key()
    old_path = write_key(keys_dir, "old", old)
    write_key(keys_dir, "new", new)
    verifier = verifier_for(keys_dir)
    old_path.unlink()
    verifier.source.refresh_interval = 0  # type: ignore[union-attr]
    with pytest.raises(Unauthorized, match="unknown key id 'old'"):
        verifier.verify(sign(old, "RS256", "old"))


def test_a_token_with_an_unknown_kid_is_unauthorized(keys_dir):
    write_key(keys_dir, "known", rsa_key())
    with pytest.raises(Unauthorized, match="unknown key id 'stranger'"):
        verifier_for(keys_dir).verify(sign(rsa_key(), "RS256", "stranger"))


def test_a_token_without_a_kid_is_unauthorized_when_keys_are_chosen_by_kid(keys_dir):
    key = rsa_key()
    write_key(keys_dir, "k1", key)
    with pytest.raises(Unauthorized, match="no kid"):
        verifier_for(keys_dir).verify(sign(key, "RS256", None))


def test_a_token_signed_by_another_key_than_its_kid_names_is_unauthorized(keys_dir):
    write_key(keys_dir, "a", rsa_key())
    impostor = rsa_key()
    with pytest.raises(Unauthorized, match="Signature verification failed"):
        verifier_for(keys_dir).verify(sign(impostor, "RS256", "a"))


def test_an_ec_token_naming_an_rsa_kid_is_unauthorized(keys_dir):
    write_key(keys_dir, "rsa", rsa_key())
    with pytest.raises(Unauthorized, match="alg value is not allowed"):
        verifier_for(keys_dir).verify(sign(ec_key(), "ES256", "rsa"))


def hs256_forgery(secret: bytes, kid: str) -> str:
    """A token MAC'd with ``secret`` as an HS256 key, built by hand (PyJWT refuses a PEM as a secret)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part({'sub': 'ada', 'orgId': 'acme', 'exp': int(time.time()) + 600})}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_algorithm_confusion_hs256_keyed_with_the_public_pem_is_unauthorized(keys_dir):
    key = rsa_key()
    write_key(keys_dir, "k1", key)
    with pytest.raises(Unauthorized, match="alg value is not allowed"):
        verifier_for(keys_dir).verify(hs256_forgery(public_pem(key), "k1"))


def test_an_unsigned_token_is_unauthorized(keys_dir):
    write_key(keys_dir, "k1", rsa_key())
    claims = {"sub": "ada", "orgId": "acme", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    with pytest.raises(Unauthorized, match="alg value is not allowed"):
        verifier_for(keys_dir).verify(token)


def test_audience_and_issuer_are_required_when_configured(keys_dir):
    key = rsa_key()
    write_key(keys_dir, "k1", key)
    verifier = verifier_for(keys_dir, jwt_audience="linkproc", jwt_issuer="https://id.example.com")
    good = sign(key, "RS256", "k1", aud="linkproc", iss="https://id.example.com")
    assert verifier.verify(good).sub == "ada"
    with pytest.raises(Unauthorized, match="Audience doesn't match"):
        verifier.verify(sign(key, "RS256", "k1", aud="someone-else", iss="https://id.example.com"))
    with pytest.raises(Unauthorized, match="iss"):
        verifier.verify(sign(key, "RS256", "k1", aud="linkproc"))


def test_one_public_key_file_still_verifies_without_kid(tmp_path):
    key = ec_key()
    path = write_key(tmp_path, "only", key)
    verifier = TokenVerifier(Settings(data_dir=tmp_path, jwt_algorithms="ES256", jwt_public_key_file=path))
    assert verifier.verify(sign(key, "ES256", None)).org_id == "acme"


def test_local_hs256_tokens_still_round_trip(tmp_path):
    settings = Settings(data_dir=tmp_path, jwt_secret="a-local-secret-that-is-long-enough-for-hs256")
    assert TokenVerifier(settings).verify(issue_token(settings, "acme", sub="dev")).sub == "dev"


# --- wrong settings fail at start, naming the setting ---


def test_rs256_without_any_key_fails_at_start_naming_the_setting():
    with pytest.raises(ConfigError, match="LINKPROC_JWT_PUBLIC_KEYS_DIR"):
        load_settings(jwt_algorithms="RS256")


def test_mixing_a_shared_secret_with_public_key_algorithms_fails_at_start():
    with pytest.raises(ConfigError, match="LINKPROC_JWT_ALGORITHMS='HS256,RS256' mixes"):
        load_settings(jwt_algorithms="HS256,RS256")


def test_a_keys_dir_without_an_asymmetric_algorithm_fails_at_start(keys_dir):
    with pytest.raises(ConfigError, match="accepts no RS\\*/ES\\* algorithm"):
        load_settings(jwt_public_keys_dir=str(keys_dir))


def test_an_empty_keys_dir_fails_at_start(keys_dir):
    with pytest.raises(ConfigError, match="holds no <kid>.pem"):
        verifier_for(keys_dir)


def test_a_file_that_is_not_a_pem_key_fails_at_start_naming_it(keys_dir):
    (keys_dir / "broken.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="broken.pem: not a readable PEM public key"):
        verifier_for(keys_dir)


def test_an_ec_key_on_a_curve_no_accepted_algorithm_uses_fails_at_start(keys_dir):
    write_key(keys_dir, "p384", ec_key(ec.SECP384R1()))
    with pytest.raises(ConfigError, match="p384.pem: a .* verifies none of"):
        verifier_for(keys_dir, algorithms="ES256")
