"""A generic gRPC client, as grpcurl is: it knows only the address and certificates.

It lists the services through server reflection, learns FeedService's message types
from the server's own descriptors (no generated code from Samverka), calls
GetNodeInfo and health's Check, and prints what it learnt as JSON. Uses the sync
gRPC API on purpose (grpcio-reflection's descriptor database is sync), in its own
process, so no process mixes sync and aio gRPC.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def call(
    channel: grpc.Channel,
    pool: descriptor_pool.DescriptorPool,
    service: str,
    method: str,
    request: dict[str, object],
) -> dict[str, object]:
    desc = pool.FindServiceByName(service).methods_by_name[method]
    req_cls = message_factory.GetMessageClass(desc.input_type)
    resp_cls = message_factory.GetMessageClass(desc.output_type)
    stub = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=resp_cls.FromString,
    )
    reply = stub(json_format.ParseDict(request, req_cls()), timeout=10)
    return json_format.MessageToDict(reply)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--tls", required=True, help="folder with ca.pem, member.pem, member.key")
    args = parser.parse_args()
    tls = Path(args.tls)
    creds = grpc.ssl_channel_credentials(
        root_certificates=(tls / "ca.pem").read_bytes(),
        private_key=(tls / "member.key").read_bytes(),
        certificate_chain=(tls / "member.pem").read_bytes(),
    )
    with grpc.secure_channel(args.address, creds) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        info = call(channel, pool, "samverka.v1.FeedService", "GetNodeInfo", {})
        health = call(
            channel, pool, "grpc.health.v1.Health", "Check", {"service": "samverka.v1.FeedService"}
        )
    print(json.dumps({"services": services, "node_info": info, "health": health}))


if __name__ == "__main__":
    main()
