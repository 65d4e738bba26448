"""A load generator for Bot Logic's `/v1/commands`, run as its own process by `bench.logic`.

`python -m bench.loadgen URL --chats A:B --command me --concurrency 64 --seconds 8` (the
internal token in BENCH_INTERNAL_TOKEN) posts commands with unique update_ids from
`concurrency` workers over keep-alive connections for `seconds`, then prints one JSON line:
requests, errors, elapsed, latency percentiles and its own CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import time

import aiohttp

__all__ = ["main"]


async def _run(args: argparse.Namespace) -> dict[str, object]:
    first, last = (int(x) for x in args.chats.split(":"))
    chats = itertools.cycle(range(first, last))
    update_ids = itertools.count(args.first_update_id)
    headers = {"X-Internal-Token": os.environ["BENCH_INTERNAL_TOKEN"]}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    url = args.url.rstrip("/") + "/v1/commands"
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + args.seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                chat_id = next(chats)
                body = {
                    "update_id": next(update_ids),
                    "chat_id": chat_id,
                    "command": args.command,
                    "args": {},
                    "text": "/" + args.command,
                    "language": "en",
                }
                started = time.perf_counter()
                try:
                    async with session.post(url, json=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    continue
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()

    def point(p: int) -> float:
        return round(latencies[max(0, -(-p * len(latencies) // 100) - 1)] * 1000, 2)

    return {
        "requests": len(latencies),
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 3),
        "latency_ms": {"p50": point(50), "p95": point(95), "p99": point(99)} if latencies else {},
        # Every latency, for percentiles over several runs (bench.logic's rounds).
        **({"latencies_ms": [round(x * 1000, 3) for x in latencies]} if args.every_latency else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("url")
    parser.add_argument("--chats", required=True, help="first:last (last excluded)")
    parser.add_argument("--command", default="me")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--first-update-id", type=int, default=1)
    parser.add_argument("--every-latency", action="store_true")
    args = parser.parse_args()
    import uvloop

    print(json.dumps(uvloop.run(_run(args))), flush=True)


if __name__ == "__main__":
    main()
