"""The identity use cases as the faces call them (``ledger identity``, ``link``, ``unlink``,
``merge``, ``unmerge``): settings in, plain data out, with issue 10's privacy rules.

A phone number or e-mail address is looked up by the key the ledger stores for it (its
keyed hash when the ledger encrypts: ``application.privacy.stored_customer_id``), and
every identifier an answer names is shown through the :class:`Revealer`: the cleartext
while its key exists, ``[erased]`` after ``ledger erase``; never the hash as if it were
the identifier.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, closing
from datetime import datetime
from typing import Any

from application import identity
from application.file_lock import beside_log, held
from application.privacy import Revealer, stored_customer_id, stored_customer_ids
from application.wiring import open_keys, open_log, open_store
from ledger.log import AppendOutcome
from ledger.settings import Settings


def _revealer(settings: Settings) -> Revealer:
    return Revealer(open_keys(settings) if settings.encrypt else None)


def _revealed(found: dict[str, Any], revealer: Revealer) -> dict[str, Any]:
    """``found`` (:func:`identity.describe` / :func:`identity.suspicious`) with every
    hashed identifier opened for display."""
    show = revealer.identifier
    out = dict(found)
    for name in ("asked", "person"):
        if isinstance(out.get(name), str):
            out[name] = show(out[name])
    for name in ("customers", "identifiers"):
        if name in out:
            out[name] = sorted(show(k) for k in out[name])
    if "suspicious" in out:
        out["suspicious"] = sorted(
            [
                {
                    **e,
                    "identifier": show(e["identifier"]),
                    "customers": [show(c) for c in e["customers"]],
                }
                if isinstance(e, dict)
                else show(e)
                for e in out["suspicious"]
            ],
            key=str,
        )
    if "links" in out:  # in the order of what is shown (the graph orders them by key)
        out["links"] = sorted(
            (
                {**e, "identifier": show(e["identifier"]), "customer": show(e["customer"])}
                for e in out["links"]
            ),
            key=lambda e: (e["identifier"], e["customer"]),
        )
    if "refused" in out:
        out["refused"] = [
            {**e, **{k: show(e[k]) for k in ("customer", "other") if k in e}}
            for e in out["refused"]
        ]
    return out


def show(settings: Settings, key: str, *, at: datetime | None = None) -> dict[str, Any]:
    """One person's graph (now, or as of ``at``), asked by any of their ids or identifiers
    (``key`` as the caller wrote it: normalised, then hashed if personal)."""
    asked = stored_customer_id(settings, key)
    revealer = _revealer(settings)
    try:
        with closing(open_store(settings)) as store, open_log(settings, create=False) as log:
            found = identity.describe(
                store, asked, log, at=at, max_customers=settings.identity_max_customers
            )
        return _revealed(found, revealer)
    finally:
        if revealer.keys is not None:
            revealer.keys.close()


def suspicious(settings: Settings) -> dict[str, Any]:
    """Identifiers linked to too many customers, and refused identity facts."""
    revealer = _revealer(settings)
    try:
        with closing(open_store(settings)) as store, open_log(settings, create=False) as log:
            found = identity.suspicious(store, log, max_customers=settings.identity_max_customers)
        return _revealed(found, revealer)
    finally:
        if revealer.keys is not None:
            revealer.keys.close()


def _checked(settings: Settings) -> AbstractContextManager[None]:
    """Held while an identity change is checked against the graph and appended: two
    changes checked at once would both pass (A into B and B into A; C into A and C into
    B), and the graph would then refuse one that its asker was told was appended."""
    return held(beside_log(settings, "identity"))


def link(
    settings: Settings,
    customer: str,
    identifier: str,
    *,
    evidence: str | None,
    at: datetime | None,
) -> tuple[dict[str, Any], AppendOutcome]:
    """Append ``identity.linked`` (the log's protector stores a phone number or e-mail
    address as its keyed hash and keeps the cleartext sealed in the key store)."""
    with open_log(settings) as log:
        return identity.link(log, customer, identifier, evidence=evidence, at=at)


def unlink(
    settings: Settings,
    customer: str,
    identifier: str,
    *,
    reason: str | None,
    at: datetime | None,
) -> tuple[dict[str, Any], AppendOutcome]:
    """Append ``identity.unlinked`` (refused if the link does not stand, checked with the
    identifier as the log stores it)."""
    with closing(open_store(settings)) as store, open_log(settings) as log, _checked(settings):
        return identity.unlink(
            log,
            store,
            customer,
            identifier,
            reason=reason,
            at=at,
            stored=stored_customer_ids(settings),
        )


def merge(
    settings: Settings,
    first: str,
    second: str,
    *,
    reason: str,
    survivor: str | None,
    at: datetime | None,
) -> tuple[dict[str, Any], AppendOutcome]:
    """Append ``customer.merged`` (see :func:`identity.merge`)."""
    with closing(open_store(settings)) as store, open_log(settings) as log, _checked(settings):
        return identity.merge(
            log,
            store,
            first,
            second,
            reason=reason,
            survivor=survivor,
            at=at,
            max_customers=settings.identity_max_customers,
        )


def unmerge(
    settings: Settings, customer: str, *, reason: str, at: datetime | None
) -> tuple[dict[str, Any], AppendOutcome]:
    """Append ``customer.unmerged`` (see :func:`identity.unmerge`)."""
    with closing(open_store(settings)) as store, open_log(settings) as log, _checked(settings):
        return identity.unmerge(
            log,
            store,
            customer,
            reason=reason,
            at=at,
            max_customers=settings.identity_max_customers,
        )
