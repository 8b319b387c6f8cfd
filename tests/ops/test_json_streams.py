"""With ``--log-format json`` every line a ``serve`` process writes is JSON: stdout (what
it announces: the ports bound, ``stopped``) and stderr (its log, uvicorn's and grpc's,
a fatal error), so ``journalctl -u samverka-node -o cat | jq .`` never chokes.

Real processes: ``hub serve`` (member, public, web and metrics ports), an enrolled
``node serve`` pushing to and following it, the web catalog and /metrics asked over
HTTP, a refused call, both stopped with SIGTERM; then a ``node serve`` whose port is
taken fails with one JSON error line.
"""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

from hubkit import Procs, start_hub, wait_for
from opskit import enrolled_node

TIBRO = "1472"


def json_lines(path: Path) -> list[dict[str, object]]:
    """Every line of ``path`` parsed; the assertion names a line that is not JSON."""
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line!r}") from None
        assert isinstance(event, dict), line
        assert {"time", "level", "logger", "event", "message"} <= set(event), line
        events.append(event)
    return events


def test_every_line_of_node_and_hub_serve_is_json(procs: Procs) -> None:
    procs.env["SAMVERKA_LOG_FORMAT"] = "console"  # the option must win over [log]/env
    procs.env["SAMVERKA_METRICS_LISTEN"] = "127.0.0.1:0"
    procs.env["SAMVERKA_WEB_LISTEN"] = "127.0.0.1:0"
    procs.run(
        "hub", "init", "--dir", str(procs.tmp / "hub"),
        "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
    )  # fmt: skip
    # start_hub passes no log option: set it through the one the hub reads first.
    procs.env["SAMVERKA_LOG_FORMAT"] = "json"
    hub = start_hub(procs, procs.tmp / "hub")
    node_dir = enrolled_node(procs, hub, TIBRO, commands=False)
    procs.env["SAMVERKA_LOG_FORMAT"] = "console"
    node = procs.start(
        "node", "serve", "--dir", str(node_dir), "--log-format", "json", "--log-level", "debug",
        name="node",
    )  # fmt: skip
    wait_for(
        lambda: any(e["event"] == "serving" for e in json_lines(procs.tmp / "node.out")),
        30,
        "node serve to announce its port",
    )
    bound = json.loads((procs.tmp / "hub.addresses").read_text())
    for path in ("/", "/no-such-page", "/metrics"):
        base = bound["metrics"] if path == "/metrics" else bound["web"]
        try:
            with urllib.request.urlopen(f"http://{base}{path}", timeout=10) as reply:
                reply.read()
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    # A plain-TCP caller on the TLS member port: grpc logs a handshake failure, if anything.
    host, port = bound["member"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        sock.recv(100)
    for proc in (node, hub.proc):
        proc.send_signal(signal.SIGTERM)
    assert node.wait(timeout=30) == 0 and hub.proc.wait(timeout=30) == 0

    for name in ("hub", "node"):
        out = json_lines(procs.tmp / f"{name}.out")
        err = json_lines(procs.tmp / f"{name}.err")
        events = [e["event"] for e in out]
        assert "serving" in events and events[-1] == "stopped", out
        serving = [e for e in out if e["event"] == "serving"]
        assert all(str(e["address"]).startswith("127.0.0.1:") for e in serving)
        assert any(e["event"] == "metrics_serving" for e in out) or name == "node"
        assert err, f"{name} logged nothing"
    assert any(e["event"] == "web_serving" for e in json_lines(procs.tmp / "hub.out"))


def test_a_fatal_error_is_one_json_line(procs: Procs) -> None:
    node_dir = procs.tmp / "node"
    procs.run("node", "init", "--kommun", TIBRO, "--dir", str(node_dir))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        proc = procs.start(
            "node", "serve", "--dir", str(node_dir), "--listen", address, "--log-format", "json",
            name="busy",
        )  # fmt: skip
        assert proc.wait(timeout=30) != 0
    err = json_lines(procs.tmp / "busy.err")
    assert err and err[-1]["level"] == "error", err
    json_lines(procs.tmp / "busy.out")
