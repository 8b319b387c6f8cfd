"""C2SP signed notes, tlog-cosignature/v1 and tlog-checkpoint (samverka.protocol.note,
samverka.protocol.checkpoint): Go's and C2SP's vectors, round trips, strict refusals."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from samverka.protocol import checkpoint as cpmod
from samverka.protocol import note
from samverka.protocol.checkpoint import (
    Checkpoint,
    MalformedCheckpoint,
    NotSignedByLog,
    OriginMismatch,
    open_checkpoint,
)
from samverka.protocol.note import (
    AmbiguousVerifier,
    CosignatureV1Signer,
    CosignatureV1Verifier,
    Ed25519Signer,
    Ed25519Verifier,
    InvalidKeyName,
    InvalidNoteSignature,
    KeyHashMismatch,
    MalformedKey,
    MalformedNote,
    NoteError,
    NoteLimits,
    NoteSignature,
    NoteTooLarge,
    TooManySignatures,
    UnknownKeyType,
    UnverifiedNote,
)

# golang.org/x/mod/sumdb/note note_test.go and example_test.go.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNED = (
    GO_TEXT + "\n"
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqf"
    "qdngotpRZb6KE6RyyBwJnAM=\n"
).encode()
# C2SP signed-note §Verifier keys, Example.
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYj"
    "OBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()
# C2SP tlog-checkpoint and tlog-cosignature, the example checkpoint and its cosignature.
C2SP_CHECKPOINT_BODY = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
C2SP_COSIG_LINE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
    "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)


def test_go_vectors() -> None:
    v = Ed25519Verifier.from_vkey(GO_VKEY)
    s = Ed25519Signer.from_skey(GO_SKEY)
    assert (v.name, v.key_hash) == ("PeterNeumann", 0xC74F20A3)
    assert (s.name, s.key_hash) == (v.name, v.key_hash)
    assert s.vkey == GO_VKEY and s.skey == GO_SKEY and v.vkey == GO_VKEY
    assert note.sign_note(GO_TEXT, s) == GO_SIGNED  # Ed25519 is deterministic
    opened = note.open_note(GO_SIGNED, [v])
    assert opened.text == GO_TEXT
    assert [(x.name, x.key_hash) for x in opened.signatures] == [("PeterNeumann", 0xC74F20A3)]
    # Go: "Check that existing signature is replaced by new one."
    stale = NoteSignature("PeterNeumann", 0xC74F20A3, b"BAD")
    assert note.sign_note(note.Note(GO_TEXT, (stale,)), s) == GO_SIGNED


def test_c2sp_vector() -> None:
    v = Ed25519Verifier.from_vkey(C2SP_VKEY)
    assert note.open_note(C2SP_NOTE, [v]).text == "This is an example message.\n"


def test_go_vkey_manglings_refused() -> None:
    # Go's TestNewVerifier: every proper substring and every single-byte change fails.
    b = GO_VKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(NoteError):
                    Ed25519Verifier.from_vkey(b[i:j])
    for i in range(len(b)):
        with pytest.raises(NoteError):
            Ed25519Verifier.from_vkey(b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :])
    # Wrong key length and unknown algorithm, each with an adjusted key hash (Go's).
    with pytest.raises(MalformedKey):
        Ed25519Verifier.from_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
    with pytest.raises(UnknownKeyType):
        Ed25519Verifier.from_vkey(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )


def test_go_skey_manglings_refused() -> None:
    b = GO_SKEY
    for i in range(len(b)):
        with pytest.raises(NoteError):
            Ed25519Signer.from_skey(b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :])
    for cut in range(1, len(b)):
        with pytest.raises(NoteError):
            Ed25519Signer.from_skey(b[:cut])


def test_key_errors_name_their_reason() -> None:
    with pytest.raises(KeyHashMismatch):
        Ed25519Verifier.from_vkey(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(MalformedKey):
        Ed25519Verifier.from_vkey(GO_VKEY.replace("c74f20a3", "C74F20A3"))
    with pytest.raises(InvalidKeyName):
        Ed25519Signer.generate("has space")
    with pytest.raises(InvalidKeyName):
        Ed25519Signer.generate("")
    with pytest.raises(UnknownKeyType):  # a note key is not a cosignature key
        CosignatureV1Verifier.from_vkey(GO_VKEY)
    w = CosignatureV1Signer.generate("w.example/1")
    with pytest.raises(UnknownKeyType):
        Ed25519Verifier.from_vkey(w.verifier().vkey)
    assert isinstance(note.verifier_from_vkey(w.verifier().vkey), CosignatureV1Verifier)
    assert isinstance(note.verifier_from_vkey(GO_VKEY), Ed25519Verifier)
    with pytest.raises(AmbiguousVerifier):

        class Fake:
            name = "PeterNeumann"
            key_hash = 0xC74F20A3

            def verify(self, text: bytes, signature: bytes) -> bool:
                return True

        note.Verifiers([Ed25519Verifier.from_vkey(GO_VKEY), Fake()])


names = st.text(
    alphabet=st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")),
    min_size=1,
    max_size=30,
).filter(note.is_valid_name)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")) | st.just("\n"), max_size=200
).map(lambda t: t + "\n")


@given(names, texts)
def test_round_trip(name: str, text: str) -> None:
    s = Ed25519Signer.generate(name)
    v = Ed25519Verifier.from_vkey(s.verifier().vkey)
    assert v == s.verifier()
    assert Ed25519Signer.from_skey(s.skey).vkey == s.vkey
    msg = note.sign_note(text, s)
    opened = note.open_note(msg, [v])
    assert opened.text == text and opened.signed_by(name, v.key_hash)


def test_unknown_signatures_kept_untrusted() -> None:
    a, b = Ed25519Signer.generate("a.example"), Ed25519Signer.generate("b.example")
    msg = note.sign_note("hello\n", a, b)
    opened = note.open_note(msg, [a.verifier()])
    assert [s.name for s in opened.signatures] == ["a.example"]
    assert [s.name for s in opened.unverified] == ["b.example"]
    with pytest.raises(UnverifiedNote) as exc:
        note.open_note(msg, [Ed25519Signer.generate("c.example").verifier()])
    assert len(exc.value.note.unverified) == 2
    # Same name, other key (so another hash): ignored, not trusted.
    impostor = Ed25519Signer.generate("a.example")
    with pytest.raises(UnverifiedNote):
        note.open_note(note.sign_note("hello\n", impostor), [a.verifier()])
    # Re-signing keeps the others' signatures.
    again = note.sign_note(opened, Ed25519Signer.generate("d.example"))
    assert [s.name for s in note.parse_note(again).unverified] == [
        "a.example",
        "b.example",
        "d.example",
    ]


def test_a_bad_signature_by_a_known_key_refuses_the_note() -> None:
    s = Ed25519Signer.generate("log.example")
    msg = note.sign_note("a\nb\n", s)
    with pytest.raises(InvalidNoteSignature) as exc:
        note.open_note(msg.replace(b"a\nb", b"a\nc"), [s.verifier()])
    assert exc.value.reason == "invalid_signature" and exc.value.name == "log.example"
    # Same key hash on a forged signature: refused too.
    line = NoteSignature("log.example", s.key_hash, bytes(64)).line
    with pytest.raises(InvalidNoteSignature):
        note.open_note(b"a\nb\n\n" + line.encode() + b"\n", [s.verifier()])


def _sig_line(name: str = "k.example") -> str:
    return NoteSignature(name, 0x01020304, bytes(64)).line


@pytest.mark.parametrize(
    "msg",
    [
        b"no signatures\n",
        b"text\n\n",
        b"text\n\n" + _sig_line().encode(),  # no final newline
        b"text\r\n\n" + _sig_line().encode() + b"\n",
        b"te\x00xt\n\n" + _sig_line().encode() + b"\n",
        b"\xff\xfe\n\n" + _sig_line().encode() + b"\n",
        b"text\n\n- k.example AQIDBAAA\n",  # hyphen, not an em dash
        "text\n\n— k.example\n".encode(),
        "text\n\n—  AQIDBAAA\n".encode(),
        "text\n\n— a+b AQIDBAAA\n".encode(),
        "text\n\n— k.example AQIDBA==\n".encode(),  # 4 bytes: no signature
        "text\n\n— k.example AQIDBAAA=\n".encode(),  # bad padding
        "text\n\n— k.example AQIDBAA\n".encode(),  # unpadded
        "text\n\n— k.example AQIDBAAB\n".encode().replace(b"AAB", b"AA B"),
        "text\n\n— k.example AQIDBAAAAB==\n".encode(),  # non-canonical trailing bits
        ("text\n\n" + _sig_line() + "\n\n").encode(),
    ],
)
def test_malformed_notes_refused(msg: bytes) -> None:
    with pytest.raises(MalformedNote):
        note.parse_note(msg)


def test_limits() -> None:
    s = Ed25519Signer.generate("k.example")
    msg = note.sign_note("x" * 1000 + "\n", s)
    with pytest.raises(NoteTooLarge):
        note.open_note(msg, [s.verifier()], limits=NoteLimits(max_bytes=500))
    many = note.sign_note("x\n", *[Ed25519Signer.generate(f"k{i}.example") for i in range(17)])
    note.parse_note(many)  # at least 16 must be accepted (the spec)
    with pytest.raises(TooManySignatures):
        note.parse_note(many, limits=NoteLimits(max_signatures=16))
    with pytest.raises(MalformedNote):
        note.sign_note("no newline", s)
    with pytest.raises(MalformedNote):
        note.sign_note("tab\there\n", s)


# --- Cosignatures -------------------------------------------------------------------------


def test_cosignature_round_trip_and_message() -> None:
    w = CosignatureV1Signer.generate("witness.example/w1", clock=lambda: 1679315147)
    body = C2SP_CHECKPOINT_BODY.encode()
    sig = w.sign(body)
    assert len(sig) == 72 and int.from_bytes(sig[:8], "big") == 1679315147
    # The message of tlog-cosignature §Ed25519 signed message, byte for byte.
    assert note.cosignature_v1_message(1679315147, body) == (
        b"cosignature/v1\ntime 1679315147\n" + body
    )
    v = CosignatureV1Verifier.from_vkey(w.verifier().vkey)
    assert v.verify(body, sig)
    assert not v.verify(body + b"ext\n", sig)
    later = (1679315148).to_bytes(8, "big") + sig[8:]
    assert not v.verify(body, later)
    assert not v.verify(body, (1 << 63).to_bytes(8, "big") + sig[8:])
    assert not v.verify(body, sig[:-1])
    # Same Ed25519 key as a note key: another key hash, and not valid as a note signature.
    plain = Ed25519Verifier(w.name, w.public_key)
    assert plain.key_hash != v.key_hash
    assert not plain.verify(body, sig[8:])
    with pytest.raises(ValueError):
        w.sign_at(1 << 63, body)
    assert CosignatureV1Signer.from_skey(w.skey).vkey == w.vkey


def test_c2sp_cosignature_example_line() -> None:
    # The example cosignature line of C2SP tlog-cosignature: 4-byte key hash, the
    # timestamp of its example message (1679315147), a 64-byte signature.
    parsed = note.parse_note((C2SP_CHECKPOINT_BODY + "\n" + C2SP_COSIG_LINE + "\n").encode())
    (sig,) = parsed.unverified
    assert sig.name == "witness.example.com/w1"
    assert sig.cosignature_timestamp() == 1679315147
    assert len(sig.signature) == 72


# --- Checkpoints --------------------------------------------------------------------------


def test_c2sp_checkpoint_body() -> None:
    cp = Checkpoint.from_text(C2SP_CHECKPOINT_BODY)
    assert cp.origin == "example.com/behind-the-sofa" and cp.size == 20852163
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.to_text() == C2SP_CHECKPOINT_BODY


@given(
    names,
    st.integers(0, (1 << 63) - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(names, max_size=3),
)
def test_checkpoint_round_trip(origin: str, size: int, root: bytes, ext: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(ext))
    assert Checkpoint.from_text(cp.to_text()) == cp


ROOT_B64 = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"o\n1\n{ROOT_B64}",  # no final newline
        "o\n1\n",
        f"\n1\n{ROOT_B64}\n",
        f"o\n01\n{ROOT_B64}\n",
        f"o\n00\n{ROOT_B64}\n",
        f"o\n+1\n{ROOT_B64}\n",
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n 1\n{ROOT_B64}\n",
        f"o\n1_000\n{ROOT_B64}\n",
        f"o\n\u0661\n{ROOT_B64}\n",  # Arabic-Indic one
        f"o\n9223372036854775808\n{ROOT_B64}\n",
        f"o\n99999999999999999999\n{ROOT_B64}\n",
        "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "o\n1\n" + ROOT_B64.rstrip("=") + "\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",  # non-canonical
        f"o\n1\n{ROOT_B64}\n\n",  # empty extension line
        f"o\n1\n{ROOT_B64}\next\n\nmore\n",
    ],
)
def test_malformed_checkpoints_refused(text: str) -> None:
    with pytest.raises(MalformedCheckpoint):
        Checkpoint.from_text(text)


def test_open_checkpoint() -> None:
    log = Ed25519Signer.generate("hub.example/log")
    w1 = CosignatureV1Signer.generate("leksand.example/w", clock=lambda: 1_700_000_000)
    w2 = CosignatureV1Signer.generate("tibro.example/w", clock=lambda: 1_700_000_001)
    stranger = CosignatureV1Signer.generate("other.example/w")
    cp = Checkpoint("hub.example/log", 42, bytes(range(32)))
    signed = note.sign_note(cp.to_text(), log)
    cosigned = note.sign_note(note.parse_note(signed), w1, w2, stranger)
    got = open_checkpoint(cosigned, log.verifier(), witnesses=[w1.verifier(), w2.verifier()])
    assert got.checkpoint == cp
    assert got.cosigners == {"leksand.example/w", "tibro.example/w"}
    assert {c.timestamp for c in got.cosignatures} == {1_700_000_000, 1_700_000_001}
    assert [s.name for s in got.note.unverified] == ["other.example/w"]
    # Witnesses alone do not make a checkpoint.
    only_witnessed = note.sign_note(cp.to_text(), w1)
    with pytest.raises(NotSignedByLog):
        open_checkpoint(only_witnessed, log.verifier(), witnesses=[w1.verifier()])
    with pytest.raises(UnverifiedNote):
        open_checkpoint(only_witnessed, log.verifier())
    with pytest.raises(OriginMismatch):
        open_checkpoint(signed, log.verifier(), origin="elsewhere.example/log")
    other = note.sign_note(Checkpoint("elsewhere.example/log", 1, bytes(32)).to_text(), log)
    with pytest.raises(OriginMismatch):
        open_checkpoint(other, log.verifier())
    # A forged cosignature by a known witness refuses the whole checkpoint.
    forged = NoteSignature(w1.name, w1.key_hash, (1).to_bytes(8, "big") + bytes(64))
    bad = note.format_note(cp.to_text(), [*note.parse_note(signed).unverified, forged])
    with pytest.raises(InvalidNoteSignature):
        open_checkpoint(bad, log.verifier(), witnesses=[w1.verifier()])
    with pytest.raises(MalformedCheckpoint):
        open_checkpoint(note.sign_note("hub.example/log\n1\n", log), log.verifier())
    assert cpmod.cosignature_of(got.note.signatures[1]).name == "leksand.example/w"
