"""The only code that reads topology YAML: parse, validate, and report every problem at once."""

from __future__ import annotations

import json
import types
import typing
from collections import Counter
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from edgesim import salvage
from edgesim.errors import EdgesimError, Problem
from edgesim.mitigation.rules import (
    RULE_KINDS,
    ConnLimit,
    ConnRate,
    PayloadMatch,
    RuleSet,
    SynCookie,
    VipCap,
)
from edgesim.model import (
    ANYCAST_POOLS,
    DESIGN_RANGES,
    LAB_NAME_MAX,
    MGMT_NODE,
    NODE_NAME_MAX,
    RESERVED_ROLES,
    Topology,
)
from edgesim.tenants import validate
from edgesim.tenants.spec import MAX_TENANT_ID, TENANT_NAME_MAX

RFC1918 = [IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


# A topology is a few kilobytes (200 edges: ≈ 6 KB); anything near this is a mistake, not a lab.
MAX_TOPOLOGY_BYTES = 1 << 20


def load_topology(path: str | Path, lab: str | None = None) -> Topology:
    """Read and validate a topology file; `lab` overrides its lab name. Raises EdgesimError."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_TOPOLOGY_BYTES + 1)
    except OSError as err:
        raise EdgesimError(
            Problem(source, f"cannot read the topology file: {err.strerror}", "check the path"),
        ) from None
    if len(data) > MAX_TOPOLOGY_BYTES:
        raise EdgesimError(_too_large(), source=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise EdgesimError(
            Problem(
                f"byte {err.start}",
                "the file is not UTF-8 text (a binary file?)",
                "a topology is a YAML text file, e.g. topology/default.yml",
            ),
            source=source,
        ) from None
    return parse_topology(text, source=source, lab=lab)


def _too_large() -> Problem:
    return Problem(
        "(file)",
        f"the file is larger than {MAX_TOPOLOGY_BYTES // 1024} KiB",
        "a topology is a few KB of YAML; is this the right file?",
    )


def parse_topology(text: str, source: str = "<topology>", lab: str | None = None) -> Topology:
    """Validate topology YAML text; every problem is reported at once in one EdgesimError."""
    if len(text) > MAX_TOPOLOGY_BYTES:
        raise EdgesimError(_too_large(), source=source)
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        raise EdgesimError([_yaml_problem(err)], source=source) from None
    except RecursionError:
        raise EdgesimError(
            Problem("(file)", "the YAML is nested too deeply", "a topology nests a few levels at most"),
            source=source,
        ) from None
    if not isinstance(raw, dict):
        raise EdgesimError(
            [Problem("(top level)", "the file must be a mapping", "start with `lab: <name>`")], source=source
        )
    if lab is not None:
        raw["lab"] = lab
    try:
        topology = Topology.model_validate(raw)
    except ValidationError as err:
        # Report the semantic problems of what did validate too, so one run shows every problem.
        problems = [_pydantic_problem(e) for e in err.errors()]
        more = salvage.semantic_problems(raw, err, check_topology, _location)
        problems += [problem for problem in more if problem not in problems]
        raise EdgesimError(problems, source=source) from None
    except RecursionError:
        raise EdgesimError(
            Problem("(file)", "the YAML is nested too deeply", "a topology nests a few levels at most"),
            source=source,
        ) from None
    problems = check_topology(topology)
    if problems:
        raise EdgesimError(problems, source=source)
    return topology


def _yaml_problem(err: yaml.YAMLError) -> Problem:
    if isinstance(err, yaml.reader.ReaderError):
        char = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "?")
        return Problem(
            f"character {err.position + 1}",
            f"invalid YAML: unacceptable character #x{char:04x}",
            "a topology is YAML text; remove control characters",
        )
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
    what = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    message = f"invalid YAML: {context + ', ' if context else ''}{what}"
    hint = "each key may appear once in a mapping; rename or merge the entries"
    if "duplicate key" not in what:
        hint = "fix the YAML syntax (indentation, colons, quotes)"
    return Problem(where, message, hint)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part in RULE_KINDS:
            continue  # a discriminated union's tag, not a key the user wrote
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (name)"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model class that a location points into, for listing its known keys."""
    current: Any = Topology
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, list, tuple):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated so the walk reaches the model or container underneath."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return annotation


