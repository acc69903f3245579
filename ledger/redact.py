"""Keep credentials out of everything the ledger prints.

Settings that hold URLs (``LEDGER_LOG``, ``LEDGER_STORE``) may carry a password
(``postgresql://user:secret@host/db``, ``?password=...``). Every place that shows a URL,
in text, JSON or an error message, shows :func:`redact_url` of it; the CLI passes every
error message through :func:`redact` as well, for URLs that reach a message from a
library's own text.
"""

from __future__ import annotations

import re

MASK = "***"

_SECRET_PARAMETER = re.compile(
    r"(?i)([?&;](?:[a-z0-9_.-]*(?:pass|pwd|secret|token|key|credential|auth)[a-z0-9_.-]*)=)"
    r"([^&;#\s'\"]*)"
)
_URL_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@:\s'\"]*):([^\s'\"]*)@")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``user:***@``), also without a
    scheme or with an unencoded ``@`` or ``/`` in the password, and with the values of
    query parameters that name a secret (``password``, ``sslpassword``, ``token``,
    ``api_key``, ...) replaced too. Over-redacts rather than under-redacts."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:{MASK}@{host}" if colon else rest
    return _SECRET_PARAMETER.sub(rf"\g<1>{MASK}", f"{scheme}{sep}{rest}")


def redact(text: str) -> str:
    """Free text (an error message) with the password of every ``scheme://user:pw@`` URL
    and every secret query parameter in it replaced by ``***``."""
    return _SECRET_PARAMETER.sub(rf"\g<1>{MASK}", _URL_USERINFO.sub(rf"\g<1>\g<2>:{MASK}@", text))
