"""`invoke vagrant …`: the docker provider's engine and image for `vagrant up`, and the CI job."""

from __future__ import annotations

from invoke import Collection, Context, Exit, task
from rich.table import Table

from edgesim.taskutil import console, need_root, out, user_errors
from edgesim.vagrant import box as box_build
from edgesim.vagrant import engine, image, job, libvirtd, vmjob


def _print_steps(title: str, report: job.Report) -> None:
    """A job's steps and their seconds, with the total."""
    table = Table(title=title)
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, seconds in report.seconds.items():
        table.add_row(name, f"{seconds:.0f}")
    table.add_row("[bold]total", f"[bold]{sum(report.seconds.values()):.0f}")
    out.print(table)


def _fail_on_leftovers(report: job.Report) -> None:
    """Exit non-zero, naming them, when the job left anything behind."""
    if report.leftovers:
        console.print(f"[red]error:[/] the job left behind: {', '.join(report.leftovers)}")
        raise Exit(code=1)


@task(help={"keep": "leave the guest, the scratch copy and the engine running (to look inside)"})
@user_errors
def check(c: Context, keep: bool = False) -> None:
    """The CI job: a scratch copy of the repo, `vagrant up --provider=docker`, smoke e2e, destroy, no leak."""
    need_root("vagrant check")
    report = job.run(console, keep=keep)
    _print_steps("vagrant docker-provider job", report)
    built = "built" if report.image_built else "cached"
    out.print(
        f"image {report.image} ({built}, {report.image_bytes / 1e6:.0f} MB); smoke: {report.smoke_summary}"
    )
    _fail_on_leftovers(report)


@task
@user_errors
def prepare(c: Context) -> None:
    """Install Vagrant and Docker, start edgesim's engine, build the guest image; print what to export."""
    need_root("vagrant prepare")
    job.install_tools(console)
    started = engine.start()
    console.print(f"engine at {engine.DOCKER_HOST} ({'started' if started else 'already running'})")
    tag, _ = image.ensure(console, image.recipe(), job.LOG)
    out.print(f"export DOCKER_HOST={engine.DOCKER_HOST} EDGESIM_VAGRANT_IMAGE={tag}")
    out.print("vagrant up --provider=docker    # then, when done: vagrant destroy -f && edgesim vagrant stop")


@task
@user_errors
def stop(c: Context) -> None:
    """Stop edgesim's Docker engine (refuses while it still holds containers); the image cache stays."""
    need_root("vagrant stop")
    left = engine.leftovers()
    if left:
        console.print(f"[red]error:[/] the engine still holds {', '.join(left)} (hint: vagrant destroy -f)")
        raise Exit(code=1)
    engine.stop()
    console.print("engine stopped")


@task(name="box")
@user_errors
def box(c: Context) -> None:
    """Build the Debian 12 libvirt box from Debian's packages and `vagrant box add` it (cached by recipe)."""
    need_root("vagrant box")
    vmjob.install_tools(console)
    env = {"VAGRANT_CHECKPOINT_DISABLE": "1"}
    built = box_build.ensure(console, box_build.recipe(), vmjob.LOG, env)
    state = f"built in {built.build_seconds:.0f} s" if built.build_seconds else "cached"
    out.print(f"box {built.name}: {built.path} ({built.bytes / 1e6:.0f} MB, {state})")
    out.print(
        f"export EDGESIM_VAGRANT_BOX={built.name} EDGESIM_LIBVIRT_DRIVER=qemu"
        "   # qemu: TCG, for hosts without VT-x/AMD-V"
    )
    out.print("vagrant up --provider=libvirt")


@task(help={"keep": "leave the guest, the scratch copy and libvirtd running (to look inside)"})
@user_errors
def vm(c: Context, keep: bool = False) -> None:
    """The VM job: the local box under TCG, `bootstrap up`, smoke e2e, kernel GRE, destroy, nothing left."""
    need_root("vagrant vm")
    report = vmjob.run(console, keep=keep)
    _print_steps("vagrant libvirt (TCG) job", report)
    built = "built" if report.box_built else "cached"
    out.print(
        f"box {report.box} ({built}, {report.box_bytes / 1e6:.0f} MB); guest kernel {report.guest_kernel}"
    )
    out.print(f"guest boot: {report.guest_boot}")
    out.print(f"kernel headers: {report.headers}; {report.headers_build}")
    out.print(f"smoke: {report.smoke_summary}; kernel GRE: {report.gre_summary}")
    _fail_on_leftovers(report)


@task(name="libvirt-stop")
@user_errors
def libvirt_stop(c: Context) -> None:
    """Stop the libvirtd and virtlogd that `vagrant vm --keep` started (refuses while a guest of it runs)."""
    need_root("vagrant libvirt-stop")
    left = libvirtd.leftovers(vmjob.DOMAIN_PREFIX) if libvirtd.running() else []
    if left:
        console.print(f"[red]error:[/] libvirt still holds {', '.join(left)} (hint: vagrant destroy -f)")
        raise Exit(code=1)
    libvirtd.stop()
    console.print("libvirtd stopped")


ns = Collection(check, prepare, stop, box, vm, libvirt_stop)
