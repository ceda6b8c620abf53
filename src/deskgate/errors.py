"""Domain errors raised by services; the web and CLI edges turn them into responses.

DeskgateError                 message for the person who must act, plus facts
├── InvalidInput              bad value from a form, the CLI or an API body (400/exit 2)
├── NotFound                  no such thing in this account (404)
├── Conflict                  uniqueness clash, e.g. an email already taken (409)
├── Forbidden                 signed in, but not allowed (403)
├── NotAuthenticated          no valid session or token (401)
├── TooManyAttempts           sign-in throttled (429), with retry_after seconds
└── SignInRefused             credentials or SSO refused; the message is safe to show
"""

from __future__ import annotations


class DeskgateError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DeskgateError):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(DeskgateError):
    status_code = 404


class Conflict(DeskgateError):
    status_code = 409

    def __init__(self, message: str, *, attribute: str | None = None) -> None:
        super().__init__(message)
        self.attribute = attribute


class Forbidden(DeskgateError):
    status_code = 403


class NotAuthenticated(DeskgateError):
    status_code = 401


class TooManyAttempts(DeskgateError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SignInRefused(DeskgateError):
    status_code = 401
