"""``samverka bundle export|import|inspect``: offline signed bundles.

The format and its checks are :mod:`samverka.replication.bundle`'s.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from samverka.cli._common import (
    EXIT_CODES_HELP,
    counted,
    help_parts,
    json_option,
    print_json,
    with_node,
)
from samverka.errors import ConfigError, ImportFileError, SamverkaError
from samverka.i18n import N_, _
from samverka.protocol.kommuner import is_origin, kommun_name
from samverka.protocol.signing import PublicKey
from samverka.protocol.verify import TrustedKey

if TYPE_CHECKING:
    from samverka.node import Node


@click.group(
    help=help_parts(
        N_(
            "Signerade paket offline, för en kommun vars nät inte når hubben.\n\n"
            "Ett paket håller flöden precis som ursprungen signerade dem; importen verifierar "
            "varje post som en synk över nätet gör. Utkast kommer aldrig med i ett paket, och "
            "MEDLEMS-poster bara med --include-members."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka bundle export --out leksand.samverka\n"
        "  samverka bundle import leksand.samverka --trust-key 2029=leksand-signing.pub",
    ),
)
def bundle() -> None:
    pass


@contextmanager
def _progress(length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal for long runs; silent otherwise."""
    if length >= 1000 and sys.stderr.isatty():
        with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
            yield bar.update
    else:
        yield None


@bundle.command(
    "export",
    help=help_parts(
        N_(
            "Skriv nodens flöden (egna och speglade) till en paketfil.\n\n"
            "Varje flöde kommer med helt, från sin första post, så att mottagaren kan "
            "verifiera varje hashkedja. Utkast ersätts av maskade ersättare (ursprung, "
            "nummer, hash); det gör MEDLEMS-poster också om inte --include-members anges."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka bundle export --out leksand.samverka\n"
        "  samverka bundle export --out tibro.samverka --origin 1472 --include-members",
    ),
    epilog=EXIT_CODES_HELP,
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_("Paketfilen som ska skrivas."),
)
@click.option(
    "--origin",
    "origins",
    multiple=True,
    metavar="KOD",
    help=N_("Bara den här kommunens flöde (upprepas) [standard: alla flöden noden har]."),
)
@click.option(
    "--include-members",
    is_flag=True,
    help=N_("Ta med MEDLEMS-poster (bara för ett paket som bärs till en annan medlem)."),
)
@click.option("--force", is_flag=True, help=N_("Skriv över --out om den finns."))
@json_option
@with_node
def export(
    node: Node,
    out: Path,
    origins: tuple[str, ...],
    include_members: bool,
    force: bool,
    as_json: bool,
) -> None:
    for origin in origins:
        if not is_origin(origin):
            raise SamverkaError(f"{origin!r} is not a kommunkod")
    if out.exists() and not force:
        raise SamverkaError(
            _("{path} finns redan").format(path=out),
            hint=_("välj en annan --out, eller ange --force"),
        )
    heads = node.store.heads(list(origins))
    if origins and not heads:
        raise SamverkaError(
            _("noden har inga poster från {origins}").format(origins=", ".join(origins))
        )
    total = sum(h.sequence for h in heads)
    from samverka.replication.bundle import export_bundle

    # Write beside the target and rename: a half-written bundle never has the final name.
    fd, tmp_name = tempfile.mkstemp(prefix=".bundle-", dir=out.parent or Path("."))
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f, _progress(total, "exporting") as update:
            summary = export_bundle(
                node.store,
                node.signing_key,
                node.origin,
                f,
                origins=origins,
                include_members=include_members,
                progress=update,
            )
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if as_json:
        print_json(
            {
                "file": str(out),
                "exporter": node.origin,
                "entries": summary.entries,
                "redacted": summary.redacted,
                "includes_members": include_members,
                "heads": {h.origin: h.sequence for h in summary.header.heads},
                "key_id": node.signing_key.key_id,
            }
        )
        return
    click.echo(
        _(
            "skrev {file}: {entries} ur {feeds} ({redacted} maskade), signerat av {name} "
            "({origin}) nyckel {key}"
        ).format(
            file=out,
            entries=counted(summary.entries, N_("post"), N_("poster")),
            feeds=counted(len(summary.origins), N_("flöde"), N_("flöden")),
            redacted=summary.redacted,
            name=node.name,
            origin=node.origin,
            key=node.signing_key.key_id,
        )
    )
    click.echo(
        _(
            "mottagaren behöver varje ursprungs publika nyckel, t.ex. er keys/signing.pub "
            "(`--trust-key {origin}=FIL.pub`)"
        ).format(origin=node.origin)
    )


def _parse_trust_key(text: str) -> TrustedKey:
    code, sep, path = text.partition("=")
    code = code.strip()
    if not sep or not is_origin(code):
        raise SamverkaError(
            _("--trust-key {text!r} är inte KOD=FIL.pub").format(text=text),
            hint=_("t.ex. --trust-key 1472=tibro-signing.pub"),
        )
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            _("kan inte läsa {file}: {error}").format(file=path, error=exc.strerror)
        ) from exc
    try:
        return TrustedKey(code, PublicKey.from_pem(pem))
    except ValueError as exc:
        raise ConfigError(f"{path} is not an Ed25519 public key in PEM: {exc}") from exc


