"""`tggate <command>`: every component as a console command (settings read once, here)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence

from tggate.logs import configure_logging
from tggate.settings import Settings, SettingsError, load_settings

__all__ = ["main"]

DEFAULT_PORTS = {
    "logic": 8080,
    "reference-auth": 8081,
    "reference-main": 8082,
    "fake-telegram": 8083,
    "fake-oauth": 8084,
}


def _secrets(settings: Settings) -> list[str]:
    values = [settings.reference_jwt_secret.get_secret_value()]
    for secret in (
        settings.internal_token,
        settings.bot_token,
        settings.session_keys,
        settings.github_client_secret,
        settings.yandex_client_secret,
    ):
        if secret is not None:
            values.append(secret.get_secret_value())
    return values


def _run_logic(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.bootstrap import build_logic_app, redis_url_or_embedded
    from tggate.serve import serve

    settings.require_internal_token()
    if args.workers > 1:
        import uvicorn

        if not settings.redis_url:
            raise SettingsError("TGGATE_REDIS_URL is required with --workers > 1")
        print(f"Bot Logic listening on http://{args.host}:{args.port}", flush=True)
        uvicorn.run(
            "tggate.bootstrap:logic_app_from_environment",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
        )
        return
    with redis_url_or_embedded(settings) as redis_url:
        app = build_logic_app(settings, redis_url=redis_url)
        serve(app, name="Bot Logic", host=args.host, port=args.port, log_level=settings.log_level)


def _run_reference_auth(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.bootstrap import oauth_providers
    from tggate.reference.auth.app import create_app
    from tggate.serve import serve

    public_url = args.public_url or str(settings.auth_public_url or "").rstrip("/")
    app = create_app(
        jwt_secret=settings.reference_jwt_secret.get_secret_value(),
        public_url=public_url or f"http://{args.host}:{args.port}",
        oauth=oauth_providers(settings),
    )
    serve(app, name="Reference Authorization module", host=args.host, port=args.port)


def _run_fake_oauth(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.bootstrap import oauth_clients
    from tggate.reference.oauth_provider.app import create_app
    from tggate.serve import serve

    serve(
        create_app(clients=oauth_clients(settings)),
        name="Fake OAuth provider",
        host=args.host,
        port=args.port,
    )


def _run_reference_main(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.reference.main.app import create_app
    from tggate.serve import serve

    app = create_app(jwt_secret=settings.reference_jwt_secret.get_secret_value())
    serve(app, name="Reference Main module", host=args.host, port=args.port)


def _run_fake_telegram(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.reference.telegram.app import create_app
    from tggate.serve import serve

    app = create_app(token=settings.require_bot_token(), rate_limits=args.rate_limits)
    serve(app, name="Fake Telegram Bot API", host=args.host, port=args.port)


def _run_client(settings: Settings, args: argparse.Namespace) -> None:
    import uvloop

    from tggate.bootstrap import run_client

    settings.require_bot_token()
    settings.require_internal_token()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"Telegram Client polling {settings.telegram_api_url}", flush=True)
        await run_client(settings, stop)

    uvloop.run(run())


def _run_bench(settings: Settings, args: argparse.Namespace) -> None:
    import subprocess
    from pathlib import Path

    # The benchmarks live beside the package in the repository (bench/), not inside it.
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "__main__.py").exists():
        raise SettingsError("tggate bench runs from a checkout of the repository (bench/)")
    command = [sys.executable, "-m", "bench", *args.names]
    sys.exit(subprocess.call(command, cwd=root))


def _run_demo(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.demo import run_demo

    run_demo(settings, host=args.host, port=args.port, nginx=args.nginx)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tggate",
        description="tggate: a Telegram front door for a system with its own Authorization "
        "and Main modules. Settings come from TGGATE_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def server(
        name: str, help_text: str, run: Callable[[Settings, argparse.Namespace], None]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=DEFAULT_PORTS.get(name, 0))
        sub.set_defaults(run=run)
        return sub

    logic = server("logic", "Bot Logic HTTP server (SPEC §5.1)", _run_logic)
    logic.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    auth = server("reference-auth", "the reference Authorization module", _run_reference_auth)
    auth.add_argument("--public-url", default=None, help="URL people open (default: own)")
    server("reference-main", "the reference Main module", _run_reference_main)
    server("fake-oauth", "a fake GitHub + Yandex ID OAuth provider", _run_fake_oauth)
    telegram = server("fake-telegram", "a fake Telegram Bot API server", _run_fake_telegram)
    telegram.add_argument("--rate-limits", action="store_true", help="Telegram's 429s")
    client = commands.add_parser("client", help="the Telegram Client (poller, timers)")
    client.set_defaults(run=_run_client)
    bench = commands.add_parser("bench", help="the benchmarks (same as python -m bench)")
    bench.add_argument("names", nargs="*", help="benchmark names and options (bench/README.md)")
    bench.set_defaults(run=_run_bench)
    demo = server("demo", "the whole system on this machine", _run_demo)
    demo.add_argument(
        "--nginx",
        choices=("auto", "on", "off"),
        default="auto",
        help="nginx in front of two Bot Logic replicas (auto: when nginx is installed)",
    )
    demo.set_defaults(port=8090)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":  # options such as --markdown belong to the benchmark runner
        args.names = [*args.names, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # uvicorn re-raises SIGTERM after its graceful shutdown; a stop on request is a success.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        settings = load_settings()
        configure_logging(
            component=args.command, level=settings.log_level, secrets=_secrets(settings)
        )
        args.run(settings, args)
    except SettingsError as error:
        print(f"tggate: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
