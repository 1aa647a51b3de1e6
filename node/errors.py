"""The one exception type of zion.node; its message is what the user reads."""


class NodeError(Exception):
    """Something the operator must fix (bad config, unreadable key, address in use)."""
