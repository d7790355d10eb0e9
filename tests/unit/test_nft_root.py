"""nft accepts every JSON ruleset edgesim builds, and applying one twice changes nothing (root only).

The rulesets are checked by the kernel in a dry run (`nft -c`: the transaction is validated, not committed),
then really applied in a scratch namespace of this test session's prefix, removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest

from edgesim import namespaces, nft
from edgesim.errors import EdgesimError, Problem
from edgesim.experiments.tcp_timeouts.path import PathControl
from edgesim.mitigation import synproxy
from edgesim.tenants import nft as tenant_nft
from edgesim.tenants.spec import TenantSpec
from tests.conftest import E2E_LAB, require_root

NETNS = f"{E2E_LAB}-nft"
ACME = TenantSpec(
    name="acme",
    id=1,
    prefixes=["203.0.113.0/25", "203.0.113.200/32"],
    site="100.64.0.7",
    rules=[
        "ip daddr 203.0.113.100 tcp dport 80 accept",
        "ip saddr 100.64.0.0/10 udp dport { 53, 123 } accept",
        "tcp dport { 22, 8000-8080 } drop",
        "ip protocol icmp accept",
        "udp sport 1024-65535 accept",
    ],
)
GLOBEX = TenantSpec(name="globex", id=2, prefixes=["203.0.113.128/26"], site="100.64.0.8", rules=["accept"])
REFUSED = [IPv4Network("198.18.0.0/15"), IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24")]
RULESETS = {
    "edge": tenant_nft.edge_ruleset([ACME, GLOBEX], REFUSED),
    "edge, no tenants": tenant_nft.edge_ruleset([]),
    "tenant": tenant_nft.tenant_ruleset(ACME, REFUSED),
    "tenant, nothing refused": tenant_nft.tenant_ruleset(ACME),
    "tenant, no rules": tenant_nft.tenant_ruleset(GLOBEX.model_copy(update={"rules": []})),
    "site": tenant_nft.site_ruleset(),
}


@pytest.fixture(scope="module")
def scratch() -> Iterator[str]:
    """An empty namespace for the rulesets."""
    require_root()
    namespaces.create(NETNS)
    try:
        yield NETNS
    finally:
        namespaces.remove(NETNS, f"{E2E_LAB}-")


def refused(error: str) -> Problem:
    raise AssertionError(f"nft refused: {error}")


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_nft_accepts_the_ruleset_in_a_dry_run(scratch: str, name: str) -> None:
    nft.json_cmd(scratch, RULESETS[name].commands, refused, dry_run=True)
    assert tenant_nft.applied_digest(scratch, RULESETS[name].table) is None, "a dry run applies nothing"


def test_nft_accepts_the_synproxy_table_in_a_dry_run(scratch: str) -> None:
    protected = [(IPv4Address("198.51.100.10"), 80), (IPv4Address("198.51.100.11"), 443)]
    nft.json_cmd(scratch, synproxy.ruleset(protected), refused, dry_run=True)


def test_a_refused_ruleset_is_an_error_with_nfts_reason(scratch: str) -> None:
    broken = nft.add("nosuch", [nft.rule("forward", nft.counter("nosuch"))])
    assert "No such file or directory" in str(nft.try_json_cmd(scratch, broken, dry_run=True)), "checked"
    with pytest.raises(EdgesimError) as caught:
        nft.json_cmd(scratch, broken, lambda error: Problem("here", f"refused: {error}"))
    assert str(caught.value).startswith("here: refused: ")


def test_applying_the_same_ruleset_again_is_a_no_op(scratch: str) -> None:
    ruleset = RULESETS["tenant"]
    assert tenant_nft.apply(scratch, ruleset) is True
    assert tenant_nft.applied_digest(scratch, ruleset.table) == ruleset.digest
    assert tenant_nft.apply(scratch, ruleset) is False
    assert tenant_nft.counters(scratch) == dict.fromkeys(tenant_nft.TENANT_COUNTERS, 0)
    changed = tenant_nft.tenant_ruleset(ACME.model_copy(update={"rules": ["accept"]}))
    assert tenant_nft.apply(scratch, changed) is True
    assert tenant_nft.applied_digest(scratch, ruleset.table) == changed.digest
    nft.json_cmd(scratch, nft.delete_table(ruleset.table), refused)
    assert tenant_nft.counters(scratch) == {}


def test_the_experiment_path_adds_and_removes_its_drops(scratch: str) -> None:
    path = PathControl(scratch, "edgesim_pair_test", "r-c1", "r-s1")
    path.drop_synack()
    path.cut()
    path.drop_flow("100.64.0.5", 40000)
    (listed,) = [
        o["table"]
        for o in nft.json_cmd(scratch, nft.list_table("edgesim_pair_test"), refused)
        if "table" in o
    ]
    assert listed["name"] == "edgesim_pair_test"
    rules = [o for o in nft.json_cmd(scratch, nft.list_table("edgesim_pair_test"), refused) if "rule" in o]
    assert len(rules) == 5 and path.rules == [
        "server SYN-ACKs",
        "client → server",
        "server → client",
        "from 100.64.0.5:40000",
        "to 100.64.0.5:40000",
    ]
    path.restore()
    assert isinstance(nft.try_json_cmd(scratch, nft.list_table("edgesim_pair_test")), str), "table gone"
