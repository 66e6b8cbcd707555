"""Loading and checking a routing file: every mistake with the file, the YAML path and what is allowed."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

from common.configfile import ConfigError, Problem, load_model, read_yaml, yaml_path
from common.facts import JST
from routing.decide import DAY, DEFAULT_FILE, OPTION_REF, Routing
from routing.model import OptionPlan, PartnersFile, RoutingFile

PROVISIONAL_NOTICE = dt.timedelta(days=30)


def _duplicates(file: str, kind: str, ids: list[str]) -> Iterator[Problem]:
    for i, ident in enumerate(ids):
        if ident in ids[:i]:
            yield Problem(file, yaml_path((kind, i, "id")), f"duplicate id '{ident}'")


def _references(spec: RoutingFile, file: str, layouts: dict[str, frozenset[str]] | None) -> Iterator[Problem]:
    option_ids = frozenset().union(*layouts.values()) if layouts is not None else None
    partners = [p.id for p in spec.partners]
    lines = [r.id for r in spec.referrals]
    yield from _duplicates(file, "partners", partners)
    yield from _duplicates(file, "referrals", lines)
    yield from _duplicates(file, "campaigns", [c.id for c in spec.campaigns])
    yield from _duplicates(file, "counsellors", [c.id for c in spec.counsellors])  # the partners file's: checked before
    for i, who in enumerate(spec.counsellors):
        if who.partner not in partners:
            yield Problem(file, yaml_path(("counsellors", i, "partner")),
                          f"unknown partner id '{who.partner}'; allowed: {', '.join(partners)}")
    for i, c in enumerate(spec.campaigns):
        if c.plan not in spec.plans:
            yield Problem(file, yaml_path(("campaigns", i, "plan")),
                          f"unknown plan '{c.plan}'; allowed: {', '.join(spec.plans)}")
        if layouts is None:
            continue
        if c.menu not in layouts:
            yield Problem(file, yaml_path(("campaigns", i, "menu")),
                          f"unknown menu layout '{c.menu}'; allowed: {', '.join(layouts)}")
        elif c.plan in spec.plans:
            keys = layouts[c.menu]
            for option in sorted(set(spec.plans[c.plan]) - keys):
                yield Problem(file, yaml_path(("campaigns", i)), f"plan '{c.plan}' routes option '{option}', which "
                              f"menu layout '{c.menu}' has no key for; allowed: {', '.join(sorted(keys))}")
            if spec.general_option not in keys:
                yield Problem(file, yaml_path(("campaigns", i, "menu")),
                              f"menu layout '{c.menu}' has no key for the general option '{spec.general_option}'")
    for name, plan in spec.plans.items():
        if spec.general_option not in plan:
            yield Problem(file, yaml_path(("plans", name)), f"no plan for the general option '{spec.general_option}'")
        for option, op in plan.items():
            here = ("plans", name, option)
            if option_ids is not None and option not in option_ids:
                yield Problem(file, yaml_path(here), f"not a menu option; allowed: {', '.join(sorted(option_ids))}")
            shift_lists = [(("shifts",), op.shifts)] + [(("exceptions", j, "shifts"), e.shifts)
                                                      for j, e in enumerate(op.exceptions)]
            for where, shifts in shift_lists:
                for k, s in enumerate(shifts):
                    if s.partner not in partners:
                        yield Problem(file, yaml_path((*here, *where, k, "partner")),
                                      f"unknown partner id '{s.partner}'; allowed: {', '.join(partners)}")
            for k, item in enumerate(op.overflow):
                if item.startswith(OPTION_REF):
                    if item.removeprefix(OPTION_REF) not in plan:
                        yield Problem(file, yaml_path((*here, "overflow", k)),
                                      f"unknown option '{item}'; allowed: "
                                      + ", ".join(OPTION_REF + o for o in plan if o != option))
                elif item not in partners:
                    yield Problem(file, yaml_path((*here, "overflow", k)), f"unknown partner id '{item}'; allowed: "
                                  f"{', '.join(partners)}, or option:<id>")
            for k, ref in enumerate(op.referrals):
                if ref not in lines:
                    yield Problem(file, yaml_path((*here, "referrals", k)),
                                  f"unknown referral id '{ref}'; allowed: {', '.join(lines)}")
        yield from _cycles(file, name, plan)
    ordered = sorted(enumerate(spec.campaigns), key=lambda ic: ic[1].opens)
    for (_, a), (ib, b) in itertools.pairwise(ordered):
        if b.opens < a.closes:
            yield Problem(file, yaml_path(("campaigns", ib, "opens")),
                          f"window of '{b.id}' overlaps '{a.id}' (which closes {a.closes.isoformat()})")


def _cycles(file: str, name: str, plan: dict[str, OptionPlan]) -> Iterator[Problem]:
    """option:<id> references that lead back to where they started."""
    edges = {o: [i.removeprefix(OPTION_REF) for i in op.overflow if i.startswith(OPTION_REF)] for o, op in
             plan.items()}
    reported: set[frozenset[str]] = set()

    def walk(node: str, path: list[str]) -> Iterator[list[str]]:
        for nxt in edges.get(node, []):
            if nxt in path:
                yield [*path[path.index(nxt):], nxt]
            elif nxt in edges:
                yield from walk(nxt, [*path, nxt])

    for start in edges:
        for cycle in walk(start, [start]):
            key = frozenset(cycle)
            if key not in reported:
                reported.add(key)
                yield Problem(file, yaml_path(("plans", name, cycle[0], "overflow")),
                              "overflow cycle: " + " -> ".join(cycle))


def segments(routing: Routing, opens: dt.datetime, closes: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """[start, end) pieces of a window within which no shift, hours rule or date changes."""
    marks = sorted(routing.boundaries())
    points = {opens, closes}
    day = opens.astimezone(JST).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < closes:
        for m in marks:
            t = day + dt.timedelta(minutes=m)
            if opens < t < closes:
                points.add(t)
        day += dt.timedelta(days=1)  # JST has no daylight saving: a day is always 24 hours
    ordered = sorted(points)
    yield from itertools.pairwise(ordered)


def gaps(routing: Routing, file: str) -> Iterator[Problem]:
    """Minutes inside a window where an option has neither a partner nor a fallback partner."""
    for i, campaign in enumerate(routing.spec.campaigns):
        if campaign.plan not in routing.plans:
            continue
        for option in routing.plans[campaign.plan]:
            run: list[dt.datetime] = []
            for start, end in segments(routing, campaign.opens, campaign.closes):
                if not routing.chain(start, option, campaign):
                    run = [run[0] if run else start, end]
                elif run:
                    yield _gap(file, i, campaign.plan, option, run)
                    run = []
            if run:
                yield _gap(file, i, campaign.plan, option, run)


def _gap(file: str, i: int, plan: str, option: str, run: list[dt.datetime]) -> Problem:
    a, b = (t.astimezone(JST) for t in run)
    return Problem(file, yaml_path(("campaigns", i)),
                   f"from {a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M} JST option '{option}' (plan '{plan}') has no "
                   "partner and no fallback partner: callers would only hear referral lines")


def warnings(routing: Routing, file: str, now: dt.datetime) -> Iterator[Problem]:
    """Provisional windows opening within 30 days of `now`, or already over: confirm, replace or remove them."""
    for i, c in enumerate(routing.spec.campaigns):
        if c.status == "provisional" and c.closes <= now:
            yield Problem(file, yaml_path(("campaigns", i)),
                          f"'{c.id}' is provisional and already over ({c.closes.isoformat()}): replace it with the "
                          "announced window or remove it", severity="warning")
        if c.status == "provisional" and now <= c.opens < now + PROVISIONAL_NOTICE:
            days = (c.opens - now) // dt.timedelta(days=1)
            yield Problem(file, yaml_path(("campaigns", i)),
                          f"'{c.id}' is provisional and opens in {days} days ({c.opens.isoformat()}): "
                          "confirm it against the announcement", severity="warning")


def _apply_contacts(data: object, path: Path, partners_file: Path) -> object:
    """Merge production contacts from the partners file into the routing data, by partner id."""
    contacts = load_model(partners_file, PartnersFile)
    if not isinstance(data, dict) or not isinstance(data.get("partners"), list):
        return data  # the routing file's own validation reports this
    known = {p.get("id"): p for p in data["partners"] if isinstance(p, dict)}
    allowed = ", ".join(str(k) for k in known)
    problems = [Problem(str(partners_file), yaml_path(("partners", pid)), f"no partner '{pid}' in {path}; "
                        f"allowed: {allowed}") for pid in contacts.partners if pid not in known]
    problems += [Problem(str(partners_file), yaml_path(("counsellors", i, "partner")), f"no partner '{c.partner}' "
                         f"in {path}; allowed: {allowed}") for i, c in enumerate(contacts.counsellors)
                 if c.partner not in known]
    taken = [str(c.get("id")) for c in data.get("counsellors") or [] if isinstance(c, dict)]
    ids = [c.id for c in contacts.counsellors]
    problems += [Problem(str(partners_file), yaml_path(("counsellors", i, "id")), f"counsellor id '{cid}' is already "
                         f"used{' in ' + str(path) if cid in taken else ''}; every counsellor has their own id")
                 for i, cid in enumerate(ids) if cid in taken or cid in ids[:i]]
    if problems:
        raise ConfigError(problems)
    merged = []
    for entry in data["partners"]:
        extra = contacts.partners.get(str(entry.get("id"))) if isinstance(entry, dict) else None
        merged.append({**entry, **extra.model_dump(exclude_none=True)} if extra else entry)
    counsellors = [c.model_dump() for c in contacts.counsellors]
    return {**data, "partners": merged, "counsellors": [*data.get("counsellors", []), *counsellors]}


def load_routing(path: Path = DEFAULT_FILE, layouts: dict[str, frozenset[str]] | None = None,
                 partners_file: Path | None = None) -> Routing:
    """Read and validate a routing file (with production contacts merged from `partners_file`, when given);
    with the menu's layouts (name -> option ids), each campaign's layout must exist and cover its plan."""
    data = read_yaml(path)
    if partners_file is not None:
        data = _apply_contacts(data, path, partners_file)
    spec = load_model(path, RoutingFile, data)
    problems = list(_references(spec, str(path), layouts))
    if problems:
        raise ConfigError(problems)
    routing = Routing(spec, str(path))
    problems = list(gaps(routing, str(path)))
    if problems:
        raise ConfigError(problems)
    return routing


__all__ = ["DAY", "gaps", "load_routing", "segments", "warnings"]
