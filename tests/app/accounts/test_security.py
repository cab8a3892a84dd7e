"""app/accounts/security.py: scrypt password hashes and API tokens."""

from __future__ import annotations

from app.accounts import security


def test_password_hash_round_trip_and_salting():
    first = security.hash_password("s3cret passphrase")
    second = security.hash_password("s3cret passphrase")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert security.verify_password("s3cret passphrase", first)
    assert security.verify_password("s3cret passphrase", second)
    assert not security.verify_password("s3cret passphrasE", first)


def test_malformed_or_missing_hashes_never_verify():
    for stored in (None, "", "plain", "md5$x$y$z$a$b", "scrypt$1$2$3$!!$??"):
        assert not security.verify_password("anything", stored)


def test_tokens_are_random_and_hashed():
    tokens = {security.new_token() for _ in range(50)}
    assert len(tokens) == 50
    token = tokens.pop()
    assert len(token) > 40 and security.token_hash(token) != token
    assert len(security.token_hash(token)) == 64


def test_password_policy():
    assert security.password_problem("short") is not None
    assert security.password_problem("long enough password") is None
