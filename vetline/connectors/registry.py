"""Finding connectors: every installed distribution may declare networks under the entry point
group ``vetline.connectors`` (``network code = "package.module:ConnectorClass"``). Vetline's own
plugins are declared the same way in its pyproject.toml, so third parties are not second-class.

Plain Python, no ORM. Operator settings for each network come from ``VETLINE_CONNECTORS``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Final

from vetline.connectors.base import Connector

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "vetline.connectors"


class ConnectorNotInstalled(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class InstalledConnector:
    network: str
    cls: type[Connector]
    distribution: str
    entry_point: str

    def describe(self) -> dict[str, Any]:
        return {
            **self.cls.describe(),
            "distribution": self.distribution,
            "entry_point": self.entry_point,
        }


@dataclass(frozen=True, slots=True)
class BrokenConnector:
    """A declared plugin that cannot be loaded: reported, never fatal."""

    name: str
    entry_point: str
    error: str


def _load(ep: EntryPoint) -> InstalledConnector | BrokenConnector:
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plugin must not take Vetline down
        return BrokenConnector(ep.name, ep.value, f"{type(exc).__name__}: {exc}")
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        return BrokenConnector(ep.name, ep.value, "not a vetline.connectors.base.Connector")
    if getattr(cls, "network", None) != ep.name:
        return BrokenConnector(
            ep.name,
            ep.value,
            f"declares network {getattr(cls, 'network', None)!r}, not {ep.name!r}",
        )
    dist = ep.dist.name if ep.dist is not None else ""
    return InstalledConnector(ep.name, cls, dist, ep.value)


def discover() -> tuple[dict[str, InstalledConnector], list[BrokenConnector]]:
    """Read the entry points now (no caching: a test or an operator may install one)."""
    found: dict[str, InstalledConnector] = {}
    broken: list[BrokenConnector] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        loaded = _load(ep)
        if isinstance(loaded, BrokenConnector):
            logger.warning(
                "connectors.plugin.broken",
                extra={"network": loaded.name, "entry_point": loaded.entry_point},
            )
            broken.append(loaded)
        elif loaded.network in found:
            # Two distributions claim the same network: the first (by name) wins, loudly.
            broken.append(
                BrokenConnector(ep.name, ep.value, "another plugin already provides this network")
            )
        else:
            found[loaded.network] = loaded
    return found, broken


def installed() -> dict[str, InstalledConnector]:
    return discover()[0]


def connector_for(
    network: str, *, config: Mapping[str, Mapping[str, Any]] | None = None
) -> Connector:
    """An instance of the connector of ``network``, configured from ``config[network]``."""
    plugin = installed().get(network)
    if plugin is None:
        raise ConnectorNotInstalled(f"No connector is installed for network {network!r}.")
    return plugin.cls(config=(config or {}).get(network, {}))
