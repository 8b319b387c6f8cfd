"""Run a command that stops when the demo dies: ``python -m samverka_hub.demo.guard PID -- CMD…``.

The demo stops its servers itself (try/finally, also on Ctrl-C and SIGTERM). This
covers the one case it cannot: the demo killed outright (SIGKILL, an OOM kill, a CI
timeout). Linux's ``PR_SET_PDEATHSIG`` asks the kernel to send SIGTERM to this process
when its parent exits; the setting survives ``exec``, so the server this process
becomes inherits it. If the parent ``PID`` is already gone when the setting is made,
the command is not started at all.

Only the standard library is imported here, so the guard costs a few milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        usage = "usage: python -m samverka_hub.demo.guard PARENT_PID -- COMMAND [ARGS…]"
        print(usage, file=sys.stderr)
        return 2
    parent = int(argv[0])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        print(f"prctl failed: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    if os.getppid() != parent:
        return 1  # the demo died before the setting took effect
    command = argv[2:]
    os.execvp(command[0], command)
    return 1  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
