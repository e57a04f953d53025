"""The tenant's shared state (``client.state``) and memory (``client.memory``); see docs/state.md."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, cast

from .errors import GatewayError
from .events import ClientEventSink
from .types import MemoryEntry, MemoryEntryInput, StateChange, StateEntry, StateListItem, StatePage, StateSetResult

logger = logging.getLogger("openclaw.state")

#: Sends one request and returns its result; the client's ``request``.
Send = Callable[[str, dict[str, Any]], Coroutine[Any, Any, Any]]
#: Called with each change a watch sees; may be a coroutine function.
ChangeListener = Callable[[StateChange], Any]

#: The largest page ``state.list`` gives, used when iterating over every key.
_LIST_PAGE_LIMIT = 1000


@dataclass(eq=False)
class StateWatch:
    """A watch started by :meth:`StateClient.watch`; ``await watch.close()`` ends it."""

    namespace: str
    prefix: str
    listener: ChangeListener
    _owner: StateClient

    async def close(self) -> None:
        """Ends the watch (at the gateway too, when no other watch of this client covers the same keys)."""
        await self._owner.unwatch(self)


class StateClient:
    """Keys with JSON values in namespaces, versioned for compare-and-set.

    Example::

        result = await client.state.set("orders", "o-1", {"step": "fetched"}, if_version=0)
        entry = await client.state.get("orders", "o-1")
        watch = await client.state.watch("orders", lambda change: print(change["key"], change["op"]))
    """

    def __init__(self, send: Send, events: ClientEventSink) -> None:
        self._send = send
        self._events = events
        self._watches: list[StateWatch] = []

    async def get(self, namespace: str, key: str) -> StateEntry | None:
        """A key's entry (``{namespace, key, value, version, updatedAt, expiresAt?}``), or ``None`` when absent."""
        try:
            return cast(StateEntry, await self._send("state.get", {"namespace": namespace, "key": key}))
        except GatewayError as error:
            if error.code == "NOT_FOUND":
                return None
            raise

    async def set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        ttl_ms: int | None = None,
        if_version: int | None = None,
    ) -> StateSetResult:
        """Writes a key. With ``if_version``, only if that is its version now (0: only if absent); otherwise
        raises ``CONFLICT`` with the current version in ``error.details["version"]``."""
        params: dict[str, Any] = {"namespace": namespace, "key": key, "value": value}
        if ttl_ms is not None:
            params["ttlMs"] = ttl_ms
        if if_version is not None:
            params["ifVersion"] = if_version
        return cast(StateSetResult, await self._send("state.set", params))

    async def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        """Deletes a key; returns whether it was there."""
        params: dict[str, Any] = {"namespace": namespace, "key": key}
        if if_version is not None:
            params["ifVersion"] = if_version
        return bool((await self._send("state.delete", params))["deleted"])

    async def list(
        self, namespace: str, *, prefix: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> StatePage:
        """One page of a namespace's keys; pass the ``cursor`` it gives to get the next (none: the last page)."""
        params: dict[str, Any] = {"namespace": namespace}
        if prefix is not None:
            params["prefix"] = prefix
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        return cast(StatePage, await self._send("state.list", params))

    async def keys(self, namespace: str, *, prefix: str | None = None) -> AsyncIterator[StateListItem]:
        """Every key of a namespace (with a prefix), page after page:
        ``async for item in client.state.keys("orders")``."""
        cursor: str | None = None
        while True:
            page = await self.list(namespace, prefix=prefix, limit=_LIST_PAGE_LIMIT, cursor=cursor)
            for item in page["items"]:
                yield item
            cursor = page.get("cursor")
            if cursor is None:
                return

    async def watch(self, namespace: str, listener: ChangeListener, *, prefix: str = "") -> StateWatch:
        """Calls ``listener`` with every change of a key of ``namespace`` that starts with ``prefix``, made on
        any replica. The watch is sent again after every reconnection; changes made while disconnected are
        not replayed (read what you need again on ``connected``)."""
        await self._send("state.watch", {"namespace": namespace, "prefix": prefix})
        watch = StateWatch(namespace, prefix, listener, self)
        self._watches.append(watch)
        return watch

    async def unwatch(self, watch: StateWatch) -> None:
        """Ends ``watch``; the gateway's watch ends with the last of this client's watches on the same keys."""
        if watch not in self._watches:
            return
        self._watches.remove(watch)
        if any(other.namespace == watch.namespace and other.prefix == watch.prefix for other in self._watches):
            return
        try:
            await self._send("state.unwatch", {"namespace": watch.namespace, "prefix": watch.prefix})
        except GatewayError as error:
            # Not connected: the watch is gone with the connection anyway.
            logger.debug("state.unwatch failed: %s", error)

    def on_changed(self, frame: dict[str, Any]) -> None:
        """A ``state.changed`` event: to the watches it matches."""
        namespace, key = frame.get("namespace"), frame.get("key")
        if not isinstance(namespace, str) or not isinstance(key, str):
            return
        change = StateChange(namespace=namespace, key=key, version=frame.get("version"), op=frame.get("op"))  # type: ignore[typeddict-item]
        for watch in list(self._watches):
            if watch.namespace == namespace and key.startswith(watch.prefix):
                self._events.invoke(watch.listener, change)

    def on_connected(self) -> None:
        """The connection is back: every watch is sent again (once per namespace and prefix)."""
        for namespace, prefix in dict.fromkeys((watch.namespace, watch.prefix) for watch in self._watches):
            self._events.spawn(self._send("state.watch", {"namespace": namespace, "prefix": prefix}))


class MemoryClient:
    """Conversation threads: ordered logs of entries.

    Example::

        seq = await client.memory.append("case-7", {"role": "customer", "content": "My bill is wrong"})
        history = await client.memory.read("case-7", last=20)
    """

    def __init__(self, send: Send) -> None:
        self._send = send

    async def append(self, thread: str, entries: MemoryEntryInput | Iterable[MemoryEntryInput]) -> int:
        """Appends one entry or several, in order; returns the last one's sequence number."""
        listed = [entries] if isinstance(entries, dict) else list(entries)
        return int((await self._send("memory.append", {"thread": thread, "entries": listed}))["seq"])

    async def read(self, thread: str, *, after: int | None = None, last: int | None = None) -> list[MemoryEntry]:
        """A thread's entries, oldest first: all, those after a sequence number, or the newest ``last``."""
        params: dict[str, Any] = {"thread": thread}
        if after is not None:
            params["after"] = after
        if last is not None:
            params["last"] = last
        return cast(list[MemoryEntry], (await self._send("memory.read", params))["entries"])

    async def clear(self, thread: str) -> int:
        """Empties a thread (its numbering goes on); returns how many entries it had."""
        return int((await self._send("memory.clear", {"thread": thread}))["cleared"])


class ThreadMemory:
    """One memory thread, as a handler gets it (``request.memory``) when its task names a thread."""

    def __init__(self, memory: MemoryClient, thread: str) -> None:
        self._memory = memory
        self.thread = thread

    async def read(self, *, after: int | None = None, last: int | None = None) -> list[MemoryEntry]:
        """The thread's entries, oldest first (see :meth:`MemoryClient.read`)."""
        return await self._memory.read(self.thread, after=after, last=last)

    async def append(self, entries: MemoryEntryInput | Iterable[MemoryEntryInput]) -> int:
        """Appends entries to the thread; returns the last one's sequence number."""
        return await self._memory.append(self.thread, entries)
