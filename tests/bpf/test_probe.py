"""bcc and XDP on this host, as root: the setup probe, and the loader in a scratch namespace."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute, netns

from edgesim import hostsetup as setup
from edgesim.bpf import loader
from edgesim.errors import EdgesimError

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def _root() -> None:
    """Skip without root on a workstation; in CI a missing root must fail, not pass silently."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("tests/bpf need root, and CI must run them")
        pytest.skip("needs root")


def _leftover_probes() -> list[str]:
    return [name for name in netns.listnetns() if name.startswith("esprobe")]


@pytest.fixture
def veth_ns() -> Iterator[str]:
    """A scratch namespace holding a veth pair est0/est1, both up; removed with everything in it."""
    name = f"estest{os.getpid()}"
    netns.create(name)
    try:
        with IPRoute(netns=name, flags=0) as ipr:
            ipr.link("add", ifname="est0", kind="veth", peer="est1")
            for ifname in ("est0", "est1"):
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")
        yield name
    finally:
        netns.remove(name)
    assert name not in netns.listnetns()


def test_prove_bcc_returns_a_mode_and_leaves_nothing_behind() -> None:
    assert setup.prove_bcc() in ("native", "generic")
    assert _leftover_probes() == []


def test_host_is_ready_after_setup() -> None:
    assert setup.missing() == []


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_attach_query_detach(veth_ns: str, mode: str) -> None:
    program = loader.compile_program(Path("xdp_pass.c"))
    try:
        fd = loader.load_xdp(program, "xdp_pass")
        assert loader.xdp_info(veth_ns, "est0") is None
        assert loader.attach_xdp(veth_ns, "est0", fd, mode=mode) == mode
        info = loader.xdp_info(veth_ns, "est0")
        assert info is not None
        assert info["mode"] == mode
        assert info["prog_id"] > 0
        loader.detach_xdp(veth_ns, "est0")
        assert loader.xdp_info(veth_ns, "est0") is None
        loader.detach_xdp(veth_ns, "est0")  # nothing attached: a no-op
    finally:
        program.cleanup()


def test_one_mode_at_a_time_is_an_error(veth_ns: str) -> None:
    program = loader.compile_program(Path("xdp_pass.c"))
    try:
        fd = loader.load_xdp(program, "xdp_pass")
        loader.attach_xdp(veth_ns, "est0", fd, mode="generic")
        with pytest.raises(EdgesimError, match="cannot attach") as refused:
            loader.attach_xdp(veth_ns, "est0", fd, mode="native")
        # The kernel's own reason (its extended ack, read by edgesim.bpf.xdplink), not only an errno.
        assert "native: " in str(refused.value) and "at the same time" in str(refused.value)
    finally:
        program.cleanup()


def test_compile_error_shows_the_compiler_output(tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text("int xdp_broken(struct xdp_md *ctx) { return XDP_PASS }\n")
    with pytest.raises(EdgesimError) as caught:
        loader.compile_program(source)
    text = str(caught.value)
    assert "bcc could not compile this program" in text
    assert "broken.c" in text
    assert "error" in text


def test_params_become_definitions(tmp_path: Path) -> None:
    source = tmp_path / "param.c"
    source.write_text(
        "#include <uapi/linux/bpf.h>\n"
        "#if VERDICT != 2\n#error VERDICT was not passed\n#endif\n"
        "int xdp_param(struct xdp_md *ctx) { return VERDICT; }\n"
    )
    program = loader.compile_program(source, params={"VERDICT": 2})
    try:
        assert loader.load_xdp(program, "xdp_param") > 0
    finally:
        program.cleanup()


def test_missing_namespace_is_an_error_and_is_not_created() -> None:
    with pytest.raises(EdgesimError, match="no such network namespace"):
        loader.xdp_info("esnosuchns", "eth0")
    assert "esnosuchns" not in netns.listnetns()
