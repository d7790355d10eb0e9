"""`invoke vagrant …`: the docker provider's engine and image for `vagrant up`, and the CI job."""

from __future__ import annotations

from invoke import Collection, Context, Exit, task
from rich.table import Table

from edgesim.taskutil import console, need_root, out, user_errors
from edgesim.vagrant import engine, image, job


@task(help={"keep": "leave the guest, the scratch copy and the engine running (to look inside)"})
@user_errors
def check(c: Context, keep: bool = False) -> None:
    """The CI job: a scratch copy of the repo, `vagrant up --provider=docker`, smoke e2e, destroy, no leak."""
    need_root("vagrant check")
    report = job.run(console, keep=keep)
    table = Table(title="vagrant docker-provider job")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, seconds in report.seconds.items():
        table.add_row(name, f"{seconds:.0f}")
    table.add_row("[bold]total", f"[bold]{sum(report.seconds.values()):.0f}")
    out.print(table)
    built = "built" if report.image_built else "cached"
    out.print(
        f"image {report.image} ({built}, {report.image_bytes / 1e6:.0f} MB); smoke: {report.smoke_summary}"
    )
    if report.leftovers:
        console.print(f"[red]error:[/] the job left behind: {', '.join(report.leftovers)}")
        raise Exit(code=1)


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


ns = Collection(check, prepare, stop)
