"""The identity graph: which identifiers and which customers make up one person, at any time.

A pure fold of the identity facts (``identity.linked`` / ``identity.unlinked``,
``customer.merged`` / ``customer.unmerged``) in event-time order (ties by event id), so the
same facts give the same graph however they arrived, and "as of T" is the fold of the
facts that happened by T. Nothing is ever rewritten: the per-identifier views stay as
they are, and an answer about a person composes its members' partial results at read
time (a merge or an unmerge costs one event and one row, no re-fold).

The rules (docs/identity.md):

- **One person** is a connected set of customers and identifiers: a standing merge joins
  a customer to its survivor; a standing link joins an identifier to a customer.
- **Suspicious identifiers**: an identifier linked to more than ``max_customers``
  customers at once (a shared call-centre number, a placeholder address) joins nobody: it
  is reported (:meth:`IdentityGraph.suspicious`), never merged blindly.
- **The person's id** is the survivor of its merges; when links join several customers
  that no merge ordered, the oldest of them (the first to appear in the graph; ties: the
  smaller id). ``ledger merge`` picks the survivor by the same rule (the oldest customer).
- **Refused facts**: a merge into itself, of a customer already merged (unmerge first), or
  one that would close a cycle (A into B while B is merged, directly or through others,
  into A), an unmerge of a merge that does not stand, an unlink of a link that does not
  stand. The ledger refuses them at append time when it checks; one that reached the log
  another way changes nothing here and is listed with its reason (:attr:`refused`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.identifiers import kind_of
from projections.fact import Fact

LINKED = "identity.linked"
UNLINKED = "identity.unlinked"
MERGED = "customer.merged"
UNMERGED = "customer.unmerged"

MAX_CUSTOMERS = 2
"""Default: an identifier linked to more than this many customers is suspicious. Two lets
one identifier join the two systems' customer records of one person (the shop's and the
CRM's); a third customer on one number is more likely a shared or placeholder one."""


@dataclass(frozen=True, slots=True)
class IdentityFact:
    """One identity fact, as the graph reads it (and as the identity view stores it)."""

    id: str
    type: str
    customer: str
    other: str
    """The identifier (links) or the survivor (merges)."""
    micros: int
    note: str | None = None
    """Evidence (a link) or reason (the others)."""

    def row(self) -> tuple[str, str, str, str, int, str | None]:
        return (self.id, self.type, self.customer, self.other, self.micros, self.note)


IDENTITY_FIELDS = {LINKED: "identifier", UNLINKED: "identifier", MERGED: "survivor"}


def identity_fact(fact: Fact) -> IdentityFact | None:
    """The identity fact of a fact, or ``None`` if it is not one."""
    kind, data = fact.type, fact.data
    if kind in (LINKED, UNLINKED):
        note = data.get("evidence") if kind == LINKED else data.get("reason")
        return IdentityFact(fact.id, kind, fact.subject, data["identifier"], fact.micros, note)
    if kind in (MERGED, UNMERGED):
        return IdentityFact(
            fact.id, kind, fact.subject, data["survivor"], fact.micros, data.get("reason")
        )
    return None


@dataclass(frozen=True, slots=True)
class Link:
    customer: str
    identifier: str
    since: int
    evidence: str | None
    event_id: str


@dataclass(frozen=True, slots=True)
class Merge:
    customer: str
    survivor: str
    since: int
    reason: str | None
    event_id: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """An identity fact the graph did not apply, and why."""

    event_id: str
    type: str
    customer: str
    other: str
    micros: int
    reason: str


@dataclass(frozen=True)
class Person:
    """One person in the graph: their id, customers, identifiers and the facts joining them."""

    id: str
    customers: tuple[str, ...]
    identifiers: tuple[str, ...]
    links: tuple[Link, ...]
    merges: tuple[Merge, ...]
    suspicious: tuple[str, ...]
    """Identifiers linked to the person's customers that join nobody (too many customers)."""

    @property
    def members(self) -> tuple[str, ...]:
        """Every key whose touchpoints are the person's: customer ids and identifiers."""
        return tuple(sorted({*self.customers, *self.identifiers}))


