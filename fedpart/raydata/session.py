"""Running fedpart's per-piece functions as Ray Data tasks, with fedpart's errors kept intact."""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fedpart.errors import FedpartError, InputError
from fedpart.io.sources import Source, SourceUnit
from fedpart.partitioners.params import check_int_at_least

#: Seconds to wait for a TCP connection to a ``host:port`` ``--ray-address`` before ``ray.init``,
#: which retries an unreachable cluster for minutes instead of failing.
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> Any:
    """``ray`` with Ray Data, or an :class:`InputError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data needs ray[data]'s dependencies)
    except ImportError as error:
        raise InputError(
            f"--engine ray needs Ray Data ({error}); install it with: pip install 'fedpart[ray]'"
        ) from None
    return ray


@contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """A connected Ray: the one already initialised in this process, else ``ray.init(address)``
    (``None``: start a local Ray; ``"auto"``: join the running cluster), shut down on exit if started here.
    A ``host:port`` address is first probed with :func:`check_reachable`: ``ray.init`` would retry an
    unreachable one for minutes.

    Raises:
        InputError: Ray is not installed, or the cluster at ``address`` cannot be reached.
    """
    # keep Ray's start quiet: accept its future default instead of a FutureWarning
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise connection_error(address, error) from None
        started = True
    import logging

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-dataset lines on the console
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def ray_endpoint(address: str | None) -> tuple[str, int] | None:
    """``(host, port)`` of an address ``host:port`` or ``ray://host:port`` (``[::1]:6379`` too);
    ``None`` for ``None``, ``"auto"``, ``"local"`` and anything else (left to ``ray.init`` to judge)."""
    if address is None:
        return None
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit():
        return None
    return host.removeprefix("[").removesuffix("]"), int(port)


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Open (and close) a TCP connection to the ``host:port`` of ``address`` within ``timeout``
    seconds and check that a gRPC server answers there, Ray's GCS for a GCS address; nothing for
    addresses without a port
    (:func:`ray_endpoint`).

    Raises:
        InputError: nothing accepts connections there (closed port, unknown host), what does
            is not a gRPC server (:func:`answers_http2`) or, for a GCS address (not ``ray://``), a
            gRPC server that is not Ray's GCS (:func:`serves_ray_gcs`), the port is above 65535, or
            a ``ray://`` address has no port.
    """
    endpoint = ray_endpoint(address)
    if endpoint is None:
        host = (address or "").removeprefix("ray://")
        if address is not None and address.startswith("ray://") and host and ":" not in host.rpartition("]")[2]:
            # gRPC would try port 443 and Ray retry it for 30 s
            raise InputError(f"--ray-address {address!r} has no port; Ray Client listens on 10001 unless told "
                             f"otherwise: --ray-address ray://{host}:10001")
        return
    if endpoint[1] > 65535:  # getaddrinfo would quietly take it modulo 65536
        raise connection_error(address, ValueError(f"port {endpoint[1]} is above 65535"))
    try:
        with socket.create_connection(endpoint, timeout=timeout) as connection:
            speaks_grpc = answers_http2(connection)
    except OSError as error:
        raise connection_error(address, error) from None
    if not speaks_grpc:  # e.g. a web server on that port: Ray would wait for its GCS there for minutes
        raise connection_error(address, ConnectionError(
            f"something listens on port {endpoint[1]} but does not answer as Ray does (gRPC); give the head "
            "node's GCS port (6379 unless `ray start --port` said otherwise) or ray://HOST:10001"))
    if not address.startswith("ray://") and serves_ray_gcs(*endpoint, timeout=timeout) is False:
        # another gRPC service: Ray would retry it for minutes (bound to 127.0.0.1 only, for ever:
        # Ray dials the machine's address instead)
        raise connection_error(address, ConnectionError(
            f"a gRPC server listens on port {endpoint[1]} but it is not Ray's GCS; give the head node's GCS "
            "port (6379 unless `ray start --port` said otherwise) or ray://HOST:10001"))


