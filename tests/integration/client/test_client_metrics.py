"""The Telegram Client's Prometheus endpoint (`tggate client --metrics-port`): every 429 the
fake Telegram answered is counted, and the endpoint closes with the client."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
from tests.integration.client.conftest import BOT_TOKEN, PersonApi
from tests.integration.client.stub_logic import INTERNAL_TOKEN

from tggate.bootstrap import run_client
from tggate.settings import load_settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _scrape(url: str) -> str:
    # The endpoint is up once run_client has started it; wait for that, bounded by attempts.
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                return (await http.get(url)).text
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics")


async def test_every_429_is_counted_on_the_metrics_endpoint(
    telegram_url: str, logic_url: str, person: PersonApi, tmp_path: Path
) -> None:
    # The client sends as fast as it likes, so the fake's 1 message/s per chat trips.
    await person.configure(rate_limits=True, per_chat_per_s=1, global_per_s=30)
    settings = load_settings(
        bot_token=BOT_TOKEN,
        internal_token=INTERNAL_TOKEN,
        telegram_api_url=telegram_url,
        logic_url=logic_url,
        data_dir=tmp_path,
        poll_timeout_s=1,
        send_per_chat_interval_s=0.0,
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    stop = asyncio.Event()
    task = asyncio.create_task(run_client(settings, stop, metrics_at=("127.0.0.1", port)))
    try:
        assert _sample(await _scrape(url), "tggate_telegram_throttled_total") == 0
        for n in range(3):
            await person.inject(1, f"/courses {n}")
        await person.wait(1, 3, timeout_s=15)
        rate_limited = (await person.stats())["rate_limited"]
        assert rate_limited >= 1
        assert _sample(await _scrape(url), "tggate_telegram_throttled_total") == rate_limited
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the endpoint outlived the client"
