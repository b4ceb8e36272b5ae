"""A unix socket per sandbox that its supervisor reaches the host through, past Docker.

A request through a ``docker exec`` stream crosses the daemon and the
container's shim each way (~0.7 ms a round trip on a 2-core VM); through a
unix socket bind-mounted into the container it costs ~0.01 ms. The host
listens, the supervisor connects (:meth:`SupervisorChannel.attach
<toolgym.sandbox.channel.SupervisorChannel.attach>`), so nothing in the
container can create a file on the host:

- on the host the socket lies in a directory of this process's user, mode
  0700, created once per process and removed at exit (other users of the host
  cannot reach it);
- in the container it is a read-only bind mount at :data:`CONTAINER_PATH`,
  inside a tmpfs only the container's root can enter (the agent's uid gets
  ``EACCES`` whatever the host user's uid is);
- whatever connects must prove the channel's token in its first frame, or it is
  closed, and the channel stays on the exec stream.

Only for a daemon on this machine (``is_local``): a remote daemon's containers
cannot reach this host's files, and a daemon whose ``/tmp`` is not this one's
(a snap's, a VM's) leaves the supervisor nothing to connect to; both keep the
exec stream, which is also the supervisor's lifeline (it exits when that closes).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import tempfile
from pathlib import Path

from toolgym.sandbox.owner import process_start_time

CONTAINER_DIR = "/run/toolgym-host"
"""A tmpfs of mode 0700 for root in each container: the socket's parent there."""
CONTAINER_TMPFS = "rw,size=16k,mode=0700,uid=0,gid=0"
"""Its tmpfs options."""
CONTAINER_PATH = f"{CONTAINER_DIR}/host.sock"
"""Where the supervisor sees the host's socket (a read-only bind mount)."""
PREFIX = "toolgym-sockets-"
"""Socket directories are ``PREFIX<pid>-<start time>-<random>`` in the temp dir."""
_DIR: list[Path] = []


def _process_dir() -> Path:
    """This process's directory of sockets, made on first use and removed at exit (after
    ``kill -9``, by :func:`reap_orphan_dirs`)."""
    if not _DIR:
        pid = os.getpid()
        path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{pid}-{process_start_time(pid)}-"))
        atexit.register(shutil.rmtree, path, True)
        _DIR.append(path)
    return _DIR[0]


def reap_orphan_dirs() -> int:
    """Remove this user's socket directories whose process is provably dead; how many."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        pid, _, rest = path.name.removeprefix(PREFIX).partition("-")
        start = rest.rpartition("-")[0]
        try:
            mine = path.lstat().st_uid == os.getuid() and path.is_dir()
            dead = process_start_time(int(pid)) != start
        except (OSError, ValueError):
            continue
        if mine and dead:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


class HostSocket:
    """One sandbox's listening socket on the host (``docker.container_options`` mounts it)."""

    def __init__(self) -> None:
        self.path = _process_dir() / f"{secrets.token_hex(8)}.sock"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.listener.bind(str(self.path))
            # Container root holds no file-permission bypass: when this process is not
            # root it is "other" here. The 0700 directory keeps the host's other users out.
            os.chmod(self.path, 0o666)
            self.listener.listen(4)
            self.listener.setblocking(False)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        """Stop listening and remove the socket file. Safe to call twice."""
        self.listener.close()
        self.path.unlink(missing_ok=True)
