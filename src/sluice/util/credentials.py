"""Keeping credentials out of everything sluice prints or stores.

sluice takes credentials only from the environment and the providers' standard
chains (``AWS_*`` variables, ``~/.aws``, instance roles, ``gcloud`` logins,
``AZURE_*`` variables), never from ``sluice.yaml``. Store URLs that carry a
secret are refused (:func:`reject_embedded_secrets`), and :func:`mask` blanks
secrets out of any text before it is shown or written: the values of secret
environment variables, passwords in URLs (``postgresql://user:pw@host/db``) and
secret query parameters (``?access_key=…``, pre-signed ``X-Amz-Signature=…``).
A variable is secret when its name says so (:func:`is_secret_name`) or when
``ci.secrets`` in ``sluice.yaml`` lists it (:func:`declare_secret_names`).
Stage logs are masked line by line as they are written (:mod:`sluice.execute.supervise`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping

MASK = "***"
# Environment variables whose values are secrets whatever their length.
SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET", "GOOGLE_OAUTH_ACCESS_TOKEN",
    "PGPASSWORD",
)
# Other variables are secret when their name says so. Words that are secret anywhere
# in a name: GITHUB_TOKEN, DBPASSWORD, AZURE_CLIENT_SECRET, MY_CREDENTIALS, OPENAI_API_KEY
# (but HF_TOKENIZER is a model name, AWS_ACCESS_KEY_ID an identifier).
_SECRET_WORD = re.compile(r"SECRET|TOKEN(?!IZ)|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|CREDS"
                          r"|PRIVATE_?KEY|API_?KEY|ACCOUNT_?KEY|ACCESS_?KEY(?!_?ID)",
                          re.IGNORECASE)
# Words that are secret only as the last word after another one: MY_DB_PASS, DB_PWD,
# SSH_KEY, STORAGE_SAS. Alone they are something else (PWD is the working directory),
# and elsewhere too (PASS_THROUGH, KEY_ID).
_SECRET_SUFFIX = re.compile(r"[_\-.](?:PASS|PWD|PW|KEYS?|SAS|SIG|SIGNATURE|AUTH)$",
                            re.IGNORECASE)
# A name ending so holds a name, a path or an id, not the secret itself
# (POSTGRES_PASSWORD_FILE, AWS_SHARED_CREDENTIALS_FILE, SECRET_NAME).
_NOT_SECRET_SUFFIX = re.compile(r"[_\-.](?:ID|IDS|NAME|USER|USERNAME|FILE|PATH|DIR)$",
                                re.IGNORECASE)
# Names `ci.secrets` declares (see declare_secret_names).
_declared: set[str] = set()
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


def is_secret_name(name: str, declared: Iterable[str] = ()) -> bool:
    """Whether the variable ``name`` holds a secret: by its name, or ``declared`` lists it."""
    if name in SECRET_ENV or name in _declared or name in declared:
        return True
    if _NOT_SECRET_SUFFIX.search(name):
        return False
    return bool(_SECRET_WORD.search(name) or _SECRET_SUFFIX.search(name))


def declare_secret_names(names: Iterable[str]) -> None:
    """Treat the variables ``names`` (``ci.secrets``) as secret in everything masked from now on."""
    _declared.update(names)


def secret_values(environ: Mapping[str, str] | None = None,
                  names: Iterable[str] = ()) -> list[str]:
    """Values of the environment's secret variables (also those ``names`` lists), longest first.

    A multi-line value (a PEM key) also gives each of its lines, since logs are masked a
    line at a time.
    """
    env = os.environ if environ is None else environ
    declared = set(names)
    found: set[str] = set()
    for name, value in env.items():
        if is_secret_name(name, declared):
            found.add(value)
            found.update(line.strip() for line in value.splitlines())
    return sorted((v for v in found if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def mask_values(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values`` (known secrets, e.g. a token) replaced by ``***``;
    values shorter than a real secret are left, lest ordinary words be masked."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= _MIN_SECRET_LEN:
            text = text.replace(value, MASK)
    return text


def masker(environ: Mapping[str, str] | None = None,
           names: Iterable[str] = ()) -> Callable[[str], str]:
    """:func:`mask` with the secrets looked up once, for masking many lines (a log)."""
    values = secret_values(environ, names)

    def apply(text: str) -> str:
        text = mask_values(text, values)
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        return _QUERY_SECRET.sub(lambda m: m.group("head") + MASK, text)
    return apply


def mask(text: str, environ: Mapping[str, str] | None = None, names: Iterable[str] = ()) -> str:
    """``text`` with every credential replaced by ``***``."""
    return masker(environ, names)(text)


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
        # Imported here: every stage's supervisor imports this module for its masker,
        # and sluice.errors (dataclasses, inspect) would double its start-up.
        from sluice.errors import StoreError

        raise StoreError(
            f"the {what} {mask(url)} contains a credential ({', '.join(found)})",
            hint="remove it from the URL and give it through the environment instead "
                 "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE for S3, "
                 "GOOGLE_APPLICATION_CREDENTIALS for GCS, AZURE_STORAGE_ACCOUNT_NAME/"
                 "AZURE_STORAGE_ACCOUNT_KEY for Azure)")