_NAME_HINTS = {
    "lab": f"lowercase letters and digits, starting with a letter, at most {LAB_NAME_MAX} characters",
    "nodes": f"lowercase letters, digits and '_', starting with a letter, at most {NODE_NAME_MAX} characters",
    "site": f"lowercase letters, digits and '_', starting with a letter, at most {NODE_NAME_MAX} characters",
    "tenants": f"lowercase letters and digits, starting with a letter, at most {TENANT_NAME_MAX} characters",
    "tenant": f"lowercase letters and digits, starting with a letter, at most {TENANT_NAME_MAX} characters",
    "endpoints": "a node name defined under `nodes`",
}


def _pydantic_problem(error: Any) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    given = error.get("input")
    where = _location(loc)
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = ", ".join(model.model_fields) if model else ""
        return Problem(
            where, f"unknown key '{loc[-1]}'", f"known keys here: {known}" if known else "remove it"
        )
    if kind == "missing":
        return Problem(where, "required key is missing", f"add `{loc[-1]}:`")
    if (
        kind == "literal_error"
        and loc[-1:] == ("role",)
        and isinstance(given, str)
        and given in RESERVED_ROLES
    ):
        return _reserved_role(where, given)
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return Problem(where, f"{json.dumps(given)} is not allowed", f"use one of {expected}")
    if kind in ("string_pattern_mismatch", "string_too_long"):
        field = next((str(p) for p in reversed(loc) if isinstance(p, str) and p in _NAME_HINTS), "")
        return Problem(
            where, f"{json.dumps(given)} is not a valid name", _NAME_HINTS.get(field, error["msg"])
        )
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        field = str(ctx.get("discriminator", "kind")).strip("'")
        return Problem(
            where,
            f"unknown {field} {ctx.get('tag')!r}",
            f"use one of {ctx.get('expected_tags')}",
        )
    if kind == "value_error":
        return Problem(where, str(error["ctx"]["error"]), "see the README for this section's fields")
    if kind.startswith("ip_v4"):
        return Problem(
            where, f"{json.dumps(given)} is not {kind_text(kind)}", "e.g. 198.51.100.10 or 198.18.0.0/16"
        )
    field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    hint = _FIELD_HINTS.get(field) if kind in _BOUND_KINDS else None
    return Problem(where, error["msg"][0].lower() + error["msg"][1:], hint or _GENERIC_HINTS.get(kind, ""))


def kind_text(kind: str) -> str:
    """Words for pydantic's IP error kinds."""
    return "an IPv4 network (host bits must be zero)" if "network" in kind else "an IPv4 address"


# Bounds of numeric settings other than ports: the hint names the setting and its range.
_BOUND_KINDS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")
_FIELD_HINTS = {
    "idle_s": "TCP_KEEPIDLE is 1-32767 seconds",
    "interval_s": "TCP_KEEPINTVL is 1-32767 seconds",
    "count": "TCP_KEEPCNT is 1-127 probes",
    "user_timeout_ms": "TCP_USER_TIMEOUT is a positive number of milliseconds",
    "min_drain_bytes_per_s": "a positive number of bytes per second",
    "drain_window_s": "a positive number of seconds, at most 3600",
    "rate": "a whole number per second, at least 1 (per source for rate limits)",
    "burst": "a whole number of packets or queries allowed at once, at least 1",
}
_GENERIC_HINTS = {
    "too_short": "add at least one entry",
    "int_parsing": "write a whole number",
    "greater_than_equal": "ports are 1-65535",
    "less_than_equal": "ports are 1-65535",
    "dict_type": "write a mapping (`key: value` lines)",
    "list_type": "write a list (`- item` lines)",
    "model_type": "write a mapping (`key: value` lines)",
}


def check_topology(topology: Topology) -> list[Problem]:
    """Cross-field checks that pydantic's per-field validation cannot see."""
    return [
        *_check_pools(topology),
        *_check_roles(topology),
        *_check_links(topology),
        *_check_vips(topology),
        *_check_tenants(topology),
        *_check_customers(topology),
        *_check_mitigation(topology),
        *_check_announce(topology),
        *_check_proxy(topology),
        *_check_dispatch(topology),
    ]


def _check_pools(topology: Topology) -> list[Problem]:
    problems = []
    for name, allowed in DESIGN_RANGES.items():
        pool: IPv4Network = getattr(topology.pools, name)
        if pool.subnet_of(allowed):
            continue
        private = any(pool.overlaps(net) for net in RFC1918)
        reason = (
            "is a private (RFC 1918) range, which edgesim never uses" if private else f"is outside {allowed}"
        )
        problems.append(Problem(f"pools.{name}", f"{pool} {reason}", f"use {allowed} or a subnet of it"))
    return problems


