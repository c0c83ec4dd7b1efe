"""A TCP proxy a test can cut and restore, to make a real server unreachable."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class CuttableProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every connection and refuses new
    ones until `restore()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._up = True
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _accept_loop(self) -> None:
        while True:
            with self._lock:
                listener = self._listener if self._up else None
            if listener is None:
                threading.Event().wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except OSError:
                continue  # listener closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if not self._up:
                    client.close()
                    upstream.close()
                    continue
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):  # ValueError: a socket closed under select()
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._sockets -= {a, b}

    def cut(self) -> None:
        """Reset every open connection and refuse new ones."""
        with self._lock:
            self._up = False
            self._listener.close()
            # Shut down, not closed: each pump wakes up to the end of its connection and
            # closes its own sockets, never one it is waiting on.
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()

    def restore(self) -> None:
        """Accept connections again on the same port."""
        with self._lock:
            self._listener = self._listen(self.port)
            self._up = True
