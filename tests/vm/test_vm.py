"""The VM job, for real: the local box boots under TCG, provisions, runs the lab and kernel GRE, is gone.

Opt-in (`invoke test --suite vm`, not part of `all` or `.ci/run`): under software emulation it takes most of
an hour on a 2-core host.
"""

from __future__ import annotations

import pytest

from edgesim.taskutil import console
from edgesim.vagrant import libvirtd, vmjob
from tests.conftest import require_root

# The host role's header tasks: the running kernel's own package is found and installed, the generic
# fallback skipped (the box has the exact package in its local repository, as Debian's archive has).
EXACT = "Install the running kernel's own headers (they create the build link themselves)"
GENERIC = "Install the generic kernel headers (linux-headers-amd64)"


@pytest.fixture(scope="module")
def tools() -> None:
    """Vagrant, vagrant-libvirt, libvirt, QEMU and the box's tools on the host (playbooks/vm.yml)."""
    require_root()
    vmjob.install_tools(console)
    missing = vmjob.missing_tools()
    assert missing == [], f"missing after playbooks/vm.yml: {missing}"


def test_the_box_boots_under_tcg_runs_the_lab_smoke_and_kernel_gre_and_leaves_nothing(
    tools: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():  # the job's progress, live: it takes long
        report = vmjob.run(console)
        print(f"\nvm job seconds: {report.seconds}; box {report.box} {report.box_bytes / 1e6:.0f} MB")
        print(f"guest: {report.guest_kernel}; {report.guest_boot}; headers {report.headers}")
    assert report.guest_kernel.startswith("6.1.") and report.guest_kernel.endswith("-amd64")
    assert report.headers.get(EXACT) == "changed", f"the role's header tasks: {report.headers}"
    assert report.headers.get(GENERIC) in (None, "skipping"), f"the role's header tasks: {report.headers}"
    assert f"/usr/src/linux-headers-{report.guest_kernel}" in report.headers_build
    assert "install ok installed" in report.headers_build
    assert report.smoke_summary.startswith("3 passed"), f"smoke e2e in the guest: {report.smoke_summary!r}"
    assert report.gre_summary.startswith("2 passed"), f"kernel GRE in the guest: {report.gre_summary!r}"
    assert report.leftovers == []
    assert libvirtd.daemon_leftovers() == [] and libvirtd.process_leftovers(vmjob.DOMAIN_PREFIX) == []
