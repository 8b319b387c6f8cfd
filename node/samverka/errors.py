"""One error hierarchy for Samverka.

Two families, as in python-tuf: refusals of untrusted data (an entry, a record, an
import file) and operational problems (configuration, storage, transport). Every
error carries a human message; ``hint`` says what to do about it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SamverkaError(Exception):
    """Base of every error Samverka raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class Reason(enum.StrEnum):
    """Machine-readable reason for refusing an entry; sent in gRPC error details."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNKNOWN_KEY = "unknown_key"
    KEY_NOT_OF_ORIGIN = "key_not_of_origin"
    KEY_REVOKED = "key_revoked"
    BAD_SIGNATURE = "bad_signature"
    SEQUENCE_GAP = "sequence_gap"
    FORK = "fork"
    VERSION_NOT_NEWER = "version_not_newer"
    SCHEMA_INVALID = "schema_invalid"
    #: The entry's timestamp is further in the future than the receiver tolerates.
    CLOCK_SKEW = "clock_skew"
    #: A signed directory older than one already seen (or a different one at the same
    #: version): someone is replaying or forking the hub's member directory.
    ROLLBACK = "rollback"
    #: A signed directory or request past its lifetime.
    EXPIRED = "expired"
    #: The caller's kommun has been revoked from the member directory.
    MEMBER_REVOKED = "member_revoked"
    #: The hub served an entry (or directory version) that no checkpoint this node
    #: accepted holds, even after waiting ``[witness] proof_wait_seconds`` for one.
    NOT_IN_LOG = "not_in_log"
    #: The hub's inclusion proof does not prove the leaf in the accepted checkpoint.
    BAD_PROOF = "bad_proof"
    #: The entry is signed by a key the hub listed for its kommun without an
    #: announcement under the kommun's earlier key: it takes effect only after standing
    #: ``[witness] challenge_period_seconds`` in an accepted checkpoint, unobjected.
    KEY_IN_CHALLENGE = "key_in_challenge"
    #: The entry is signed by a key its kommun objected to (a signed objection by a key
    #: it held before): refused for good.
    KEY_OBJECTED = "key_objected"


class EntryRefused(SamverkaError):
    """An entry failed verification; nothing from it was stored."""

    def __init__(
        self,
        reason: Reason,
        detail: str,
        *,
        origin: str = "",
        sequence: int = 0,
    ) -> None:
        where = f"{origin}#{sequence}: " if origin else ""
        super().__init__(f"{where}{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.origin = origin
        self.sequence = sequence


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One schema problem: the dotted field path and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RecordInvalid(SamverkaError):
    """A record breaks the schema (required fields, enum ranges, sizes, links, codes)."""

    def __init__(self, issues: list[FieldIssue]) -> None:
        super().__init__("; ".join(str(i) for i in issues))
        self.issues = issues


class DirectoryRefused(SamverkaError):
    """A signed member directory failed verification; the one held before stays."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(
            f"member directory refused: {reason.value}: {detail}",
            hint="fetch the directory again from the hub; if this persists, tell the council",
        )
        self.reason = reason
        self.detail = detail


class EnrollmentRefused(SamverkaError):
    """An enrollment request or key rotation is invalid or not allowed."""

    def __init__(self, reason: Reason, detail: str, *, hint: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}", hint=hint)
        self.reason = reason
        self.detail = detail


class CertificateInvalid(SamverkaError):
    """A TLS certificate or certificate request is not one Samverka accepts."""

    def __init__(
        self, message: str, *, reason: Reason = Reason.SCHEMA_INVALID, hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        #: The refusal reason when the hub refuses a member's request for it.
        self.reason = reason


class RequestRefused(SamverkaError):
    """A request's bytes break a wire limit (size, item count, nesting, an unknown field,
    a number out of range); refused before the request is decoded. ``reason`` is the
    machine-readable reason sent in the ErrorInfo: ``too_large``, ``too_many_items``,
    ``malformed`` or ``out_of_range``."""

    def __init__(self, reason: str, message: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class Overloaded(SamverkaError):
    """A caller has too many calls open, or makes them too fast; retry later."""

    reason = "overloaded"


class QuotaExhausted(Overloaded):
    """A caller has used up an allowance for a period (such as certificate renewals per
    day); ``retry_at_ms`` is when the next one is allowed. ``reason`` is the
    machine-readable reason sent in the ErrorInfo (e.g. ``renewal_limit``)."""

    def __init__(self, reason: str, message: str, *, retry_at_ms: int, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.retry_at_ms = retry_at_ms


class ConfigError(SamverkaError):
    """The node's folder or configuration is missing or wrong."""


class StoreError(SamverkaError):
    """The database cannot be opened, migrated or written."""


class StoreConflict(StoreError):
    """A feed's head moved since the batch was verified (another writer appended).

    Nothing from the batch was stored; re-verify against the store and retry.
    """

    hint = "re-read the feed heads, verify the entries again and retry the append"


class TransportError(SamverkaError):
    """A peer could not be reached or answered with an error."""


class ImportFileError(SamverkaError):
    """An inventory or bundle file cannot be imported."""
