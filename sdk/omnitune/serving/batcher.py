"""Dynamic batching: concurrent requests are gathered for up to ``max_wait_s`` or until
``max_batch_size`` inputs, predicted as one batch in a worker thread, and answered each with its
own slice. A request whose input is bad fails alone: the batch is then retried request by request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from omnitune.errors import DataError

Predict = Callable[[list[Any]], list[dict[str, Any]]]


class Batcher:
    """``await batcher.submit(inputs)`` from request handlers; ``run()`` is the one consumer task."""

    def __init__(self, predict: Predict, max_batch_size: int = 32, max_wait_s: float = 0.005) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.queue: asyncio.Queue[tuple[list[Any], asyncio.Future[list[dict[str, Any]]]]] = asyncio.Queue()
        self.batch_sizes: list[int] = []

    async def submit(self, inputs: list[Any]) -> list[dict[str, Any]]:
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        await self.queue.put((inputs, future))
        return await future

    async def run(self) -> None:
        """Gather and predict batches until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            size, deadline = len(pending[0][0]), loop.time() + self.max_wait_s
            while size < self.max_batch_size and (left := deadline - loop.time()) > 0:
                try:
                    pending.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
                size += len(pending[-1][0])
            await self._answer(pending)

    async def _answer(self, pending: list[tuple[list[Any], asyncio.Future[list[dict[str, Any]]]]]) -> None:
        inputs = [item for request, _ in pending for item in request]
        self.batch_sizes.append(len(inputs))
        try:
            results = await asyncio.to_thread(self.predict, inputs)
        except DataError as error:
            if len(pending) > 1:  # find the bad request: answer each on its own
                for one in pending:
                    await self._answer([one])
                return
            _settle(pending[0][1], error=error)
            return
        except Exception as error:  # noqa: BLE001 - the request gets it; the batcher keeps running
            for _, future in pending:
                _settle(future, error=error)
            return
        start = 0
        for request, future in pending:
            _settle(future, results[start:start + len(request)])
            start += len(request)


def _settle(future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
