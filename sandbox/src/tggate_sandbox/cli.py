"""The sandbox's `tggate` commands, added to the product's CLI by the `tggate.commands` entry
point: the reference modules, the fakes, the whole-system demo and the benchmark runner."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tggate.cli import CommandKit
from tggate.logs import configure_logging
from tggate.settings import Settings, SettingsError

if TYPE_CHECKING:
    from tggate_sandbox.settings import SandboxSettings

__all__ = ["DEFAULT_PORTS", "add_commands"]

DEFAULT_PORTS = {
    "reference-auth": 8081,
    "reference-main": 8082,
    "fake-telegram": 8083,
    "fake-oauth": 8084,
    "demo": 8090,
}


def _sandbox_settings(settings: Settings, args: argparse.Namespace) -> SandboxSettings:
    """Read the sandbox's settings once, and redact its secrets from the logs too."""
    # Imported here, not with the plugin: every tggate process (the Telegram Client's too)
    # declares the sandbox's commands, and these settings bring FastAPI along (issue 11).
    from tggate_sandbox.settings import load_sandbox_settings

    sandbox = load_sandbox_settings()
    configure_logging(
        component=args.command,
        level=settings.log_level,
        secrets=[*settings.secrets(), *sandbox.secrets()],
    )
    return sandbox


def _run_reference_auth(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.serve import serve
    from tggate_sandbox.reference.auth.app import create_app
    from tggate_sandbox.reference.auth.oauth import providers_from_settings

    sandbox = _sandbox_settings(settings, args)
    public_url = args.public_url or str(sandbox.auth_public_url or "").rstrip("/")
    app = create_app(
        jwt_secret=sandbox.require_jwt_secret(),
        public_url=public_url or f"http://{args.host}:{args.port}",
        oauth=providers_from_settings(sandbox),
        test_api_secret=sandbox.optional_test_api_secret(),
        demo_sign_in=sandbox.reference_demo_sign_in,
    )
    serve(app, name="Reference Authorization module", host=args.host, port=args.port)


def _run_reference_main(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.serve import serve
    from tggate_sandbox.reference.main.app import create_app

    sandbox = _sandbox_settings(settings, args)
    app = create_app(
        jwt_secret=sandbox.require_jwt_secret(),
        admin_secret=sandbox.optional_admin_secret(),
        test_api_secret=sandbox.optional_test_api_secret(),
        service_token=sandbox.optional_service_token(),
    )
    serve(app, name="Reference Main module", host=args.host, port=args.port)


def _run_fake_oauth(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.serve import serve
    from tggate_sandbox.fakes.oauth.app import clients_from_settings, create_app

    sandbox = _sandbox_settings(settings, args)
    app = create_app(
        clients=clients_from_settings(sandbox),
        test_api_secret=sandbox.optional_test_api_secret(),
    )
    serve(app, name="Fake OAuth provider", host=args.host, port=args.port)


def _run_fake_telegram(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.serve import serve
    from tggate_sandbox.fakes.telegram.app import create_app
    from tggate_sandbox.fakes.telegram.state import WebhookOptions

    sandbox = _sandbox_settings(settings, args)
    app = create_app(
        token=settings.require_bot_token(),
        rate_limits=args.rate_limits,
        test_api_secret=sandbox.optional_test_api_secret(),
        webhook=WebhookOptions(local=args.local, timeout_s=args.webhook_timeout),
        first_update_id=args.first_update_id,
    )
    serve(app, name="Fake Telegram Bot API", host=args.host, port=args.port)


def _run_demo(settings: Settings, args: argparse.Namespace) -> None:
    from tggate_sandbox.demo import run_demo

    sandbox = _sandbox_settings(settings, args)
    run_demo(settings, sandbox, host=args.host, port=args.port, nginx=args.nginx)


def _run_bench(settings: Settings, args: argparse.Namespace) -> None:
    # The benchmarks live in the repository (bench/), beside the two distributions.
    root = Path(__file__).resolve().parents[3]
    if not (root / "bench" / "__main__.py").exists():
        raise SettingsError("tggate bench runs from a checkout of the repository (bench/)")
    command = [sys.executable, "-m", "bench", *args.names]
    sys.exit(subprocess.call(command, cwd=root))


def add_commands(kit: CommandKit) -> None:
    """The entry point: declare the sandbox's commands on the product's parser."""
    demo = kit.server(
        "demo",
        "the whole system on this machine: embedded Redis, fake Telegram with a web chat, "
        "reference modules, nginx + 2 Bot Logic replicas, Telegram Client",
        _run_demo,
        port=DEFAULT_PORTS["demo"],
    )
    demo.add_argument(
        "--nginx",
        choices=("auto", "on", "off"),
        default="auto",
        help="nginx in front of two Bot Logic replicas (auto: when nginx is installed)",
    )
    auth = kit.server(
        "reference-auth",
        "the reference Authorization module (sandbox)",
        _run_reference_auth,
        port=DEFAULT_PORTS["reference-auth"],
    )
    auth.add_argument(
        "--public-url",
        default=None,
        help="the URL people open for login pages (default: its own URL)",
    )
    kit.server(
        "reference-main",
        "the reference Main module: a small course system (sandbox)",
        _run_reference_main,
        port=DEFAULT_PORTS["reference-main"],
    )
    kit.server(
        "fake-oauth",
        "a fake GitHub + Yandex ID OAuth provider (sandbox)",
        _run_fake_oauth,
        port=DEFAULT_PORTS["fake-oauth"],
    )
    telegram = kit.server(
        "fake-telegram",
        "a fake Telegram Bot API server with a web chat (sandbox)",
        _run_fake_telegram,
        port=DEFAULT_PORTS["fake-telegram"],
    )
    telegram.add_argument(
        "--rate-limits", action="store_true", help="answer 429 past Telegram's limits"
    )
    telegram.add_argument(
        "--local",
        action="store_true",
        help="as the Bot API server's --local: a webhook may be plain http on any port (the "
        "intake on loopback)",
    )
    telegram.add_argument(
        "--webhook-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long a webhook request may take before it is retried",
    )
    telegram.add_argument(
        "--first-update-id",
        type=int,
        default=1,
        help="the first update's id (a restart goes on above the last run's, as Telegram does)",
    )
    bench = kit.add(
        "bench", "the benchmarks, from a checkout (same as python -m bench)", _run_bench
    )
    bench.add_argument(
        "names",
        nargs="*",
        help="benchmark names and options (bench/README.md; default: every benchmark)",
    )
    bench.set_defaults(passthrough=True)