@dataclass
class IdentityGraph:
    """The graph as folded so far (updated in place by :func:`apply`)."""

    max_customers: int = MAX_CUSTOMERS
    links: dict[str, dict[str, Link]] = field(default_factory=dict)
    """Identifier -> customer -> the standing link."""
    merges: dict[str, Merge] = field(default_factory=dict)
    """Customer -> its standing merge into a survivor."""
    first_seen: dict[str, int] = field(default_factory=dict)
    """Customer -> the event time it first appeared in the graph."""
    refused: list[Refusal] = field(default_factory=list)

    # -- checks -------------------------------------------------------------------------

    def refusal(self, fact: IdentityFact) -> str | None:
        """Why the graph would not apply ``fact`` now, or ``None`` if it would."""
        customer, other = fact.customer, fact.other
        if fact.type == MERGED:
            if customer == other:
                return f"customer {customer!r} cannot be merged into itself"
            standing = self.merges.get(customer)
            if standing is not None:
                return (
                    f"customer {customer!r} is already merged into {standing.survivor!r} "
                    "(unmerge it first)"
                )
            chain = self.merge_chain(other)
            if customer in chain:
                path = " -> ".join(chain[: chain.index(customer) + 1])
                return (
                    f"merge cycle: merging {customer!r} into {other!r} would close the chain {path}"
                )
        elif fact.type == UNMERGED:
            standing = self.merges.get(customer)
            if standing is None or standing.survivor != other:
                return f"customer {customer!r} is not merged into {other!r}"
        elif fact.type == UNLINKED and customer not in self.links.get(other, {}):
            return f"{other!r} is not linked to customer {customer!r}"
        return None

    def merge_chain(self, customer: str) -> list[str]:
        """``customer``, the survivor it is merged into, that one's survivor, ..."""
        chain = [customer]
        while (merge := self.merges.get(chain[-1])) is not None and merge.survivor not in chain:
            chain.append(merge.survivor)
        return chain

    # -- questions ----------------------------------------------------------------------

    def suspicious(self) -> dict[str, tuple[str, ...]]:
        """Identifiers linked to more than ``max_customers`` customers: identifier ->
        the customers (sorted)."""
        return {
            identifier: tuple(sorted(by_customer))
            for identifier, by_customer in sorted(self.links.items())
            if len(by_customer) > self.max_customers
        }

    def _neighbours(self) -> dict[str, set[str]]:
        edges: dict[str, set[str]] = {}
        for merge in self.merges.values():
            edges.setdefault(merge.customer, set()).add(merge.survivor)
            edges.setdefault(merge.survivor, set()).add(merge.customer)
        for identifier, by_customer in self.links.items():
            if len(by_customer) > self.max_customers:
                continue
            for customer in by_customer:
                edges.setdefault(identifier, set()).add(customer)
                edges.setdefault(customer, set()).add(identifier)
        return edges

    def merged_with(self, customer: str) -> set[str]:
        """``customer`` and every customer joined to it by standing merges alone (not by
        shared identifiers): those an operator stated are one person."""
        edges: dict[str, set[str]] = {}
        for merge in self.merges.values():
            edges.setdefault(merge.customer, set()).add(merge.survivor)
            edges.setdefault(merge.survivor, set()).add(merge.customer)
        return _component(edges, customer)

    def links_of(self, customer: str) -> set[str]:
        """The identifiers ``customer`` holds a standing link to."""
        return {i for i, by_customer in self.links.items() if customer in by_customer}

    def people(self) -> dict[str, str]:
        """Every key the graph joins to others -> its person's id (keys alone are their
        own person and are left out)."""
        edges = self._neighbours()
        person_of: dict[str, str] = {}
        for start in sorted(edges):
            if start in person_of:
                continue
            component = _component(edges, start)
            person = self._person_id(component)
            for key in component:
                person_of[key] = person
        return person_of

    def person(self, key: str) -> Person:
        """The person ``key`` (a customer id or an identifier's lookup key) belongs to."""
        edges = self._neighbours()
        component = _component(edges, key)
        customers = sorted(k for k in component if kind_of(k) == "customer")
        identifiers = sorted(k for k in component if kind_of(k) != "customer")
        links = tuple(
            link
            for identifier in sorted(self.links)
            for customer, link in sorted(self.links[identifier].items())
            if customer in component
        )
        merges = tuple(m for c, m in sorted(self.merges.items()) if c in component)
        suspicious = tuple(
            sorted(
                identifier
                for identifier, by_customer in self.links.items()
                if len(by_customer) > self.max_customers and component & by_customer.keys()
            )
        )
        return Person(
            self._person_id(component),
            tuple(customers),
            tuple(identifiers),
            links,
            merges,
            suspicious,
        )

    def _person_id(self, component: set[str]) -> str:
        roots = [k for k in component if kind_of(k) == "customer" and k not in self.merges]
        if not roots:
            return min(component)
        never = 1 << 62
        return min(roots, key=lambda c: (self.first_seen.get(c, never), c))


