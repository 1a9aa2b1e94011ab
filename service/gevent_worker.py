"""gunicorn's gevent worker, fair between connections.

A gevent worker runs each request to completion (no thread switching mid-request, so no
GIL contention), and a request that waits on a FHIR server yields, so many can wait at
once. But gunicorn's keep-alive loop reads a connection's next request straight away:
when it is already there, that connection is served again and again while the others
starve (p99 above a second with 16 connections in bench/servers.py). Yielding with
gevent.sleep(0) is not enough: the hub runs such callbacks, each a whole request, for
many requests before it polls the sockets again. So after each request the connection
waits for its socket to be readable like any other: every connection and FHIR answer
that is ready gets its turn in the same pass of the loop (round robin).
"""
from __future__ import annotations

from gevent.socket import wait_read
from gunicorn.workers.ggevent import GeventWorker


class FairGeventWorker(GeventWorker):
    def handle_request(self, listener_name, req, sock, addr):
        super().handle_request(listener_name, req, sock, addr)
        # Not when stopping, nor when a pipelined next request is already read.
        if self.alive and not req.unreader.buf.tell():
            # An idle keep-alive connection is closed after `keepalive` seconds, as before.
            wait_read(sock.fileno(), timeout=self.cfg.keepalive,
                      timeout_exc=StopIteration("keep-alive timeout"))
