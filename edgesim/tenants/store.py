"""The tenants' config store: etcd, spoken to over its HTTP gateway with etcd3gw.

Layout: one key per tenant, `/edgesim/tenants/<name>`, holding a TenantSpec as JSON; `/edgesim/ready`
is written by `up` after it seeded the tenants of the topology, so an agent never mistakes a store that
is still empty for one without tenants. Writers use transactions on the key's revision, so two
concurrent `invoke tenant.rule.add` never lose each other's rule.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from etcd3gw import exceptions as etcd_errors
from etcd3gw.client import Etcd3Client
from etcd3gw.watch import Watcher
from pydantic import ValidationError

from edgesim import namespaces
from edgesim.tenants.spec import TenantSpec

ROOT = "/edgesim/"
TENANTS = ROOT + "tenants/"
READY_KEY = ROOT + "ready"
API_PATH = "/v3/"  # etcd >= 3.4; set, so the client does not ask /version first
_T = TypeVar("_T")


class StoreError(Exception):
    """The store could not be reached, or refused a request."""


@dataclass
class Snapshot:
    """The tenants in the store at one revision."""

    revision: int
    ready: bool
    tenants: dict[str, TenantSpec] = field(default_factory=dict)
    mod_revisions: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)  # key -> why its value is not a tenant


def tenant_key(name: str) -> str:
    """The key of a tenant's record."""
    return TENANTS + name


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _range_end(prefix: str) -> str:
    """The end of etcd's range for all keys starting with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class _StreamSession(requests.Session):
    """A session whose requests give up connecting after a second (etcd3gw's watch sets no timeout)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with a connect timeout and, for the watch stream, no read timeout."""
        kwargs.setdefault("timeout", (1.0, None))
        return super().request(*args, **kwargs)


class Store:
    """A client of one lab's etcd; `netns` is the namespace to reach it from (the caller's when None)."""

    def __init__(self, url: str, timeout: float = 2.0, netns: str | None = None) -> None:
        parts = urlsplit(url)
        self.url = url
        self.netns = netns
        self.timeout = timeout
        self._client = Etcd3Client(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 2379,
            timeout=timeout,
            api_path=API_PATH,
        )

    @contextlib.contextmanager
    def _where(self) -> Iterator[None]:
        # Sockets are opened in the namespace of the thread that opens them; requests opens them lazily.
        if self.netns is None:
            yield
        else:
            with namespaces.inside(self.netns):
                yield

    def _call(self, request: Callable[[Etcd3Client], _T]) -> _T:
        """One etcd3gw call from the store's namespace, its failures as StoreError."""
        try:
            with self._where():
                return request(self._client)
        except (etcd_errors.Etcd3Exception, requests.RequestException, OSError) as err:
            raise StoreError(f"{self.url}: {type(err).__name__}: {err}".strip()) from err

    def snapshot(self) -> Snapshot:
        """Every tenant in the store, and the revision they were read at."""
        # The range is read at the revision the status reports, so records and revision match exactly: the
        # agents watch from the revision after it and miss nothing.
        revision = int(self._call(lambda c: c.status())["header"]["revision"])
        found = self._call(
            lambda c: c.get(ROOT, metadata=True, range_end=_range_end(ROOT), revision=revision)
        )
        snap = Snapshot(revision=revision, ready=False)
        for value, kv in found:
            key = kv["key"].decode()
            if key == READY_KEY:
                snap.ready = True
                continue
            if not key.startswith(TENANTS):
                continue
            try:
                spec = TenantSpec.model_validate_json(value.decode())
            except (ValidationError, ValueError) as err:
                snap.invalid[key] = str(err).splitlines()[0]
                continue
            if spec.name != key.removeprefix(TENANTS):
                snap.invalid[key] = f"the record names tenant {spec.name!r}"
                continue
            snap.tenants[spec.name] = spec
            snap.mod_revisions[spec.name] = int(kv["mod_revision"])
        return snap

    def _txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]) -> int | None:
        """Run a transaction; the store's revision after it when it succeeded, None when a compare failed."""
        result = self._call(lambda c: c.transaction({"compare": compare, "success": success}))
        return int(result["header"]["revision"]) if result.get("succeeded") else None

    def put_tenant(self, spec: TenantSpec, mod_revision: int | None) -> int | None:
        """Write a tenant if its record is still at mod_revision (None: if it has none); the new revision."""
        key = _b64(tenant_key(spec.name))
        compare = (
            {"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": 0}
            if mod_revision is None
            else {"key": key, "target": "MOD", "result": "EQUAL", "mod_revision": mod_revision}
        )
        put = {"request_put": {"key": key, "value": _b64(spec.model_dump_json())}}
        return self._txn([compare], [put])

    def delete_tenant(self, name: str, mod_revision: int) -> int | None:
        """Delete a tenant if its record is still at mod_revision; the new revision, or None."""
        key = _b64(tenant_key(name))
        compare = {"key": key, "target": "MOD", "result": "EQUAL", "mod_revision": mod_revision}
        return self._txn([compare], [{"request_delete_range": {"key": key}}])

    def seed(self, tenants: list[TenantSpec]) -> int:
        """Write the topology's tenants and the ready key in one transaction (what `up` does once)."""
        puts = [
            {"request_put": {"key": _b64(tenant_key(t.name)), "value": _b64(t.model_dump_json())}}
            for t in tenants
        ]
        puts.append({"request_put": {"key": _b64(READY_KEY), "value": _b64("1")}})
        return self._txn([], puts) or 0

    def watch(self, start_revision: int, on_change: Callable[[], None]) -> Callable[[], None]:
        """Call on_change (from another thread) for every change under /edgesim/ from start_revision on.

        Returns the function that cancels the watch. The stream has its own session, so it never holds
        a connection that the snapshots need.
        """
        parts = urlsplit(self.url)
        client = Etcd3Client(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 2379,
            api_path=API_PATH,
            session=_StreamSession(),
        )
        try:
            with self._where():
                watcher = Watcher(
                    client,
                    ROOT,
                    lambda _event: on_change(),
                    range_end=_range_end(ROOT),
                    start_revision=start_revision,
                )
        except (requests.RequestException, OSError) as err:
            raise StoreError(f"{self.url}: cannot watch: {err}") from err
        return watcher.stop
