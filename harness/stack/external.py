"""The external stack: a service the harness did not start, named by its URLs.

``entry_url`` is where load goes; ``toxiproxy_url``, when given, is the user's own Toxiproxy,
whose proxies are the links faults may act on. The harness starts and stops nothing here:
``up`` and ``bring_up`` only describe the stack, ``down`` does nothing, and instance faults
(kill, pause, restart) have no instances to act on, and the harness journals no fault on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import BadInputError
from harness.stack.base import StackInfo, StackOptions, StackSection, StackStatus

__all__ = ["ExternalStack"]


class ExternalStack:
    """The service at ``entry_url`` (and its Toxiproxy at ``toxiproxy_url``, if any)."""

    kind: ClassVar[str] = "external"

    def __init__(self, entry_url: str, toxiproxy_url: str = "", *, state_dir: Path) -> None:
        self.entry_url = entry_url
        self.toxiproxy_url = toxiproxy_url
        self._state_dir = Path(state_dir).absolute()
        # Always true: the stack was there before the harness, and stays after it.
        self.reused = True

    @classmethod
    def from_section(cls, section: StackSection, options: StackOptions) -> ExternalStack:
        if not section.entry_url:
            raise BadInputError("stack.entry_url: required for kind external")
        return cls(section.entry_url, section.toxiproxy_url or "", state_dir=options.state_dir)

    @classmethod
    def from_ref(cls, ref: Mapping[str, Any], *, state_dir: Path) -> ExternalStack:
        entry, toxiproxy = ref.get("entry_url"), ref.get("toxiproxy_url", "")
        if ref.get("kind") != cls.kind or not isinstance(entry, str) or not entry:
            raise BadInputError(f"not an external stack reference: {dict(ref)!r}")
        if not isinstance(toxiproxy, str):
            raise BadInputError(f"not an external stack reference: {dict(ref)!r}")
        return cls(entry, toxiproxy, state_dir=state_dir)

    def to_ref(self) -> dict[str, Any]:
        return {"kind": self.kind, "entry_url": self.entry_url, "toxiproxy_url": self.toxiproxy_url}

    @property
    def journal_dir(self) -> Path | None:
        # None: faults on a stack the harness did not start are not journaled here (yet).
        return None

    def owns_host(self, host: str) -> bool:
        return host in self.info().hosts()

    # --- lifecycle: nothing to start or stop ----------------------------------------------------

    def bring_up(self, say: Callable[[str], None]) -> StackInfo:
        return self.info()

    def up(self) -> StackInfo:
        return self.info()

    def down(self) -> None:
        """Nothing: the harness did not start this stack, so it never stops it."""

    def status(self) -> StackStatus:
        # No processes of the harness's own: the service's health is the load's to find out.
        return StackStatus(location=self._state_dir, processes=())

    def info(self) -> StackInfo:
        return StackInfo(
            entry_url=self.entry_url,
            toxiproxy_url=self.toxiproxy_url,
            services=(),
            instances=(),
            proxies=(),
            admin_token="",
        )

    # --- instance primitives: an external stack has no instances the harness controls ----------

    def kill(self, instance: str) -> None:
        self._no_instances(instance)

    def pause(self, instance: str) -> None:
        self._no_instances(instance)

    def resume(self, instance: str) -> None:
        self._no_instances(instance)

    def restart(self, instance: str) -> None:
        self._no_instances(instance)

    def _no_instances(self, instance: str) -> None:
        raise BadInputError(
            f"unknown instance {instance!r}: an external stack has no instances the harness "
            "controls (kill, pause and restart need a local or compose stack)"
        )