def _check_roles(topology: Topology) -> list[Problem]:
    problems = []
    routers = topology.nodes_with_role("router")
    if len(routers) != 1:
        found = ", ".join(routers) if routers else "none"
        problems.append(
            Problem(
                "nodes",
                f"exactly one node must have role router (found {found})",
                "add `router: {role: router}`",
            )
        )
    if not topology.nodes_with_role("edge"):
        problems.append(Problem("nodes", "no node has role edge", "add e.g. `edge1: {role: edge}`"))
    return problems


def _reserved_role(where: str, role: str) -> Problem:
    """A word that names something else than a node role (tenants are declared under `tenants:`)."""
    return Problem(
        where,
        f"'{role}' is not a node role",
        "declare tenants under `tenants:`, each gets a namespace on every edge; "
        "their sites are `customer` nodes",
    )


def _check_links(topology: Topology) -> list[Problem]:
    problems = []
    routers = topology.nodes_with_role("router")
    router = routers[0] if len(routers) == 1 else None
    pairs: Counter[frozenset[str]] = Counter()
    for index, link in enumerate(topology.effective_links()):
        where = f"links[{index}].endpoints"
        a, b = link.endpoints
        unknown = [n for n in (a, b) if n not in topology.nodes]
        if unknown:
            problems.append(Problem(where, f"unknown node '{unknown[0]}'", "define it under `nodes` first"))
            continue
        if a == b:
            problems.append(Problem(where, f"'{a}' is linked to itself", "join two different nodes"))
            continue
        pair = frozenset((a, b))
        pairs[pair] += 1
        if pairs[pair] == 2:
            problems.append(Problem(where, f"{a} and {b} are already linked", "remove the duplicate link"))
        # A customer server sits behind its site router, and only there.
        server = a if topology.is_customer_server(a) else b if topology.is_customer_server(b) else None
        if server is not None:
            site = topology.uplink_of(server)
            if site not in pair:
                problems.append(
                    Problem(
                        where,
                        f"customer server {server} may only be linked to its site router",
                        f"use `- endpoints: [{site}, {server}]`",
                    )
                )
        elif router is not None and router not in pair:
            problems.append(
                Problem(where, f"link {a}-{b} does not touch the router", f"link each node to '{router}'")
            )
    if router is None:
        return problems
    for name in topology.nodes:
        uplink = topology.uplink_of(name) or router
        if name == router or frozenset((uplink, name)) in pairs:
            continue
        to = "its site router" if uplink != router else "the router"
        problems.append(
            Problem(f"nodes.{name}", f"has no link to {to}", f"add `- endpoints: [{uplink}, {name}]`")
        )
    return problems


def _check_vips(topology: Topology) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for index, vip in enumerate(topology.vips):
        where = f"vips[{index}]"
        if vip.address not in topology.pools.vips:
            problems.append(
                Problem(
                    f"{where}.address",
                    f"{vip.address} is outside pools.vips ({topology.pools.vips})",
                    "pick an address inside pools.vips",
                )
            )
        if str(vip.address) in seen:
            problems.append(
                Problem(f"{where}.address", f"{vip.address} is listed twice", "list each VIP once")
            )
        seen.add(str(vip.address))
        duplicates = sorted(p for p, n in Counter(vip.ports).items() if n > 1)
        if duplicates:
            problems.append(
                Problem(f"{where}.ports", f"port {duplicates[0]} is listed twice", "list each port once")
            )
    return problems


def _check_tenants(topology: Topology) -> list[Problem]:
    problems = []
    tenants = topology.tenants or {}
    if tenants and MGMT_NODE in topology.nodes:
        problems.append(
            Problem(
                f"nodes.{MGMT_NODE}",
                f"the name '{MGMT_NODE}' is reserved for the tenants' management namespace (config store)",
                "rename the node",
            )
        )
    if len(tenants) > MAX_TENANT_ID:
        problems.append(
            Problem("tenants", f"{len(tenants)} tenants, at most {MAX_TENANT_ID}", "split the lab in two")
        )
    pool = topology.pools.tenants
    taken: list[tuple[IPv4Network, str]] = []
    for name, tenant in tenants.items():
        wording = validate.topology_wording(name)
        problems += validate.check_prefixes(wording, name, tenant.prefixes, pool, taken)
        taken += [(prefix, name) for prefix in tenant.prefixes]
        problems += _check_site(topology, name, tenant.site)
        problems += validate.check_rules(wording, tenant.firewall, tenant.prefixes)
    return problems


