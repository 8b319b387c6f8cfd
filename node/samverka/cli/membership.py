"""``samverka node enroll | directory | rotate-key | renew-cert``: this node's membership."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from samverka.cli._common import (
    EXIT_CODES_HELP,
    fail,
    help_parts,
    json_option,
    print_json,
    with_node,
)
from samverka.i18n import N_, _

if TYPE_CHECKING:
    from samverka.protocol.directory import VerifiedDirectory

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _confirm_membership(node: Any, as_json: bool) -> None:
    """An enrolled node runs ``enroll`` again: ask the hub whether that still holds.

    A revoked membership is an error (exit 6, denied), not "already enrolled"; a hub
    that cannot be reached leaves the held directory's word, said as such.
    """
    from samverka.cli._common import denied
    from samverka.errors import SamverkaError
    from samverka.membership.member import refresh_directory
    from samverka.transport.server.status import AccessDenied
    from samverka.v1 import directory_pb2

    hub = node.config.hub.address
    try:
        directory = _run(refresh_directory(node.config)).directory
    except SamverkaError as exc:
        if denied(exc):
            raise AccessDenied(
                _("hubben på {hub} vägrar {origin} {name}: {error}").format(
                    hub=hub, origin=node.origin, name=node.name, error=exc
                ),
                hint=_(
                    "rådet har återkallat kommunens medlemskap (`samverka node directory` visar "
                    "statusen noden har), eller så godtar hubben inte längre nodens certifikat "
                    "(`samverka doctor --only certificates`); en återkallad kommun kan inte "
                    "ansluta igen: tala med rådet (AI-rådet)"
                ),
            ) from exc
        click.echo(
            _("varning: kunde inte fråga hubben på {hub}: {error}").format(hub=hub, error=exc),
            err=True,
        )
        directory = None
    if directory is not None:
        member = directory.member(node.origin)
        if member is not None and member.status != directory_pb2.MEMBER_STATUS_ACTIVE:
            raise AccessDenied(
                _(
                    "{origin} {name} är inte längre medlem: rådet har återkallat den "
                    "(katalogversion {version})"
                ).format(origin=node.origin, name=node.name, version=directory.version),
                hint=_("en återkallad kommun kan inte ansluta igen: tala med rådet (AI-rådet)"),
            )
    confirmed = (
        _("bekräftat av hubben") if directory is not None else _("enligt katalogen noden har")
    )
    if as_json:
        print_json({"status": "enrolled", "hub": hub, "confirmed": directory is not None})
        return
    click.echo(
        _(
            "{origin} {name} är redan medlem (hubb {hub}), {confirmed}; "
            "`samverka node directory --refresh` hämtar den nyaste katalogen"
        ).format(origin=node.origin, name=node.name, hub=hub, confirmed=confirmed)
    )


def _wait_option(text: str) -> Callable[[F], F]:
    """``--wait SECONDS``: how long a command waits for the council to decide."""
    return click.option(
        "--wait",
        "wait_seconds",
        type=float,
        default=0.0,
        show_default=True,
        metavar="SECONDS",
        help=text,
    )


@click.command(
    epilog=EXIT_CODES_HELP,
    help=help_parts(
        N_(
            "Be rådets hubb att ta in noden som medlem; kör igen för att hämta beslutet.\n\n"
            "Skickar en ansökan signerad med nodens signeringsnyckel, med en "
            "certifikatbegäran för en ny TLS-nyckel. När rådet godkänt skrivs certifikatet, "
            "rådets CA, hubbens nyckel (fäst), medlemskatalogen och hubbens adress in i "
            "nodens mapp."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka node enroll --hub hub.samverka.se:7444 --ca ai-radet-ca.pem \\\n"
        "      --address node.leksand.se:7443 --contact-role IT-chef --wait 600",
    ),
)
@click.option(
    "--hub",
    "hub_address",
    required=True,
    metavar="HOST:PORT",
    help=N_("Hubbens publika port (server-TLS), som rådet angett den."),
)
@click.option(
    "--ca",
    "ca_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=N_("Rådets CA-certifikat (PEM): det styrker hubbens identitet."),
)
@click.option(
    "--address",
    default="",
    metavar="HOST:PORT",
    help=N_(
        "Där hubben når nodens medlemsport (för skörd); utelämna bakom en brandvägg "
        "(noden skickar då själv)."
    ),
)
@click.option(
    "--contact-role",
    default="",
    help=N_('En roll, aldrig en person, t.ex. "IT-chef" eller "digitaliseringsstrateg".'),
)
@_wait_option(N_("Vänta så här länge på rådets beslut och fråga igen då och då."))
@with_node
@json_option
def enroll(
    node: Any,
    hub_address: str,
    ca_file: Path,
    address: str,
    contact_role: str,
    wait_seconds: float,
    as_json: bool,
) -> None:
    """Ask the council's hub to admit this node; run again to pick up the decision.

    Sends a request signed with this node's signing key, with a certificate request
    for a new TLS key. Once the council approves, the certificate, the council's CA,
    the hub's key (pinned), the member directory and the hub's address are written
    into the node folder.

    \b
    Example:
      samverka node enroll --hub hub.samverka.se:7444 --ca ai-radet-ca.pem \\
          --address node.leksand.se:7443 --contact-role IT-chef --wait 600
    """
    from samverka.membership.member import APPROVED, PENDING, EnrollOutcome, enrolled
    from samverka.membership.member import enroll as do_enroll

    if enrolled(node):
        _confirm_membership(node, as_json)
        return

    def waiting(outcome: EnrollOutcome) -> None:
        if not as_json:
            click.echo(
                _("väntar; väntar upp till {seconds} s på rådets beslut …").format(
                    seconds=f"{wait_seconds:g}"
                ),
                err=True,
            )

    outcome = _run(
        do_enroll(
            node,
            hub=hub_address,
            ca_pem=ca_file.read_bytes(),
            address=address,
            contact_role=contact_role,
            wait_seconds=wait_seconds,
            on_pending=waiting,
        )
    )
    if as_json:
        print_json(
            {
                "status": outcome.status_name,
                "message": outcome.message,
                "kommunkod": node.origin,
                "key_id": outcome.key_id,
                "hub": outcome.hub,
                "member_address": outcome.member_address,
                "directory_version": outcome.directory.version if outcome.directory else 0,
            }
        )
    elif outcome.status == APPROVED:
        assert outcome.directory is not None
        click.echo(
            _("ansluten: {origin} {name} är medlem i Samverka").format(
                origin=node.origin, name=node.name
            )
        )
        click.echo(_("  certifikat     tls/node.pem (utfärdat av rådets CA, tls/ca.pem)"))
        click.echo(
            _("  hubbens nyckel hub/hub.pub (fäst: varje katalog måste vara signerad med den)")
        )
        click.echo(
            _("  katalog        version {version} (hub/directory.bin)").format(
                version=outcome.directory.version
            )
        )
        click.echo(
            _("  hubbens adress {address} (skriven i samverka.toml)").format(
                address=outcome.member_address
            )
        )
        click.echo(
            _("Nästa steg: `samverka sync` hämtar federationen; starta om `node serve` om den kör.")
        )
    elif outcome.status == PENDING:
        click.echo(
            _("ansökan för {origin} {name} väntar hos {hub}.").format(
                origin=node.origin, name=node.name, hub=outcome.hub
            )
        )
        click.echo(_("Rådet måste godkänna den. Be AI-rådet köra:"))
        click.echo(f"  samverka hub members approve {node.origin}")
        click.echo(
            _("och bekräfta den här nodens nyckel-id med dem: {key}").format(key=outcome.key_id)
        )
        click.echo(
            _("Kör sedan det här kommandot igen (eller med --wait 600) för att hämta certifikatet.")
        )
    else:
        click.echo(_("rådet avslog ansökan: {message}").format(message=outcome.message))
        click.echo(_("Kör kommandot igen för att göra en ny ansökan."))
    if outcome.status != APPROVED and outcome.status != PENDING:
        raise click.exceptions.Exit(1)


@click.command(
    help=N_(
        "Medlemskatalogen noden har (verifierad mot hubbens fästa nyckel).\n\n"
        "En katalog som är äldre än den noden har vägras (tillbakarullning), liksom en "
        "utgången."
    )
)
@click.option(
    "--refresh/--no-refresh",
    default=False,
    help=N_("Hämta först den nyaste katalogen från hubben (medlemsporten, ömsesidig TLS)."),
)
@with_node
@json_option
def directory(node: Any, refresh: bool, as_json: bool) -> None:
    """The member directory this node holds (verified against the pinned hub key).

    A directory older than the one held is refused (rollback), as is an expired one.
    """
    from samverka.membership.member import refresh_directory
    from samverka.node import load_directory

    if refresh:
        update = _run(refresh_directory(node.config))
        if not as_json:
            if update.changed:
                click.echo(
                    _("hämtade katalogversion {version} (hade {held})").format(
                        version=update.directory.version,
                        held=update.previous_version or _("ingen"),
                    )
                )
            else:
                click.echo(
                    _("katalogversion {version} är den nyaste").format(
                        version=update.directory.version
                    )
                )
            for rotation in update.rotations:
                click.echo(
                    f"followed the hub's key rotation ({', '.join(rotation.what())}): hub key "
                    f"{rotation.new_key.key_id}, announced under {rotation.old_key_id}"
                )
    held = load_directory(node.config)
    if held is None:
        raise fail(
            _("noden har ingen medlemskatalog"),
            hint=_("anslut först: `samverka node enroll --hub HOST:PORT --ca FIL`"),
        )
    if as_json:
        info = directory_json(held)
        info["expired"] = held.expired(_now_ms())
        if refresh:
            info["rotations_followed"] = [
                {"what": r.what(), "old_key_id": r.old_key_id, "new_key_id": r.new_key.key_id}
                for r in update.rotations
            ]
        print_json(info)
        return
    echo_directory(held)
    if held.expired(_now_ms()):
        click.echo(_("UTGÅNGEN: hämta en ny med `samverka node directory --refresh`"))


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def _when(ms: int | None) -> str:
    import datetime as dt

    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def directory_json(d: VerifiedDirectory) -> dict[str, Any]:
    """A directory for ``--json`` output (the hub's ``directory show`` uses it too)."""
    from samverka.protocol.directory import REVOKED

    return {
        "version": d.version,
        "issued_at_ms": d.issued_at_ms,
        "expires_at_ms": d.expires_at_ms,
        "hub_key_id": d.directory.hub_key_id,
        "log_key": d.directory.log_key,
        "digest": d.digest.hex(),
        "members": [
            {
                "kommunkod": m.kommunkod,
                "name": m.name,
                "status": "revoked" if m.status == REVOKED else "active",
                "revoked_at_ms": m.revoked_at_ms,
                "address": m.address,
                "contact_role": m.contact_role,
                "keys": [
                    {
                        "key_id": k.key_id,
                        "valid_from_ms": k.valid_from_ms,
                        "revoked_at_ms": k.revoked_at_ms,
                    }
                    for k in m.keys
                ],
            }
            for m in d.directory.members
        ],
    }


def echo_directory(d: VerifiedDirectory) -> None:
    """A directory as text (the hub's ``directory show`` uses it too)."""
    click.echo(
        _(
            "medlemskatalog version {version}, utfärdad {issued}, går ut {expires}, "
            "signerad av {key}"
        ).format(
            version=d.version,
            issued=_when(d.issued_at_ms),
            expires=_when(d.expires_at_ms),
            key=d.directory.hub_key_id,
        )
    )
    for m in d.directory.members:
        state = (
            _("återkallad {when}").format(when=_when(m.revoked_at_ms))
            if m.revoked_at_ms
            else _("aktiv")
        )
        keys_text = ", ".join(
            k.key_id[:12]
            + (
                " " + _("(slutar {when})").format(when=_when(k.revoked_at_ms))
                if k.revoked_at_ms
                else ""
            )
            for k in m.keys
        )
        click.echo(
            f"  {m.kommunkod}  {m.name:<16} {state:<8} "
            + _("nycklar {keys}").format(keys=keys_text)
        )


@click.command(
    "rotate-key",
    epilog=EXIT_CODES_HELP,
    help=N_(
        "Anmäl en ny signeringsnyckel, signerad med den nuvarande; byt när den godkänts.\n\n"
        "Kör igen för att få beslutet (samma anmälan skickas). Efter bytet signeras poster "
        "med den nya nyckeln; poster signerade med den gamla före dess slut (godkännandet "
        "plus hubbens överlapp, 24 h som standard) förblir giltiga. Starta om en körande "
        "`node serve` efteråt."
    ),
)
@_wait_option(N_("Vänta så här länge på rådets godkännande och byt sedan nyckel."))
@with_node
@json_option
def rotate_key(node: Any, wait_seconds: float, as_json: bool) -> None:
    """Announce a new signing key, signed by the current one; switch once approved.

    Run it again to learn the decision (the same announcement is sent). After the
    switch, entries are signed with the new key; entries signed with the old key
    before its end (approval + the hub's overlap, 24 h by default) stay valid.
    Restart a running `node serve` afterwards.
    """
    from samverka.membership.member import APPROVED, PENDING, RotationOutcome
    from samverka.membership.member import rotate_key as do_rotate

    def waiting(outcome: RotationOutcome) -> None:
        if not as_json:
            click.echo(
                _("väntar; väntar upp till {seconds} s på godkännande …").format(
                    seconds=f"{wait_seconds:g}"
                ),
                err=True,
            )

    outcome = _run(do_rotate(node, wait_seconds=wait_seconds, on_pending=waiting))
    if as_json:
        print_json(
            {
                "status": outcome.status_name,
                "message": outcome.message,
                "old_key_id": outcome.old_key_id,
                "new_key_id": outcome.new_key_id,
                "switched": outcome.switched,
            }
        )
    elif outcome.status == APPROVED:
        click.echo(_("bytte till den nya signeringsnyckeln {key}").format(key=outcome.new_key_id))
        click.echo(
            _("  den gamla nyckeln {key} sparas i keys/retired/").format(key=outcome.old_key_id)
        )
    elif outcome.status == PENDING:
        click.echo(
            _("ny nyckel {key} anmäld; rådet måste godkänna den:").format(key=outcome.new_key_id)
        )
        click.echo(f"  samverka hub keys approve {node.origin}")
        click.echo(_("Kör sedan det här kommandot igen (eller med --wait 600) för att byta."))
    else:
        click.echo(_("rådet avslog den nya nyckeln: {message}").format(message=outcome.message))
    if outcome.status not in (APPROVED, PENDING):
        raise click.exceptions.Exit(1)


@click.command(
    "renew-cert",
    epilog=EXIT_CODES_HELP,
    help=N_("Hämta ett nytt TLS-certifikat (och en ny nyckel) från hubben innan det gamla går ut."),
)
@with_node
@json_option
def renew_cert(node: Any, as_json: bool) -> None:
    """Get a new TLS certificate (and key) from the hub before the current one expires."""
    from samverka.membership.member import renew_certificate
    from samverka.transport.pki import not_valid_after

    pem = _run(renew_certificate(node))
    until = not_valid_after(pem)
    if as_json:
        print_json({"kommunkod": node.origin, "not_valid_after": until.isoformat()})
        return
    click.echo(
        _("förnyade tls/node.pem, giltigt till {until}; starta om `node serve`").format(
            until=f"{until:%Y-%m-%d}"
        )
    )
