"""Domain errors; routers turn them into HTTP statuses, the CLI into messages."""

from __future__ import annotations


class DomainError(Exception):
    """Something the caller asked for cannot be done; the message says why."""


class NotFoundError(DomainError):
    """A named site, camera or token does not exist."""


class AlreadyExistsError(DomainError):
    """A site or camera with that id is already registered."""


class ForbiddenError(DomainError):
    """The caller's token does not allow this (e.g. a report for another camera)."""


class RejectedError(DomainError):
    """A report or heartbeat breaks an ingest rule (unknown label, wrong interval, outside
    the accepted time window, overlap); nothing of its batch is stored."""
