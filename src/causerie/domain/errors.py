"""The errors the domain raises. The HTTP layer maps each to one status code, in one place."""


class DomainError(Exception):
    """A rule of the domain refused an operation; the message is meant for people."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The space, member or object does not exist."""

    code = "not_found"


class NotAllowed(DomainError):
    """The actor's role does not allow the action."""

    code = "not_allowed"


class Conflict(DomainError):
    """The action does not fit the current state (for example, starting an ended space)."""

    code = "conflict"


class LimitReached(DomainError):
    """A configured limit (co-hosts, speakers, rates) would be exceeded."""

    code = "limit_reached"


class Invalid(DomainError):
    """An input is well-formed but breaks a rule of the domain (empty title, too long...)."""

    code = "invalid"