def _check_site(topology: Topology, name: str, site_name: str) -> list[Problem]:
    site = topology.nodes.get(site_name)
    if site is None:
        return [
            Problem(
                f"tenants.{name}.site",
                f"unknown node '{site_name}'",
                f"define it under `nodes` as `{{role: customer, tenant: {name}}}`",
            )
        ]
    if site.role != "customer" or site.tenant != name:
        return [
            Problem(
                f"tenants.{name}.site",
                f"'{site_name}' is not a customer node of tenant {name}",
                f"give it `role: customer, tenant: {name}`",
            )
        ]
    return []


# Keys only customer nodes may have.
_CUSTOMER_KEYS = ("tenant", "address", "services", "gre")


def _check_customers(topology: Topology) -> list[Problem]:
    problems = []
    tenants = topology.tenants or {}
    addresses: dict[str, str] = {}
    for name, node in topology.nodes.items():
        where = f"nodes.{name}"
        if node.role != "customer":
            problems += [
                Problem(f"{where}.{key}", f"only customer nodes have `{key}`", "remove it")
                for key in _CUSTOMER_KEYS
                if getattr(node, key)
            ]
            continue
        if node.tenant is None:
            problems.append(Problem(where, "a customer node needs `tenant:`", "e.g. `tenant: acme`"))
            continue
        tenant = tenants.get(node.tenant)
        if tenant is None:
            problems.append(
                Problem(f"{where}.tenant", f"unknown tenant '{node.tenant}'", "declare it under `tenants:`")
            )
            continue
        if tenant.site == name:
            problems += [
                Problem(
                    f"{where}.{key}",
                    f"{name} is the site router of {node.tenant}, which has no `{key}`",
                    "servers do: add another customer node for the server",
                )
                for key in ("address", "services")
                if getattr(node, key)
            ]
            continue
        if node.gre is not None:
            problems.append(
                Problem(f"{where}.gre", "only a site router has `gre`", f"set it on {tenant.site}")
            )
        duplicates = sorted(s for s, n in Counter(node.services).items() if n > 1)
        if duplicates:
            problems.append(
                Problem(f"{where}.services", f"'{duplicates[0]}' is listed twice", "list each service once")
            )
        if node.address is None:
            problems.append(
                Problem(
                    where, "a customer server needs `address:`", f"an address inside {node.tenant}'s prefixes"
                )
            )
        elif not any(node.address in prefix for prefix in tenant.prefixes):
            inside = ", ".join(str(p) for p in tenant.prefixes)
            problems.append(
                Problem(
                    f"{where}.address",
                    f"{node.address} is outside tenant {node.tenant}'s prefixes ({inside})",
                    "pick an address inside them",
                )
            )
        elif str(node.address) in addresses:
            problems.append(
                Problem(
                    f"{where}.address",
                    f"{node.address} is also the address of {addresses[str(node.address)]}",
                    "give each server its own address",
                )
            )
        else:
            addresses[str(node.address)] = name
    return problems


def _check_mitigation(topology: Topology) -> list[Problem]:
    problems = []
    seen = RuleSet()
    vips = {vip.address: vip.ports for vip in topology.vips}
    for index, rule in enumerate(topology.mitigation.rules):
        where = f"mitigation.rules[{index}]"
        conflict = seen.conflicts(rule)
        if conflict:
            problems.append(Problem(where, conflict, "give each rule its own name and target"))
            continue
        seen = seen.with_rule(rule)
        if isinstance(rule, SynCookie | VipCap) and rule.vip not in vips:
            problems.append(
                Problem(f"{where}.vip", f"{rule.vip} is not one of the lab's VIPs", "list it under `vips`")
            )
        elif isinstance(rule, SynCookie) and rule.port not in vips[rule.vip]:
            problems.append(
                Problem(
                    f"{where}.port",
                    f"{rule.vip} does not serve port {rule.port}",
                    "add it to the VIP's ports",
                )
            )
    return problems + _check_l7_mitigation(topology, seen)


