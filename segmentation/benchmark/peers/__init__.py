"""Peers in the architecture benchmark: StarDist and Cellpose, each trained from scratch by its own
training code on the benchmark's split, under its budget, then scored like every other row.

A benchmark file names them beside the families::

    architectures:
      - {name: StarDist, peer: stardist}
      - {name: Cellpose, peer: cellpose}

They are optional extras (``pip install -e ".[peers]"``); this package imports neither TensorFlow
nor Cellpose until :func:`load_peer` is called, so ``import segmentation`` never does. Each adapter
module (:mod:`.stardist_peer`, :mod:`.cellpose_peer`) provides ``train(train, val, budget, output,
options) -> TrainedPeer``; :func:`run_peer` is the benchmark's glue.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

#: Peers a benchmark file can name (``peer: stardist``).
PEERS = ("stardist", "cellpose")

#: How to install them.
INSTALL_HINT = 'pip install -e ".[peers]"'

_MODULES = {
    "stardist": "segmentation.benchmark.peers.stardist_peer",
    "cellpose": "segmentation.benchmark.peers.cellpose_peer",
}

#: Top-level modules each peer needs (checked without importing them).
_NEEDS = {"stardist": ("stardist", "csbdeep", "tensorflow"), "cellpose": ("cellpose",)}

#: Distributions whose versions the run record lists when a benchmark has peers.
PEER_DISTRIBUTIONS = ("stardist", "csbdeep", "tensorflow-cpu", "tensorflow", "keras", "cellpose")


class PeerNotInstalledError(ImportError):
    """A peer's library (or one it needs) is missing; the message says how to install it."""


def load_peer(name: str) -> ModuleType:
    """Import the adapter of peer ``name`` (and with it the peer's library).

    Raises:
        ValueError: ``name`` is not one of :data:`PEERS`.
        PeerNotInstalledError: the library is missing or does not import; the message names the
            module and the install command.
    """
    if name not in _MODULES:
        raise ValueError(f"unknown peer {name!r}; choose one of: {', '.join(PEERS)}")
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as error:
        missing = getattr(error, "name", None) or str(error)
        raise PeerNotInstalledError(
            f"peer {name!r} needs {missing!r}, which is not installed or does not import "
            f"({error}); install the optional peers into a separate environment: "
            f"{INSTALL_HINT} (see docs/benchmarks.md)"
        ) from error


def require_peer(name: str) -> None:
    """Check, without importing anything, that the libraries of peer ``name`` are installed.

    Raises:
        ValueError: ``name`` is not one of :data:`PEERS`.
        PeerNotInstalledError: one is missing; the message names it and the install command.
    """
    if name not in _NEEDS:
        raise ValueError(f"unknown peer {name!r}; choose one of: {', '.join(PEERS)}")
    missing = [m for m in _NEEDS[name] if importlib.util.find_spec(m) is None]
    if missing:
        raise PeerNotInstalledError(
            f"peer {name!r} needs {', '.join(missing)}, not installed in this environment "
            f"({_python()}); install the optional peers into a separate environment: "
            f"{INSTALL_HINT} (see docs/benchmarks.md, 'Peers')"
        )


def _python() -> str:
    import sys

    return sys.executable


def peer_available(name: str) -> tuple[bool, str]:
    """Whether peer ``name`` imports here, and if not, the reason (for test skips)."""
    try:
        load_peer(name)
    except PeerNotInstalledError as error:
        return False, str(error)
    return True, ""


def peer_versions() -> dict[str, str]:
    """Installed versions of :data:`PEER_DISTRIBUTIONS` (those not installed are left out)."""
    found = {}
    for name in PEER_DISTRIBUTIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
