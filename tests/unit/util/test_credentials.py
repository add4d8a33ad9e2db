"""Masking credentials in everything sluice shows, and refusing URLs that carry them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import StoreError
from sluice.util.credentials import (
    embedded_secrets,
    is_secret_name,
    mask,
    reject_embedded_secrets,
    secret_values,
)

ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEBYaDexampletoken",
    "GITHUB_TOKEN": "ghp_exampleexampleexample",
    "MY_DB_PASSWORD": "correct-horse",
    "SHORT_TOKEN": "abc",  # too short to mask without wrecking ordinary text
    "HOME": "/home/someone",
}


def test_secret_environment_values_are_masked() -> None:
    text = ("key AKIAEXAMPLEKEYID secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY "
            "token FwoGZXIvYXdzEBYaDexampletoken gh ghp_exampleexampleexample "
            "pw correct-horse abc /home/someone")
    masked = mask(text, ENV)
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GITHUB_TOKEN", "MY_DB_PASSWORD"):
        assert ENV[name] not in masked
    assert "AKIAEXAMPLEKEYID" in masked  # an identifier, not a secret
    assert masked.endswith("pw *** abc /home/someone")


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql+psycopg://sluice:s3cr3t@db:5432/ci",
     "postgresql+psycopg://sluice:***@db:5432/ci"),
    ("cannot reach https://user:p%40ss@host/x now", "cannot reach https://user:***@host/x now"),
    ("s3://bucket/p?access_key=AK&secret_key=SK&region=eu",
     "s3://bucket/p?access_key=***&secret_key=***&region=eu"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc123",
     "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***"),
    ("az://container/p?sig=abcdef&sv=2020", "az://container/p?sig=***&sv=2020"),
    ("s3://bucket/prefix and user@host:path", "s3://bucket/prefix and user@host:path"),
])
def test_urls_lose_their_passwords_and_secret_parameters(text: str, expected: str) -> None:
    assert mask(text, {}) == expected


def test_embedded_secrets_are_named_and_refused() -> None:
    assert embedded_secrets("s3://bucket/prefix") == []
    assert embedded_secrets("gs://u:pw@bucket/p") == ["a password"]
    assert embedded_secrets("s3://b/p?token=x&sig=y") == ["sig", "token"]
    with pytest.raises(StoreError) as caught:
        reject_embedded_secrets("s3://b/p?secret_key=topsecretvalue")
    rendered = caught.value.render()
    assert "topsecretvalue" not in rendered and "AWS_SECRET_ACCESS_KEY" in rendered


def test_store_urls_and_errors_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.store.fsspec import FsspecStore

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-very-secret-value")
    class Broken:
        protocol = ("s3",)

        def invalidate_cache(self, path: str) -> None:
            pass

        def call_s3(self, method: str, **kwargs: object) -> dict[str, object]:
            raise RuntimeError("signature mismatch for key a-very-secret-value")

    # An absurd prefix, but whatever the URL holds must not leak.
    store = FsspecStore(Broken(), "bucket/a-very-secret-value", "s3://bucket/a-very-secret-value")
    assert store.url == "s3://bucket/***"
    broken = FsspecStore(Broken(), "bucket/p", "s3://bucket/p")
    with pytest.raises(StoreError) as caught:
        broken.has("ab" * 16)
    assert "a-very-secret-value" not in caught.value.render()
    assert "signature mismatch for key ***" in caught.value.render()


def test_open_store_refuses_credentials_in_the_url() -> None:
    from sluice.store import open_store

    with pytest.raises(StoreError, match="contains a credential"):
        open_store("gs://someone:hunter22@bucket/prefix", Path("."))


def test_a_url_password_with_a_slash_or_an_at_sign_is_masked_whole() -> None:
    assert mask("postgresql://u:ab/cd@h/db", {}) == "postgresql://u:***@h/db"
    assert mask("postgresql://u:p@ss@h:5432/db", {}) == "postgresql://u:***@h:5432/db"
    assert mask("postgresql+psycopg://user@host/db", {}) == "postgresql+psycopg://user@host/db"


@pytest.mark.parametrize("name", [
    "MY_DB_PASS", "DB_PWD", "SMTP_PW", "SSH_KEY", "DEPLOY_KEYS", "STORAGE_SAS", "HOOK_AUTH",
    "GITHUB_TOKEN", "DBPASSWORD", "MY_PASSWD", "GPG_PASSPHRASE", "AZURE_CLIENT_SECRET",
    "MY_CREDENTIALS", "DOCKER_CREDS", "OPENAI_API_KEY", "OPENAI_APIKEY", "SIGNING_PRIVATE_KEY",
    "MINIO_ACCESS_KEY", "my_db_pass", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD",
])
def test_names_that_hold_secrets(name: str) -> None:
    assert is_secret_name(name)
    assert mask("value: s3cr3t-v4lue", {name: "s3cr3t-v4lue"}) == "value: ***"


@pytest.mark.parametrize("name", [
    "PWD", "OLDPWD", "PASS", "KEY", "AWS_ACCESS_KEY_ID", "HF_TOKENIZER", "TOKENIZERS_PARALLELISM",
    "POSTGRES_PASSWORD_FILE", "AWS_SHARED_CREDENTIALS_FILE", "SECRET_NAME", "PASS_THROUGH",
    "KEY_PATH", "HOME", "BYPASS",
])
def test_names_that_do_not(name: str) -> None:
    assert not is_secret_name(name)
    assert mask("value: /some/dir/x", {name: "/some/dir/x"}) == "value: /some/dir/x"


def test_names_listed_in_ci_secrets_are_masked_too() -> None:
    env = {"DEPLOY_HOOK": "https-hook-value", "PLAIN": "plain-value"}
    assert mask("a https-hook-value b plain-value", env) == "a https-hook-value b plain-value"
    assert mask("a https-hook-value b plain-value", env, names=["DEPLOY_HOOK"]) == \
        "a *** b plain-value"
    assert secret_values(env, ["DEPLOY_HOOK"]) == ["https-hook-value"]


def test_each_line_of_a_multi_line_secret_is_masked() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
    masked = mask("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n", {"DEPLOY_PRIVATE_KEY": key})
    assert masked == "***\n"
