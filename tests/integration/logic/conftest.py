"""Bot Logic over real HTTP, with a real Redis server and the reference modules
(docs/contract.md)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from tests.support.processes import run_component
from tests.support.sandbox import ADMIN, ADMIN_SECRET, TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate.adapters.redis_store import RedisSessionStore
from tggate.bootstrap import build_logic_app
from tggate.core.session import Anonymous, Authorized, LostSession, Status
from tggate.settings import load_settings
from tggate_sandbox.reference.auth.app import create_app as create_auth_app
from tggate_sandbox.reference.main.app import create_app as create_main_app

INTERNAL_TOKEN = "test-internal-token-0123456789abcdef"
JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"
# The login pages are not visited here, so their public URL needs no real port.
AUTH_PUBLIC_URL = "http://auth.example"


@dataclass
class ModuleUrls:
    auth: str
    main: str


@pytest.fixture(scope="module")
def modules() -> Iterator[ModuleUrls]:
    auth = create_auth_app(
        jwt_secret=JWT_SECRET, public_url=AUTH_PUBLIC_URL, test_api_secret=TEST_API_SECRET
    )
    main = create_main_app(
        jwt_secret=JWT_SECRET, admin_secret=ADMIN_SECRET, test_api_secret=TEST_API_SECRET
    )
    with run_asgi(auth) as auth_url, run_asgi(main) as main_url:
        yield ModuleUrls(auth=auth_url, main=main_url)


def logic_app(modules: ModuleUrls, redis_url: str) -> Any:
    settings = load_settings(
        redis_url=redis_url,
        auth_url=modules.auth,
        main_url=modules.main,
        internal_token=INTERNAL_TOKEN,
        http_timeout_s=1.0,
    )
    return build_logic_app(settings, redis_url=redis_url)


@pytest.fixture(scope="module")
def logic_url(modules: ModuleUrls, redis_url: str) -> Iterator[str]:
    with run_asgi(logic_app(modules, redis_url)) as url:
        yield url


@pytest.fixture(scope="module")
def replica_processes(
    modules: ModuleUrls, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two Bot Logic replicas, each its own process, on the same Redis and modules: what two
    replicas behind nginx are. They share nothing but Redis, so a lock kept in one process's
    memory cannot pass for the Redis lock (docs/scenarios.md#single-flight)."""
    env = {
        "TGGATE_REDIS_URL": redis_url,
        "TGGATE_AUTH_URL": modules.auth,
        "TGGATE_MAIN_URL": modules.main,
        "TGGATE_INTERNAL_TOKEN": INTERNAL_TOKEN,
        # The tests hold a module call until an event they wait for: no module timeout or
        # lock expiry may end the wait first.
        "TGGATE_HTTP_TIMEOUT_S": "120",
        "TGGATE_REFRESH_LOCK_TTL_MS": "600000",
    }
    logs = tmp_path_factory.mktemp("replicas")
    with (
        run_component("logic", env, log_path=logs / "logic-a.log") as a,
        run_component("logic", env, log_path=logs / "logic-b.log") as b,
    ):
        yield [a, b]


_update_ids = itertools.count(1)


def next_update_id() -> int:
    """An update id no request of this test run used yet."""
    return next(_update_ids)