@bundle.command(
    "import",
    help=help_parts(
        N_(
            "Verifiera ett pakets poster och lagra dem, som en synk över nätet gör.\n\n"
            "Poster verifieras bara mot nycklar noden litar på: sin egen, nycklar som fästs "
            "tidigare och de som anges med --trust-key (sparas till nästa gång när importen "
            "lyckats). Den första felaktiga posten stoppar importen: posterna före den "
            "behålls, inget från den och framåt lagras, och kommandot avslutas med en "
            "slutkod skild från noll som namnger posten och skälet."
        ),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka bundle import tibro.samverka --trust-key 1472=tibro-signing.pub",
    ),
    epilog=EXIT_CODES_HELP,
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust-key",
    "trust_keys",
    multiple=True,
    metavar="KOD=FILE.pub",
    help=N_("Lita på den här publika Ed25519-nyckeln för kommunen KOD (upprepas)."),
)
@json_option
@with_node
def import_(node: Node, file: Path, trust_keys: tuple[str, ...], as_json: bool) -> None:
    from samverka.replication.bundle import import_bundle, read_header

    pins = [_parse_trust_key(t) for t in trust_keys]
    keys = node.keyring()
    for pin in pins:
        held = keys.get(pin.key_id)
        if held is not None and held.origin != pin.origin:
            raise SamverkaError(
                _("nyckeln {key} är redan betrodd för {held}, inte {origin}").format(
                    key=pin.key_id, held=held.origin, origin=pin.origin
                )
            )
        keys.add(pin)
    try:
        stream = file.open("rb")
    except OSError as exc:
        raise ImportFileError(
            _("kan inte läsa {file}: {error}").format(file=file, error=exc.strerror)
        ) from exc
    with stream:
        total = read_header(stream)[1].entry_count
        stream.seek(0)
        with _progress(total, "verifying") as update:
            summary = import_bundle(node.store, keys, stream, progress=update)
    for pin in pins:
        node.pin_key(pin.origin, pin.public_key)
    header = summary.header
    if as_json:
        print_json(
            {
                "file": str(file),
                "exporter": header.exporter,
                "header_verified": summary.header_verified,
                "entries": summary.items,
                "accepted": summary.accepted,
                "duplicates": summary.duplicates,
                "stand_ins_filled": summary.stand_ins_filled,
                "stand_ins_left_out": summary.stand_ins_left_out,
                "origins": sorted(summary.origins),
                "pinned": [p.origin for p in pins],
            }
        )
        return
    verified = (
        _("verifierad")
        if summary.header_verified
        else _("inte verifierad (exportörens nyckel okänd)")
    )
    click.echo(
        _("importerade {file} från {name} ({origin}), huvudets signatur {verified}").format(
            file=file.name,
            name=kommun_name(header.exporter),
            origin=header.exporter,
            verified=verified,
        )
    )
    click.echo(
        "  "
        + _(
            "{entries} ur {feeds}: {accepted} nya, {duplicates} fanns redan; varje signatur "
            "verifierad"
        ).format(
            entries=counted(summary.items, N_("post"), N_("poster")),
            feeds=counted(len(summary.origins), N_("flöde"), N_("flöden")),
            accepted=summary.accepted,
            duplicates=summary.duplicates,
        )
    )
    if summary.stand_ins_filled:
        click.echo(
            "  "
            + _("{entries} som hittills bara fanns som maskade ersättare fylldes i").format(
                entries=counted(summary.stand_ins_filled, N_("post"), N_("poster"))
            )
        )
    if summary.stand_ins_left_out:
        click.echo(
            "  "
            + _(
                "{stand_ins} i slutet av ett flöde lämnades utanför: ingen signerad post "
                "går i god för dem, och bara exportörens eget flöde tas på ett verifierat "
                "huvuds ord"
            ).format(
                stand_ins=counted(
                    summary.stand_ins_left_out, N_("maskad ersättare"), N_("maskade ersättare")
                )
            )
        )


@bundle.command(
    "inspect",
    help=help_parts(
        N_("Visa vad ett paket håller, utan att importera det."),
        "\n\n\b\n",
        N_("Exempel:"),
        "\n  samverka bundle inspect tibro.samverka",
    ),
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@with_node
def inspect(node: Node, file: Path, as_json: bool) -> None:
    from samverka.replication.bundle import read_header, verify_header

    with file.open("rb") as stream:
        signed, header = read_header(stream)
    try:
        verified: bool | str = verify_header(signed, header, node.keyring())
    except ImportFileError as exc:
        verified = f"refused: {exc}"
    created = dt.datetime.fromtimestamp(header.created_at_ms / 1000, tz=dt.UTC)
    if as_json:
        print_json(
            {
                "exporter": header.exporter,
                "created_at_ms": header.created_at_ms,
                "entries": header.entry_count,
                "includes_members": header.includes_members,
                "key_id": signed.key_id,
                "header_verified": verified,
                "heads": {h.origin: h.sequence for h in header.heads},
            }
        )
        return
    click.echo(
        _("paket från {name} ({origin})").format(
            name=kommun_name(header.exporter), origin=header.exporter
        )
    )
    click.echo(_("  skrivet       {when}").format(when=f"{created:%Y-%m-%d %H:%M UTC}"))
    click.echo(_("  poster        {count}").format(count=header.entry_count))
    click.echo(
        _("  medlemsposter {state}").format(
            state=_("med") if header.includes_members else _("maskade")
        )
    )
    if isinstance(verified, str):
        state = verified
    else:
        state = _("verifierad") if verified else _("inte verifierad (nyckeln är okänd här)")
    click.echo(_("  signerat av   nyckel {key}: {state}").format(key=signed.key_id, state=state))
    for head in header.heads:
        click.echo(
            _("  flöde         {origin} {name}: 1..{sequence}").format(
                origin=head.origin, name=kommun_name(head.origin), sequence=head.sequence
            )
        )
