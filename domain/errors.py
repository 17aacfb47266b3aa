"""Domain errors: a command refused for a business reason, with the facts."""

from typing import Any


class DomainError(Exception):
    """A rejected command: `code` says why, for good (the web layer maps it to an HTTP
    status; the domain knows no transport)."""

    code = "rejected"

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class NotFound(DomainError):
    code = "not_found"


class AlreadyExists(DomainError):
    code = "already_exists"


class VersionConflict(DomainError):
    code = "version_conflict"


class RuleViolated(DomainError):
    code = "rule_violated"


def check_expected_version(expected: int | None, actual: int) -> None:
    """Optimistic concurrency: the client says which version it decided on."""
    if expected is not None and expected != actual:
        raise VersionConflict(
            f"expected version {expected} but the aggregate is at version {actual}",
            expected_version=expected,
            actual_version=actual,
        )
