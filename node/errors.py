"""The one exception type of zion.node; its message is what the user reads."""

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class NodeError(Exception):
    """Something the operator must fix (bad config, unreadable key, address in use)."""


def first_of(exc: BaseException, kind: type[E]) -> E | None:
    """The first ``kind`` in ``exc`` or, nested at any depth, in its exception groups (trio
    nurseries wrap what their tasks raise)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := first_of(inner, kind)) is not None:
                return found
    return None