#: A method every Ray GCS serves; Ray's own clients call it first when they connect.
GCS_PROBE_METHOD = "/ray.rpc.NodeInfoGcsService/GetClusterId"


def serves_ray_gcs(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> bool | None:
    """Whether the gRPC server at ``host:port`` serves Ray's GCS: ``False`` when it answers
    :data:`GCS_PROBE_METHOD` with UNIMPLEMENTED (another service), ``True`` when it answers it,
    ``None`` when that cannot be told (no grpcio, another error: left to ``ray.init``)."""
    try:
        import grpc
    except ImportError:
        return None
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(GCS_PROBE_METHOD)  # no serialisers: the empty request is bytes
        try:
            call(b"", timeout=timeout)
        except grpc.RpcError as error:
            return False if error.code() == grpc.StatusCode.UNIMPLEMENTED else None
    return True


#: An HTTP/2 client's first bytes: the connection preface, then an empty SETTINGS frame.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def answers_http2(connection: socket.socket) -> bool:
    """Whether the server on ``connection`` answers an HTTP/2 preface with a SETTINGS frame, as
    every gRPC server does first (Ray's GCS and Ray Client are gRPC servers); a server of another
    protocol answers otherwise or closes. Timeouts are those of ``connection``.

    Raises:
        OSError: the connection fails or times out.
    """
    connection.sendall(HTTP2_PREFACE)
    header = b""
    while len(header) < 9:  # a frame header: 3 bytes length, 1 byte type (4: SETTINGS), ...
        chunk = connection.recv(9 - len(header))
        if not chunk:
            return False
        header += chunk
    return header[3] == 4


def connection_error(address: str | None, error: BaseException) -> InputError:
    """The error for a Ray cluster at ``address`` that cannot be joined, with ``error``'s first line."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return InputError(f"cannot connect to Ray at --ray-address {address!r} ({first}); start the "
                      "cluster (`ray start --head`) or leave --ray-address out for a local Ray")


def guarded(func: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """Wrap a per-piece function for :func:`run_pieces`: its result (or its :class:`FedpartError`)
    travels pickled, so the driver re-raises fedpart's one-line errors instead of Ray's tracebacks."""

    def task(row: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        try:
            result: Any = func(int(row["piece"]), **{k: resolve(v) for k, v in kwargs.items()})
        except FedpartError as error:
            result = error
        return {"piece": int(row["piece"]), "payload": pickle.dumps(result)}

    task.__name__ = task.__qualname__ = func.__name__
    return task


def run_pieces(func: Callable[..., Any], pieces: int, **shared: Any) -> list[Any]:
    """``func(piece, **shared_values)`` for every piece in parallel on Ray Data; results in piece order.

    ``shared`` values are put in Ray's object store once (large plans and sources are not copied
    into every task); ``func`` must be a module-level function wrapped with :func:`guarded`.
    """
    import ray

    refs = {name: ray.put(value) for name, value in shared.items()}
    dataset = ray.data.from_items([{"piece": i} for i in range(pieces)], override_num_blocks=max(pieces, 1))
    rows = dataset.map(func, fn_kwargs=refs, num_cpus=1).take_all()
    results: list[Any] = [None] * pieces
    for row in rows:
        results[int(row["piece"])] = pickle.loads(row["payload"])
    for result in results:
        if isinstance(result, FedpartError):
            raise result
    return results


def split_pieces(source: Source, piece_rows: int | None, default: int) -> list[SourceUnit]:
    """The input's pieces (:meth:`Source.split`: at least ``piece_rows`` rows each where the format
    allows; ``None``: ``default``) with absolute file paths: a Ray worker's working directory is not
    the driver's when Ray was started elsewhere (``ray start``, ``--ray-address auto``).

    Raises:
        InputError: ``piece_rows`` is not an integer >= 1.
    """
    rows = default if piece_rows is None else check_int_at_least(piece_rows, "--piece-rows", 1)
    return [dataclasses.replace(unit, file=os.path.abspath(unit.file)) for unit in source.split(rows)]


def resolve(value: Any) -> Any:
    """A shared value inside a task (an object reference from :func:`run_pieces`)."""
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value
