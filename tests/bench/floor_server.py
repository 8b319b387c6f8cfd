"""The floor of the design card's stack, for the node's idle RSS target (issue 15).

A bare grpc.aio server on uvloop that imports what the design card names — grpcio,
protobuf, cryptography and sqlmodel — and uses each: it loads a node's mTLS
certificate and key with cryptography, serves the standard health service over mutual
TLS, and keeps one SQLModel table in a SQLite file (WAL), written and read once. No
Samverka code. ``run.py`` starts it beside ``samverka node serve`` and compares their
idle RSS in the same run.

    python tests/bench/floor_server.py --tls NODE_DIR/tls --db FILE --address-file FILE

Writes the bound address to the address file once serving; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlmodel import Field, Session, SQLModel, create_engine, select


class Item(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str


async def serve(args: argparse.Namespace) -> None:
    tls = Path(args.tls)
    cert_pem, key_pem = (tls / "node.pem").read_bytes(), (tls / "node.key").read_bytes()
    # cryptography in use, as a node uses it for its certificate and keys.
    x509.load_pem_x509_certificate(cert_pem)
    serialization.load_pem_private_key(key_pem, password=None)

    engine = create_engine(f"sqlite:///{args.db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Item(name="floor"))
        session.commit()
        session.exec(select(Item)).all()

    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [(key_pem, cert_pem)],
        root_certificates=(tls / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port(args.listen, credentials)
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    Path(args.address_file).write_text(f"127.0.0.1:{port}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await server.stop(1)
    engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tls", required=True, help="folder with node.pem, node.key and ca.pem")
    p.add_argument("--db", required=True)
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--address-file", required=True)
    args = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args))


if __name__ == "__main__":
    main()
