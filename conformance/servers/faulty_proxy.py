"""A fault-injecting TCP relay for reliability tests: resets mid-stream, stalls and added latency.

``FaultyProxy(target_port, reset_rate=0.1)`` relays ``127.0.0.1:<port> -> 127.0.0.1:<target_port>``
and resets (RST, not FIN) about ``reset_rate`` of the exchanges it relays (a client's bytes after
an answer start one) after a random number of bytes in either direction, so requests and responses
are cut mid-body. While ``stall`` is true it
forwards nothing on any connection, new or open (a peer that hangs; set it at any time);
``latency`` delays every chunk. Faults
come from a seeded generator, so a failing run can be replayed. Transparent otherwise: the Host
header (and so an S3 signature over it) passes unchanged, and a half-close is relayed as one.

``listen`` and ``target_host`` place it where a peer is told to connect rather than where the test
chooses: an HDFS DataNode's address comes from the NameNode, so its proxy listens on the address the
DataNode advertises (another loopback address, same port) and relays to where it is bound.
"""

from __future__ import annotations

import contextlib
import math
import random
import selectors
import socket
import struct
import threading
import time

from conformance.servers.launcher import free_port


class FaultyProxy:
    """A TCP relay that breaks connections on purpose; counts what it did in ``resets``."""

    def __init__(
        self,
        target_port: int,
        *,
        reset_rate: float = 0.0,
        reset_within: int = 1024 * 1024,
        stall: bool = False,
        latency: float = 0.0,
        seed: int = 14,
        listen: tuple[str, int] | None = None,
        target_host: str = "127.0.0.1",
    ) -> None:
        self.target_port = target_port
        self.target_host = target_host
        self.reset_rate = reset_rate
        self.reset_within = reset_within
        self.stall = stall
        self.latency = latency
        self.host, self.port = listen if listen is not None else ("127.0.0.1", free_port())
        self.connections = 0
        self.exchanges = 0
        self.resets = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"faulty-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _roll(self, relayed: int) -> int | None:
        """Where to reset the exchange starting at byte ``relayed`` of a connection, if at all."""
        with self._lock:
            self.exchanges += 1
            if self._random.random() >= self.reset_rate:
                return None
            # log-uniform: as many cuts in headers and small bodies as in the middle of large ones
            return relayed + max(1, int(math.exp(self._random.uniform(0, math.log(self.reset_within)))))

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.target_host, self.target_port))
        except OSError:
            _close(client)
            return
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        relayed = 0
        reset = False
        reset_after: int | None = None
        answering = True  # the next bytes from the client start an exchange
        try:
            while not self._stopping.is_set():
                if self.stall:  # hold the connection, forward nothing
                    self._stopping.wait(0.1)
                    continue
                for key, _ in selector.select(timeout=0.2):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:  # a half-close (HDFS clients send FIN, then wait for acks): pass it on
                        selector.unregister(source)
                        key.data.shutdown(socket.SHUT_WR)
                        if not selector.get_map():
                            return
                        continue
                    if source is client and answering:
                        reset_after = self._roll(relayed)
                    answering = source is upstream
                    if reset_after is not None and relayed + len(data) >= reset_after:
                        key.data.sendall(data[: max(0, reset_after - relayed)])
                        reset = True
                        return
                    if self.latency:
                        time.sleep(self.latency)
                    key.data.sendall(data)
                    relayed += len(data)
        except OSError:
            return
        finally:
            selector.close()
            if reset:
                with self._lock:
                    self.resets += 1
            for sock in (client, upstream):
                _close(sock, abort=reset)

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._thread.join(timeout=2)


def _close(sock: socket.socket, abort: bool = False) -> None:
    """Close; with ``abort`` as a reset (RST): the peer sees ECONNRESET, not a clean end of stream."""
    with contextlib.suppress(OSError):
        if abort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