def _check_l7_mitigation(topology: Topology, seen: RuleSet) -> list[Problem]:
    """Layer-7 rules: their VIP is the lab's, and each blocklist they name is in the section."""
    vips = {vip.address for vip in topology.vips}
    problems = []
    for index, rule in enumerate(topology.mitigation.rules):
        if (
            isinstance(rule, ConnLimit | ConnRate | PayloadMatch)
            and rule.vip is not None
            and rule.vip not in vips
        ):
            problems.append(
                Problem(
                    f"mitigation.rules[{index}].vip",
                    f"{rule.vip} is not one of the lab's VIPs",
                    "list it under `vips`",
                )
            )
    for missing in seen.unresolved():
        problems.append(Problem("mitigation.rules", missing, "add a `blocklist` rule with that set_name"))
    return problems


def _check_announce(topology: Topology) -> list[Problem]:
    problems = []
    owned = [getattr(topology.pools, name) for name in ANYCAST_POOLS]
    owned_text = ", ".join(f"pools.{name} {net}" for name, net in zip(ANYCAST_POOLS, owned, strict=True))
    for name, node in topology.nodes.items():
        if node.announce and node.role != "edge":
            problems.append(
                Problem(
                    f"nodes.{name}.announce",
                    f"only edges announce prefixes, and {name} is a {node.role}",
                    "remove `announce` from this node",
                )
            )
            continue
        seen: set[IPv4Network] = set()
        for index, prefix in enumerate(node.announce):
            where = f"nodes.{name}.announce[{index}]"
            if not any(prefix.subnet_of(pool) for pool in owned):
                problems.append(
                    Problem(
                        where,
                        f"{prefix} is not a prefix this PoP owns, so {name} may not announce it",
                        f"announce only inside {owned_text}",
                    )
                )
            elif prefix == topology.pools.vips:
                problems.append(
                    Problem(where, f"{prefix} (pools.vips) is announced by every edge already", "remove it")
                )
            if prefix in seen:
                problems.append(Problem(where, f"{prefix} is listed twice", "list each prefix once"))
            seen.add(prefix)
    return problems


def _check_proxy(topology: Topology) -> list[Problem]:
    proxy = topology.proxy
    if proxy is None:
        return []
    problems = []
    origin = topology.nodes.get(proxy.origin)
    hosts = ", ".join(topology.nodes_with_role("host")) or "none yet"
    if origin is None:
        problems.append(
            Problem("proxy.origin", f"unknown node '{proxy.origin}'", f"name a host node ({hosts})")
        )
    elif origin.role != "host":
        problems.append(
            Problem(
                "proxy.origin",
                f"'{proxy.origin}' has role {origin.role}, not host",
                f"name a host node ({hosts})",
            )
        )
    for index, vip in enumerate(topology.vips):
        if proxy.port in vip.ports:
            problems.append(
                Problem(
                    "proxy.port",
                    f"{proxy.port} is already served by the edges' HTTP service on vips[{index}]",
                    "pick a port that no VIP lists",
                )
            )
    return problems


def _check_dispatch(topology: Topology) -> list[Problem]:
    """Dispatch prefixes lie inside pools.vips (the edges announce it), hold no VIP, and do not overlap."""
    dispatch = topology.dispatch
    if dispatch is None:
        return []
    problems = []
    prefixes = [("dispatch.spectrum.prefix", dispatch.spectrum.prefix)] if dispatch.spectrum else []
    prefixes += [(f"dispatch.services[{i}].prefix", s.prefix) for i, s in enumerate(dispatch.services)]
    for where, prefix in prefixes:
        if not prefix.subnet_of(topology.pools.vips):
            problems.append(
                Problem(where, f"{prefix} is outside pools.vips", f"the edges announce {topology.pools.vips}")
            )
        for vip in topology.vips:
            if vip.address in prefix:
                problems.append(
                    Problem(where, f"{prefix} holds the VIP {vip.address}", "use a prefix of its own")
                )
    for index, (where, prefix) in enumerate(prefixes):
        for other_where, other in prefixes[:index]:
            if prefix.overlaps(other):
                problems.append(
                    Problem(where, f"{prefix} overlaps {other_where} ({other})", "give each its own")
                )
    spectrum = dispatch.spectrum
    if spectrum is not None:
        origin = topology.nodes.get(spectrum.origin)
        if origin is None or origin.role != "host":
            hosts = ", ".join(topology.nodes_with_role("host")) or "none yet"
            problems.append(
                Problem(
                    "dispatch.spectrum.origin", f"'{spectrum.origin}' is not a host node", f"one of: {hosts}"
                )
            )
    return problems
