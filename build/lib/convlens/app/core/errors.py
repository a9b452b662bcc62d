"""What can go wrong with a request, named; each error has a stable code and a message.

No HTTP here: each protocol adapter maps these to its own statuses and bodies
(`app/api/errors.py` for /v1).
"""

from __future__ import annotations


class DomainError(Exception):
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyImage(DomainError):
    code = "empty_image"


class UnreadableImage(DomainError):
    code = "unreadable_image"


class BlankImage(DomainError):
    code = "blank_image"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class ImageTooLarge(DomainError):
    code = "image_too_large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class MalformedRequest(DomainError):
    code = "malformed_request"


class UnknownLayer(DomainError):
    code = "unknown_layer"


class UnsupportedMethod(DomainError):
    code = "unsupported_method"


class UnknownModel(DomainError):
    code = "unknown_model"


class Unauthorized(DomainError):
    code = "unauthorized"


class Overloaded(DomainError):
    """Too much work queued, or shutting down: the client should retry after a while."""

    code = "overloaded"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
