"""Keeping credentials out of everything sluice prints or stores.

sluice takes credentials only from the environment and the providers' standard
chains (``AWS_*`` variables, ``~/.aws``, instance roles, ``gcloud`` logins,
``AZURE_*`` variables), never from ``sluice.yaml``. Store URLs that carry a
secret are refused (:func:`reject_embedded_secrets`), and :func:`mask` blanks
secrets out of any text before it is shown or written: the values of secret
environment variables, passwords in URLs (``postgresql://user:pw@host/db``) and
secret query parameters (``?access_key=…``, pre-signed ``X-Amz-Signature=…``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from sluice.errors import StoreError
from sluice.fsutil import atomic_write_bytes

MASK = "***"
# Environment variables whose values are secrets whatever their length.
SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET", "GOOGLE_OAUTH_ACCESS_TOKEN",
    "PGPASSWORD",
)
# Other variables are secret when their name says so (GITHUB_TOKEN, MY_DB_PASSWORD, …).
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|ACCOUNT_KEY"
                          r"|API_KEY|SAS", re.IGNORECASE)
# Shorter values would mask ordinary words ("x", "test") all over a report.
_MIN_SECRET_LEN = 6
# user:password@ in any scheme://… URL.
# The password runs to the *last* @ before the host, so one holding "/" or "@" is
# masked whole (such URLs are invalid, but people write them).
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)(?P<pw>[^\s]*?)(?=@[^@\s/]*(?:[/:?#]|$|\s))")
_SECRET_PARAMS = ("access_key", "accesskey", "secret", "secret_key", "secret_access_key",
                  "token", "session_token", "password", "passwd", "pwd", "sig", "signature",
                  "sas", "sas_token", "account_key", "key", "credential", "credentials",
                  "x-amz-signature", "x-amz-credential", "x-amz-security-token",
                  "x-goog-signature", "x-goog-credential")
_PARAM_NAMES = "|".join(re.escape(p) for p in _SECRET_PARAMS)
_QUERY_SECRET = re.compile(rf"(?P<head>[?&;](?:{_PARAM_NAMES})=)(?P<value>[^&\s#\"']+)",
                           re.IGNORECASE)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment's secret variables, longest first."""
    env = os.environ if environ is None else environ
    found = {value for name, value in env.items()
             if (name in SECRET_ENV or _SECRET_NAME.search(name))
             and len(value) >= _MIN_SECRET_LEN}
    return sorted(found, key=len, reverse=True)


def mask_values(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values`` (known secrets, e.g. a token) replaced by ``***``;
    values shorter than a real secret are left, lest ordinary words be masked."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= _MIN_SECRET_LEN:
            text = text.replace(value, MASK)
    return text


def mask(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every credential replaced by ``***``."""
    text = mask_values(text, secret_values(environ))
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _QUERY_SECRET.sub(lambda m: m.group("head") + MASK, text)


def embedded_secrets(url: str) -> list[str]:
    """What kinds of secret ``url`` itself carries (empty when none)."""
    found = []
    if _URL_PASSWORD.search(url):
        found.append("a password")
    found += sorted({m.group("head").strip("?&;=").lower() for m in _QUERY_SECRET.finditer(url)})
    return found


def reject_embedded_secrets(url: str, what: str = "store URL") -> None:
    """Refuse a URL with a credential in it: it would end up in git, logs and reports."""
    found = embedded_secrets(url)
    if found:
        raise StoreError(
            f"the {what} {mask(url)} contains a credential ({', '.join(found)})",
            hint="remove it from the URL and give it through the environment instead "
                 "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE for S3, "
                 "GOOGLE_APPLICATION_CREDENTIALS for GCS, AZURE_STORAGE_ACCOUNT_NAME/"
                 "AZURE_STORAGE_ACCOUNT_KEY for Azure)")


def mask_file(path: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Mask the secret environment values a file (a stage's log) contains; True if any.

    CI uploads the logs as artifacts, so a stage that echoes a credential must not
    leave it there. Nothing is read unless the environment holds a secret.
    """
    secrets = [value.encode() for value in secret_values(environ)]
    if not secrets:
        return False
    try:
        data = path.read_bytes()
    except OSError:
        return False
    masked = data
    for secret in secrets:
        masked = masked.replace(secret, MASK.encode())
    if masked == data:
        return False
    atomic_write_bytes(path, masked)
    return True
