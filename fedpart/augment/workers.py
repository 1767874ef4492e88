"""Run a function over a stream of work items in worker processes, in order, with bounded memory.

``multiprocessing.Pool.imap`` reads its whole input ahead, which on a 1 GB corpus means holding it
all; :func:`map_ordered` keeps at most ``max_pending`` items in flight and yields results in input
order. Workers are started with ``spawn`` (no fork of a process that holds Arrow or BLAS threads) and
build their own state once with ``initializer``. An exception in the initializer or in a task is
re-raised in the caller, so a worker that cannot start does not make the pool restart it forever.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_init_error: BaseException | None = None


def _guarded_init(initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    global _init_error
    try:
        initializer(*initargs)
    except BaseException as error:  # re-raised by the first task of this worker
        _init_error = error


def _guarded_call(func: Callable[[T], R], item: T) -> R:
    if _init_error is not None:
        raise _init_error
    return func(item)


def map_ordered(
    func: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...] = (),
    max_pending: int | None = None,
) -> Iterator[R]:
    """``func(item)`` for each item, computed by ``workers`` processes, yielded in input order.

    ``func`` and ``initializer`` must be module-level functions (they are pickled by reference);
    ``initializer(*initargs)`` runs once in each worker. At most ``max_pending`` items (default
    ``2 * workers``) are in flight, so memory does not grow with the input.
    """
    limit = max_pending or 2 * workers
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_guarded_init, initargs=(initializer, initargs)) as pool:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.apply_async(_guarded_call, (func, item)))
            if len(pending) >= limit:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
