"""The private Redis server of the tests: loopback, no persistence, restartable on its port."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest

from .redis_server import RedisServer, RedisServerMissingError

if TYPE_CHECKING:
    from pathlib import Path


def test_the_server_listens_on_loopback_without_persistence(private_redis: RedisServer) -> None:
    """The server answers on 127.0.0.1 and has snapshots and the append-only file off."""
    assert private_redis.url == f"redis://127.0.0.1:{private_redis.port}/0"
    with contextlib.closing(private_redis.client()) as client:
        config = client.config_get("*")
    assert config["bind"] == "127.0.0.1"
    assert config["save"] == ""
    assert config["appendonly"] == "no"
    assert config["protected-mode"] == "yes"


@pytest.mark.parametrize(
    "end", [pytest.param("stop", id="sigterm"), pytest.param("kill", id="sigkill")]
)
def test_a_restart_keeps_the_port_and_loses_the_data(private_redis: RedisServer, end: str) -> None:
    """Stopped or killed, then started again: the same port, and no key left."""
    port = private_redis.port
    with contextlib.closing(private_redis.client()) as client:
        client.set("k", "v")
    getattr(private_redis, end)()
    assert not private_redis.running
    private_redis.start()
    assert private_redis.port == port
    with contextlib.closing(private_redis.client()) as client:
        assert client.get("k") is None


def test_each_test_gets_an_empty_database(redis_server: RedisServer, redis_url: str) -> None:
    """``redis_url`` is the session's server, emptied before the test."""
    assert redis_url == redis_server.url
    with contextlib.closing(redis_server.client()) as client:
        assert client.dbsize() == 0
        client.set("left-behind", "by this test")  # the next test's flush removes it
    redis_server.flush()
    with contextlib.closing(redis_server.client()) as client:
        assert client.dbsize() == 0


def test_a_missing_server_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``redis-server`` on PATH, the error names Debian's package."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisServerMissingError, match="apt-get install redis-server"):
        RedisServer()
