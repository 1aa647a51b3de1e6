"""Validation outcomes, in go-libp2p-pubsub's model.

``REJECT`` means the input is invalid and its sender is to blame (bad signature, malformed);
``IGNORE`` means it is valid but unwanted (duplicate, stale, expired) and nobody is punished.
Neither is stored or forwarded.
"""

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Validation:
    verdict: Verdict
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPT


ACCEPT = Validation(Verdict.ACCEPT)


def reject(reason: str) -> Validation:
    return Validation(Verdict.REJECT, reason)


def ignore(reason: str) -> Validation:
    return Validation(Verdict.IGNORE, reason)
