"""A Docker daemon that can go away: a unix-socket proxy to the real one, cut at will.

``sandbox.host`` (or ``DOCKER_HOST``) pointed at :attr:`DockerProxy.url` reaches the
real daemon through it; :meth:`DockerProxy.cut` closes every connection and the
socket, which a client sees as a daemon that died for good. The containers made
through it live on in the real daemon: the caller removes them.
"""

from __future__ import annotations

import os
import socket
import threading

REAL = "/var/run/docker.sock"


class DockerProxy:
    """Forward ``path`` to the real Docker socket until :meth:`cut`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(64)
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(REAL)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """The daemon is gone: refuse new connections, break the open ones."""
        self._server.close()
        os.unlink(self.path)
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