@dataclass
class Bot:
    """Talks to Bot Logic as the Telegram Client does, and to the modules' test APIs."""

    logic: httpx.AsyncClient
    auth: httpx.AsyncClient
    main: httpx.AsyncClient
    redis: Redis | RedisCluster
    sent_update_ids: list[int] = field(default_factory=list)

    async def command(
        self,
        chat_id: int,
        command: str,
        args: dict[str, str] | None = None,
        *,
        language: str = "en",
        update_id: int | None = None,
    ) -> list[dict[str, Any]]:
        response = await self.post_command(
            chat_id, command, args, language=language, update_id=update_id
        )
        assert response.status_code == 200, response.text
        replies: list[dict[str, Any]] = response.json()["replies"]
        return replies

    async def post_command(
        self,
        chat_id: int,
        command: str,
        args: dict[str, str] | None = None,
        *,
        language: str = "en",
        update_id: int | None = None,
    ) -> httpx.Response:
        body = {
            "update_id": update_id if update_id is not None else next_update_id(),
            "chat_id": chat_id,
            "command": command,
            "args": args or {},
            "text": f"/{command}",
            "language": language,
        }
        return await self.logic.post("/v1/commands", json=body)

    async def texts(self, chat_id: int, command: str, args: dict[str, str] | None = None) -> str:
        return "\n".join(r["text"] for r in await self.command(chat_id, command, args))

    async def resolve(self, chat_id: int, decision: str = "granted", **extra: Any) -> None:
        body = {"chat_id": chat_id, "decision": decision, "identity": "alice", **extra}
        response = await self.auth.post("/test/logins/resolve", json=body)
        assert response.status_code == 200, response.text

    async def login(self, chat_id: int, *, identity: str = "alice", **extra: Any) -> None:
        """Unknown → Authorized through U2, a granted login and A5."""
        await self.command(chat_id, "login", {"type": "code"})
        await self.resolve(chat_id, "granted", identity=identity, **extra)
        assert "logged in" in await self.texts(chat_id, "login")

    @property
    def store(self) -> RedisSessionStore:
        """The store as Bot Logic lays it out (no session keys in these tests)."""
        return RedisSessionStore(self.redis)

    async def session(self, chat_id: int) -> dict[str, str]:
        """The chat's session as named fields ({} when Unknown)."""
        stored = await self.store.load(chat_id)
        if stored is None:
            return {}
        if isinstance(stored.session, LostSession):
            return {"status": "lost", "was": stored.session.was.value, "rev": stored.revision}
        fields = {"status": stored.session.status.value, "rev": stored.revision}
        match stored.session:
            case Anonymous(login_token=token, login_type=login_type):
                fields |= {"login_token": token, "login_type": login_type}
            case Authorized(access_token=access, refresh_token=refresh):
                fields |= {"access_token": access, "refresh_token": refresh}
        return fields

    async def forget_login(self, chat_id: int, login_token: str) -> None:
        """Store a login token the Authorization module does not know (as after it expired)."""
        stored = await self.store.load(chat_id)
        assert stored is not None and isinstance(stored.session, Anonymous)
        session = replace(stored.session, login_token=login_token)
        assert await self.store.replace(chat_id, session, expect=stored.revision, ttl_s=600)

    async def indexed(self, chat_id: int, status: Status) -> bool:
        index = self.store.keys.index(self.store.keys.bucket(chat_id), status)
        return bool(await self.redis.sismember(index, str(chat_id)))

    async def session_ttl(self, chat_id: int) -> int:
        return int(await self.redis.ttl(self.store.keys.session(chat_id)))

    async def auth_stats(self) -> dict[str, int]:
        stats: dict[str, int] = (await self.auth.get("/test/stats")).json()
        return stats

    async def main_stats(self) -> dict[str, int]:
        stats: dict[str, int] = (await self.main.get("/test/stats")).json()
        return stats

    async def main_answers(self, route: str) -> dict[str, int]:
        """How the Main module answered `route` ("GET /api/me"), by status: {"401": 2, …}."""
        answers: dict[str, dict[str, int]] = (await self.main.get("/test/answers")).json()
        return answers.get(route, {})

    async def slow(self, module: str, seconds: float, *, route: str | None = None) -> None:
        """Make the auth or main module slow (only `route` of main, when given); a new delay
        (0) lets the requests waiting on the old one go on."""
        http = self.auth if module == "auth" else self.main
        body: dict[str, Any] = {"seconds": seconds}
        if route is not None:
            body["route"] = route
        response = await http.post("/test/delay", json=body)
        assert response.status_code == 200, response.text

    async def notifications_at_main(self, identity: str) -> list[str]:
        """The texts of the notifications the Main module still holds for `identity`."""
        minted = await self.auth.post("/test/tokens", json={"identity": identity})
        bearer = {"Authorization": f"Bearer {minted.json()['access_token']}"}
        held: list[dict[str, str]] = (await self.main.get("/notification", headers=bearer)).json()
        return [n["text"] for n in held]

    async def cycle(self, name: str, **body: int) -> list[dict[str, Any]]:
        response = await self.logic.post(f"/v1/cycles/{name}", json=body)
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages


@pytest.fixture
async def bot(logic_url: str, modules: ModuleUrls, redis_client: Redis) -> AsyncIterator[Bot]:
    async with open_bot(logic_url, modules, redis_client) as found:
        yield found


@asynccontextmanager
async def open_bot(
    logic_url: str, modules: ModuleUrls, redis: Redis | RedisCluster
) -> AsyncIterator[Bot]:
    """A `Bot` on Bot Logic at `logic_url`, whose Redis (one server or a Cluster) is `redis`."""
    headers = {"X-Internal-Token": INTERNAL_TOKEN}
    async with (
        httpx.AsyncClient(base_url=logic_url, headers=headers, timeout=30) as logic,
        # The modules' test APIs (and the Main module's admin API, for notifications).
        httpx.AsyncClient(base_url=modules.auth, headers=TEST_API, timeout=10) as auth,
        httpx.AsyncClient(base_url=modules.main, headers={**TEST_API, **ADMIN}, timeout=10) as main,
    ):
        await auth.post("/test/stats/reset")
        await main.post("/test/stats/reset")
        await auth.post("/test/delay", json={"seconds": 0})
        await main.post("/test/delay", json={"seconds": 0})
        yield Bot(logic=logic, auth=auth, main=main, redis=redis)


_chat_ids = itertools.count(1000)


@pytest.fixture
def chat() -> int:
    """A chat id no other test used: the reference modules live for the whole module."""
    return next(_chat_ids)
