"""Zion: a peer-to-peer marketplace node.

The subpackages follow the architecture and depend one way only:
``zion.node`` -> (``zion.gateway``, ``zion.storage``, ``zion.contracts``) -> ``zion.protocols``.
"""

__version__ = "0.1.0"
