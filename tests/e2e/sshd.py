"""A real sshd on 127.0.0.1 for one test, letting in a key made for it."""

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.terminal import until
from tests.e2e.tools import require_tool

SSHD = Path("/usr/sbin/sshd")
PRIVILEGE_SEPARATION = Path("/run/sshd")  # sshd refuses to start as root without it
SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {folder}/host_key
AuthorizedKeysFile {folder}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PidFile {folder}/sshd.pid
StrictModes no
UsePAM no
"""
CLIENT_OPTIONS = [
    *("-o", "StrictHostKeyChecking=no"),
    *("-o", "UserKnownHostsFile=/dev/null"),
    *("-o", "LogLevel=ERROR"),
    *("-o", "BatchMode=yes"),
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


@contextmanager
def sshd(folder: Path) -> Iterator[list[str]]:
    """Run sshd with its keys in folder (made here); killed at the end.

    Yields the ssh client's options that log in to it with no questions asked; the
    destination is 127.0.0.1. Without sshd or ssh the test is skipped (failed on CI).
    """
    server_path = require_tool("sshd", "openssh-server", SSHD)
    for tool in ("ssh", "ssh-keygen"):
        require_tool(tool, "openssh-client")
    folder.mkdir()
    for key in ("host_key", "client_key"):
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)]
        subprocess.run(keygen, check=True, capture_output=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(SSHD_CONFIG.format(port=port, folder=folder))
    if os.geteuid() == 0:
        PRIVILEGE_SEPARATION.mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    with log.open("wb") as output:
        command = [server_path, "-D", "-e", "-f", str(config)]
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    try:
        until(
            lambda: server.poll() is not None or accepts(port),
            lambda: f"sshd never listened on port {port}; its log:\n{log.read_text()}",
            timeout=20,
        )
        assert server.poll() is None, f"sshd exited ({server.returncode}):\n{log.read_text()}"
        yield ["-i", str(folder / "client_key"), "-p", str(port), *CLIENT_OPTIONS]
    finally:
        server.kill()
        server.wait()
