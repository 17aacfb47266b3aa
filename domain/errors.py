"""Domain errors: a command refused for a business reason, with the facts."""

from typing import Any


class DomainError(Exception):
    """A rejected command. `status` is the HTTP status the web layer answers."""

    code = "rejected"
    status = 409

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class NotFound(DomainError):
    code = "not_found"
    status = 404


class AlreadyExists(DomainError):
    code = "already_exists"
    status = 409


class VersionConflict(DomainError):
    code = "version_conflict"
    status = 409


class RuleViolated(DomainError):
    code = "rule_violated"
    status = 409


def check_expected_version(expected: int | None, actual: int) -> None:
    """Optimistic concurrency: the client says which version it decided on."""
    if expected is not None and expected != actual:
        raise VersionConflict(
            f"expected version {expected} but the aggregate is at version {actual}",
            expected_version=expected,
            actual_version=actual,
        )
