"""The webhook's HTTP side on real HTTP and a real Redis, with nothing working the queues (so
what a request stored stays there to be looked at): the secret, the networks, the size, stored
before the 200, repeats dropped, and clear answers when it cannot store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from tests.support.servers import run_asgi as run_any_asgi

from tggate.adapters.redis_intake import IntakeKeys
from tggate.bootstrap import build_intake_app
from tggate.intake.app import SECRET_HEADER, WEBHOOK_PATH
from tggate.settings import Settings, load_settings
from tggate_sandbox.topology import free_port

SECRET = "webhook-app-tests_secret-0123456789"
KEYS = IntakeKeys()


def run_asgi(app: Any) -> Any:
    # As `tggate intake` serves it: uvicorn leaves X-Forwarded-For to the app.
    return run_any_asgi(app, proxy_headers=False)


def settings_for(redis_url: str, **overrides: Any) -> Settings:
    return load_settings(
        redis_url=redis_url,
        webhook_secret=SECRET,
        bot_token="123456:webhook-app-tests-bot-token",
        internal_token="webhook-app-tests-internal-token",
        **overrides,
    )


def update(update_id: int, chat_id: int = 42, text: str = "/me") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "A"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "A", "language_code": "en"},
            "text": text,
        },
    }


async def post(
    url: str, body: Any, *, secret: str | None = SECRET, **headers: str
) -> httpx.Response:
    if secret is not None:
        headers[SECRET_HEADER] = secret
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url + WEBHOOK_PATH, content=content, headers=headers)


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(url)


@pytest.fixture
def intake_url(redis_url: str, redis_client: Redis) -> Iterator[str]:
    with run_asgi(build_intake_app(settings_for(redis_url), work=False)) as url:
        yield url


async def stored(redis: Redis, chat_id: int = 42) -> list[str]:
    return [item.decode() for item in await redis.lrange(KEYS.queue(chat_id), 0, -1)]


async def test_an_update_is_in_its_chats_queue_when_the_200_goes_out(
    intake_url: str, redis_client: Redis
) -> None:
    response = await post(intake_url, update(10, text="/course py101"))
    assert response.status_code == 200
    [item] = await stored(redis_client)
    assert item.startswith("10:")
    assert json.loads(item.partition(":")[2]) == {
        "m": "/course py101",
        "d": 1_700_000_000,
        "u": 10,
        "c": 42,
        "l": "en",
    }


async def test_a_repeat_is_answered_200_and_stored_once(
    intake_url: str, redis_client: Redis
) -> None:
    assert (await post(intake_url, update(11))).status_code == 200
    assert (await post(intake_url, update(11))).status_code == 200
    assert len(await stored(redis_client)) == 1


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1]])
async def test_without_the_secret_401_and_nothing_stored(
    intake_url: str, redis_client: Redis, secret: str | None
) -> None:
    response = await post(intake_url, update(12), secret=secret)
    assert response.status_code == 401
    assert SECRET_HEADER in response.json()["detail"]
    assert await redis_client.dbsize() == 0


async def test_a_body_over_the_limit_is_refused_before_anything_is_stored(
    redis_url: str, redis_client: Redis
) -> None:
    app = build_intake_app(settings_for(redis_url, webhook_max_body_bytes=2048), work=False)
    with run_asgi(app) as url:
        big = update(13, text="x" * 4000)
        assert (await post(url, big)).status_code == 413
        # Sent in pieces, without a length up front: counted as it comes.
        raw = json.dumps(big).encode()

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(raw), 500):
                yield raw[start : start + 500]

        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                url + WEBHOOK_PATH, content=pieces(), headers={SECRET_HEADER: SECRET}
            )
        assert response.status_code == 413
        assert (await post(url, update(14))).status_code == 200
    assert len(await stored(redis_client)) == 1


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b"{}", b'{"update_id": "x"}', b"[" * 100_000]
)
async def test_what_is_not_an_update_is_400(
    intake_url: str, redis_client: Redis, body: bytes
) -> None:
    response = await post(intake_url, body)
    assert response.status_code in (400, 413)
    assert await redis_client.dbsize() == 0


async def test_an_update_tggate_does_not_handle_is_acknowledged_and_dropped(
    intake_url: str, redis_client: Redis
) -> None:
    edited = {"update_id": 15, "edited_message": update(15)["message"]}
    assert (await post(intake_url, edited)).status_code == 200
    assert await redis_client.dbsize() == 0


async def test_a_full_chat_gets_429_with_retry_after(redis_url: str, redis_client: Redis) -> None:
    with run_asgi(
        build_intake_app(settings_for(redis_url, intake_queue_limit=2), work=False)
    ) as url:
        assert [(await post(url, update(n))).status_code for n in (1, 2)] == [200, 200]
        refused = await post(url, update(3))
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert (await post(url, update(4, chat_id=43))).status_code == 200


async def test_without_redis_503_with_retry_after_and_not_ready() -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    with run_asgi(build_intake_app(settings_for(nowhere, redis_timeout_s=0.5), work=False)) as url:
        response = await post(url, update(16))
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert "deliver it again" in response.json()["detail"]
        assert (await get(url + "/readyz")).status_code == 503
        assert (await get(url + "/healthz")).status_code == 200


async def test_health_readiness_metrics_and_nothing_else(intake_url: str) -> None:
    assert (await get(intake_url + "/healthz")).json() == {"status": "ok"}
    assert (await get(intake_url + "/readyz")).status_code == 200
    await post(intake_url, update(17))
    await post(intake_url, update(17))
    await post(intake_url, update(18), secret="wrong")
    metrics = (await get(intake_url + "/metrics")).text
    assert 'tggate_webhook_requests_total{result="stored"} 1.0' in metrics
    assert 'tggate_webhook_requests_total{result="repeat"} 1.0' in metrics
    assert 'tggate_webhook_requests_total{result="unauthorized"} 1.0' in metrics
    assert (await get(intake_url + WEBHOOK_PATH)).status_code == 405
    assert (await get(intake_url + "/v1/commands")).status_code == 404


# ---- the allow-list of Telegram's networks, behind trusted proxies ----


def networks_app(redis_url: str, trusted: str) -> Any:
    settings = settings_for(redis_url, webhook_check_networks=True, webhook_trusted_proxies=trusted)
    return build_intake_app(settings, work=False)


async def test_outside_telegrams_networks_403_and_nothing_stored(
    redis_url: str, redis_client: Redis
) -> None:
    # The test connects from 127.0.0.1, which is not Telegram's; no proxy is trusted, so what
    # X-Forwarded-For claims is ignored.
    with run_asgi(networks_app(redis_url, trusted="")) as url:
        assert (await post(url, update(20))).status_code == 403
        spoofed = await post(url, update(21), **{"X-Forwarded-For": "149.154.167.220"})
        assert spoofed.status_code == 403
    assert await redis_client.dbsize() == 0


async def test_behind_a_trusted_proxy_the_forwarded_address_decides(
    redis_url: str, redis_client: Redis
) -> None:
    with run_asgi(networks_app(redis_url, trusted="127.0.0.1")) as url:
        telegram = {"X-Forwarded-For": "149.154.167.220"}
        assert (await post(url, update(22), **telegram)).status_code == 200
        # A client's own X-Forwarded-For entry to the left of the proxy's proves nothing.
        forged = {"X-Forwarded-For": "149.154.167.220, 203.0.113.9"}
        assert (await post(url, update(23), **forged)).status_code == 403
        assert (await post(url, update(24), **{"X-Forwarded-For": "91.108.4.1"})).status_code == 200
        # The allow-list comes before the secret: a stranger learns nothing about it.
        assert (await post(url, update(25), secret="wrong", **forged)).status_code == 403
    assert [item.partition(":")[0] for item in await stored(redis_client)] == ["22", "24"]
