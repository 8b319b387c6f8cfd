"""A member-directory version is adopted only once proven in the hub's transparency log
(issue 11, point 4).

The directory binds keys to kommuner; a hub that showed one member a directory it never
logged could bind a key of its own for that member alone. So before a node keeps a new
version (:func:`samverka.membership.member.refresh_directory`), it asks the hub for the
version's inclusion proof (GetInclusionProofs with ``directory_version``) in the tree of
its accepted checkpoint, a newer one accepted by the witness rules when needed, waiting
up to ``[witness] proof_wait_seconds`` (the log takes a new version within a sequencer
round; the witnesses then cosign it). The leaf is recomputed from the bytes received:
the version and the SHA-256 of the signed ``directory`` bytes
(:func:`~samverka.protocol.logleaf.directory_leaf`). Refused: ``not_in_log`` or
``bad_proof``, and the held directory stays.

Not proven: the directory received at enrollment (there is no accepted checkpoint yet:
first sight, as the hub key is pinned), and any while the held directory names no log
key and the node never accepted a checkpoint (a hub older than the log; see
:func:`samverka.membership.mirror.hub_prover`), and the version that first carries a
rotation of the hub's keys (it stands on the old key's signature of the rotation). A
version that does not decode, or is not newer than the one held, is left to
``accept_directory`` to refuse with its own reason.
"""

from __future__ import annotations

import asyncio
import logging

from google.protobuf.message import DecodeError

from samverka.config import NodeConfig
from samverka.node import load_directory
from samverka.protocol.directory import directory_digest
from samverka.transport.hubclient import HubClient
from samverka.v1 import directory_pb2

log = logging.getLogger("samverka.membership.directory_proof")


async def prove_directory(
    config: NodeConfig, hub: HubClient, signed: directory_pb2.SignedDirectory
) -> None:
    """Prove ``signed`` in the hub's log when it would be a new version for this node;
    raises NotInLog / BadProof (EntryRefused, origin empty, sequence = the version)."""
    from samverka.replication.logproof import LogProver
    from samverka.replication.logstate import LogAcceptor, LogState, LogStateError, log_verifier_for

    try:
        directory = directory_pb2.Directory.FromString(signed.directory)
    except DecodeError:
        return  # accept_directory refuses it as malformed
    if directory.HasField("hub_rotation"):
        # The version that first carries a rotation of the hub's keys (perhaps of the log
        # key itself) stands on the old key's signature of the rotation, TUF's way; the
        # log under a new key is not one this node's accepted checkpoint can prove.
        return
    version = directory.version
    held = await asyncio.to_thread(load_directory, config)
    digest = directory_digest(signed.directory)
    if held is not None and (version <= held.version or digest == held.digest):
        return  # nothing new: accept_directory keeps or refuses it
    try:
        await asyncio.to_thread(log_verifier_for, config)
    except LogStateError:
        if held is None or LogState(config.dir).accepted() is None:
            return  # first sight, or a hub older than the log (mirror.hub_prover says so)
        raise
    prover = LogProver(
        hub.get_inclusion_answer,
        LogAcceptor.for_node(config, hub),
        wait=config.witness.proof_wait_seconds,
        hub=f"the hub ({hub.address})",
    )
    await prover.prove_directory(version, digest)
    log.debug(
        "directory version %d proven in the hub's log (checkpoint of %d leaves)",
        version,
        prover.stats.checkpoint_size,
    )
