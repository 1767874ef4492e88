"""Read ahead: produce the next items of an iterator in a background thread while the caller works.

Decoding Parquet/CSV releases the GIL, so reading batch i+1 overlaps assigning and routing batch i.
Order is preserved and at most ``depth`` items wait, so memory stays bounded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, fetched up to ``depth`` ahead in a daemon thread.

    An exception raised by the producer is re-raised in the consumer at the same position.
    Closing the generator early stops the producer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as error:  # forwarded to the consumer
            buffer.put(error)

    thread = threading.Thread(target=produce, name="fedpart-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # drain so a blocked put can finish
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