def _component(edges: Mapping[str, set[str]], start: str) -> set[str]:
    found, todo = {start}, [start]
    while todo:
        for neighbour in edges.get(todo.pop(), ()):
            if neighbour not in found:
                found.add(neighbour)
                todo.append(neighbour)
    return found


def apply(graph: IdentityGraph, fact: IdentityFact) -> IdentityGraph:
    """Fold one identity fact into the graph (in place). A fact the graph refuses changes
    nothing but :attr:`IdentityGraph.refused`."""
    reason = graph.refusal(fact)
    if reason is not None:
        graph.refused.append(
            Refusal(fact.id, fact.type, fact.customer, fact.other, fact.micros, reason)
        )
        return graph
    customer, other = fact.customer, fact.other
    seen = graph.first_seen
    if customer not in seen:
        seen[customer] = fact.micros
    if fact.type == LINKED:
        by_customer = graph.links.setdefault(other, {})
        if customer not in by_customer:  # linked again: the first link's evidence stays
            by_customer[customer] = Link(customer, other, fact.micros, fact.note, fact.id)
    elif fact.type == UNLINKED:
        by_customer = graph.links[other]
        del by_customer[customer]
        if not by_customer:
            del graph.links[other]
    elif fact.type == MERGED:
        if other not in seen:
            seen[other] = fact.micros
        graph.merges[customer] = Merge(customer, other, fact.micros, fact.note, fact.id)
    elif fact.type == UNMERGED:
        del graph.merges[customer]
    return graph


def ordered(facts: Iterable[IdentityFact]) -> list[IdentityFact]:
    """Facts in the order the graph folds them: event time, then event id."""
    return sorted(facts, key=lambda f: (f.micros, f.id))


def replay(
    facts: Iterable[IdentityFact],
    *,
    until: int | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> IdentityGraph:
    """The graph of ``facts`` (any order, each id once) that happened by ``until``
    (microseconds, inclusive; ``None``: all)."""
    graph = IdentityGraph(max_customers)
    for fact in ordered(facts):
        if until is not None and fact.micros > until:
            break
        apply(graph, fact)
    return graph


def person_to_dict(person: Person, graph: IdentityGraph) -> dict[str, Any]:
    """A JSON-ready form of a person and the facts that make them (times in microseconds
    are turned into text by the caller's renderer)."""
    refused = [r for r in graph.refused if {r.customer, r.other} & set(person.members)]
    return {
        "person": person.id,
        "customers": list(person.customers),
        "identifiers": list(person.identifiers),
        "links": [
            {
                "customer": link.customer,
                "identifier": link.identifier,
                "since": link.since,
                "evidence": link.evidence,
                "event_id": link.event_id,
            }
            for link in person.links
        ],
        "merges": [
            {
                "customer": merge.customer,
                "survivor": merge.survivor,
                "since": merge.since,
                "reason": merge.reason,
                "event_id": merge.event_id,
            }
            for merge in person.merges
        ],
        "suspicious": list(person.suspicious),
        "refused": [
            {"event_id": r.event_id, "type": r.type, "at": r.micros, "reason": r.reason}
            for r in refused
        ],
    }
