"""The LRU map behind the metadata caches."""

from __future__ import annotations

from catalog.lru import LruCache


def test_least_recently_used_entry_is_evicted_first() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)


def test_discard_and_zero_capacity() -> None:
    cache: LruCache[str, int] = LruCache(4)
    cache.put("a", 1)
    cache.discard("a")
    cache.discard("missing")
    assert cache.get("a") is None
    disabled: LruCache[str, int] = LruCache(0)
    disabled.put("a", 1)
    assert disabled.get("a") is None
