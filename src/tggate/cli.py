"""`tggate <command>`: every component as a console command (settings read once, here).

The product's commands are defined here. Other distributions add theirs through the
`tggate.commands` entry point: a function that receives the sub-command parsers and a
`CommandKit` (the sandbox adds `demo`, the reference modules and the fakes that way).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import NoReturn

from tggate.logs import configure_logging
from tggate.settings import Settings, SettingsError, load_settings, variables

__all__ = ["CommandKit", "Run", "build_parser", "main"]

PLUGIN_GROUP = "tggate.commands"
COMMAND_METAVAR = "COMMAND"
SANDBOX_HINT = (
    "The demo, the reference modules and the fakes come with the sandbox distribution "
    "(tggate-sandbox): in a checkout of the repository `uv run tggate demo` has it; elsewhere "
    "install tggate-sandbox beside tggate."
)

Run = Callable[[Settings, argparse.Namespace], None]
_WIDTH = 96


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (unless it already names it, in words);
    descriptions and epilogs keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # As argparse.ArgumentDefaultsHelpFormatter: options and optional positionals only.
        has_default = action.option_strings or action.nargs in (argparse.OPTIONAL, "*")
        if not has_default or "default" in text or action.default is argparse.SUPPRESS:
            return text
        if action.nargs == 0:  # a switch
            return f"{text} (default: {'on' if action.default else 'off'})"
        if action.default is None:
            return f"{text} (default: unset)"
        return text + " (default: %(default)s)"


class _TopParser(argparse.ArgumentParser):
    """`tggate` itself: a missing or unknown command is refused with the epilog too, which in a
    production install says where the demo and the reference modules are."""

    def error(self, message: str) -> NoReturn:
        # argparse names the sub-command argument by its metavar in exactly those two refusals.
        about_command = COMMAND_METAVAR in message
        if about_command and self.epilog is not None:
            message = f"{message}\n{self.epilog}"
        super().error(message)


@dataclass(frozen=True, slots=True)
class CommandKit:
    """What a command needs to declare itself the way every tggate command does."""

    commands: argparse._SubParsersAction[argparse.ArgumentParser]

    def add(
        self, name: str, help_text: str, run: Run, *, description: str | None = None
    ) -> argparse.ArgumentParser:
        sub = self.commands.add_parser(
            name,
            help=help_text,
            description=description or help_text,
            formatter_class=_Formatter,
        )
        sub.set_defaults(run=run, component=name)
        return sub

    def server(
        self,
        name: str,
        help_text: str,
        run: Run,
        *,
        port: int,
        description: str | None = None,
    ) -> argparse.ArgumentParser:
        """A command that serves HTTP: --host and --port, with help and defaults."""
        sub = self.add(name, help_text, run, description=description)
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on")
        sub.add_argument("--port", type=int, default=port, help="port to listen on")
        return sub


def variables_epilog(component: str) -> str:
    """The `TGGATE_*` variables a command reads, from the settings object itself: the ones it
    refuses to start without first."""
    read = [variable for variable in variables(Settings) if component in variable.used_by]
    required = [variable for variable in read if component in variable.required_by]
    lines = ["required environment:"] if required else []
    for variable in required:
        lines += [f"  {variable.name}", *_indented(variable.description)]
    lines.append("other environment (`python -m tggate.settings` lists every variable):")
    for variable in read:
        if variable not in required:
            lines += [f"  {variable.name}  (default: {variable.default})"]
            lines += _indented(variable.description)
    return "\n".join(lines)


def _indented(text: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)


def _run_logic(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.bootstrap import build_logic_app, redis_url_or_embedded
    from tggate.serve import serve, uvicorn_options

    # Bot Logic reads no client address (only the internal token says who calls), so it leaves
    # uvicorn's X-Forwarded-For middleware out: a layer less per command.
    proxy_headers = False
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
            **uvicorn_options(proxy_headers=proxy_headers),
        )
        return
    with redis_url_or_embedded(settings) as redis_url:
        app = build_logic_app(settings, redis_url=redis_url)
        serve(
            app,
            name="Bot Logic",
            host=args.host,
            port=args.port,
            log_level=settings.log_level,
            proxy_headers=proxy_headers,
        )


def _run_client(settings: Settings, args: argparse.Namespace) -> None:
    import uvloop

    from tggate.bootstrap import run_client

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"Telegram Client polling {settings.telegram_api_url}", flush=True)
        metrics_at = (args.metrics_host, args.metrics_port) if args.metrics_port else None
        if metrics_at:
            print(f"Metrics on http://{args.metrics_host}:{args.metrics_port}/metrics", flush=True)
        await run_client(settings, stop, metrics_at=metrics_at)

    uvloop.run(run())


def _run_intake(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.bootstrap import build_intake_app
    from tggate.serve import serve

    app = build_intake_app(settings)
    serve(
        app,
        name="Webhook intake",
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        proxy_headers=False,
    )


def _run_webhook(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.bootstrap import run_webhook
    from tggate.intake.manage import WebhookRequest

    if args.action != "set" and (args.url or args.max_connections):
        raise SettingsError("--url and --max-connections are for `tggate webhook set`")
    if args.action == "info" and args.drop_pending_updates:
        raise SettingsError("--drop-pending-updates is for `tggate webhook set` and `delete`")
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    request = WebhookRequest(
        action=args.action,
        url=args.url or (str(settings.webhook_url) if settings.webhook_url else None),
        secret=secret,
        max_connections=args.max_connections or settings.webhook_max_connections,
        drop_pending_updates=args.drop_pending_updates,
        wait_s=args.wait,
    )
    status = asyncio.run(
        run_webhook(
            settings,
            request,
            say=lambda line: print(line, flush=True),
            warn=lambda line: print(line, file=sys.stderr, flush=True),
        )
    )
    sys.exit(status)


def _run_check_modules(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.bootstrap import check_options
    from tggate.conformance.run import run_check

    options = check_options(
        settings,
        auth_url=args.auth_url,
        main_url=args.main_url,
        plan_file=args.plan,
        hooks_url=args.hooks,
        expired_token=args.expired_token,
        person_timeout_s=args.person_timeout,
        max_wait_s=args.max_wait,
    )
    sys.exit(run_check(options, sys.stdout))


def _plugins() -> list[Callable[[CommandKit], None]]:
    return [entry.load() for entry in entry_points(group=PLUGIN_GROUP)]


def build_parser() -> argparse.ArgumentParser:
    """`tggate` with every command: the product's and those of installed distributions."""
    plugins = _plugins()
    parser = _TopParser(
        prog="tggate",
        description="tggate: a Telegram front door for a system with its own Authorization and\n"
        "Main modules. Settings come from TGGATE_* environment variables: `tggate COMMAND --help`\n"
        "lists those a command reads, `python -m tggate.settings` all of them.",
        epilog=None if plugins else SANDBOX_HINT,
        formatter_class=_Formatter,
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar=COMMAND_METAVAR,
        parser_class=argparse.ArgumentParser,  # not _TopParser: its refusals are the command's
    )
    kit = CommandKit(commands)
    logic = kit.server(
        "logic",
        "Bot Logic: the per-chat state machine over HTTP (docs/contract.md)",
        _run_logic,
        port=8080,
    )
    logic.epilog = variables_epilog("logic")
    logic.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (more than 1 needs TGGATE_REDIS_URL)",
    )
    client = kit.add(
        "client",
        "the Telegram Client: polls Telegram, forwards commands, runs the timers",
        _run_client,
    )
    client.epilog = variables_epilog("client")
    client.add_argument(
        "--metrics-host", default="127.0.0.1", help="address of the Prometheus metrics endpoint"
    )
    client.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics (/metrics) on this port; 0: not served",
    )
    check = kit.add(
        "check-modules",
        "run the contract against your running Authorization and Main modules",
        _run_check_modules,
        description="Runs the contract (docs/contract.md) against running modules and prints "
        "one line per check: PASS, FAIL with the exact request and the answer, WARN (works, "
        "against a recommendation) or SKIP (with the reason). Exits 1 when a check failed. "
        "Logins are finished by the module's test hooks (--hooks) or by you: the check prints "
        "the link or code and waits. The module's API is read as TGGATE_AUTH_API_FILE "
        "describes it, the actions from TGGATE_COMMANDS_FILE (docs/integrate.md).",
    )
    check.epilog = variables_epilog("check-modules")
    check.add_argument("--auth-url", help="the Authorization module (default: TGGATE_AUTH_URL)")
    check.add_argument("--main-url", help="the Main module (default: TGGATE_MAIN_URL)")
    check.add_argument(
        "--plan",
        type=Path,
        help="the conformance plan: people, their rights, argument values (docs/integrate.md; "
        "default: the bundled plan for the reference modules)",
    )
    check.add_argument(
        "--hooks",
        metavar="URL",
        help="the Authorization module's test hooks (e.g. http://127.0.0.1:8081/test) to "
        "decide logins; without it, you finish them on the module's page",
    )
    check.add_argument(
        "--expired-token",
        metavar="JWT",
        help="an expired access token for the 401 checks (harmless: it is expired); without "
        "it, a test hook makes one, or the check waits for a token to expire",
    )
    check.add_argument(
        "--person-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for a person to finish a login or make notifications",
    )
    check.add_argument(
        "--max-wait",
        type=float,
        default=120.0,
        help="the longest wait for an expiry or a grace window; longer ones are skipped",
    )
    intake = kit.server(
        "intake",
        "a webhook intake replica: stores Telegram's webhook updates in Redis, works the "
        "chats' queues, runs the timers when it holds the lease (docs/webhook.md)",
        _run_intake,
        port=8088,
        description="A webhook intake replica (docs/webhook.md): POST /telegram/webhook takes "
        "Telegram's updates (secret token checked, stored in Redis before the 200), every "
        "replica works the chats' queues in order, and the one holding Bot Logic's poller "
        "lease runs the timers. GET /healthz, /readyz (Redis), /metrics.",
    )
    intake.epilog = variables_epilog("intake")
    webhook = kit.add(
        "webhook",
        "the bot's webhook at Telegram: set, info or delete (docs/webhook.md)",
        _run_webhook,
        description="Register the webhook with Telegram (set: TGGATE_WEBHOOK_URL or --url, the "
        "secret TGGATE_WEBHOOK_SECRET, max_connections, the update kinds tggate handles), show "
        "it with the intake's backlog (info), or go back to polling (delete: waits until the "
        "intake replicas have worked off their queues, so a polling client may start).",
    )
    webhook.add_argument(
        "action",
        nargs="?",
        choices=("set", "info", "delete"),
        default="info",
        help="what to do with the webhook",
    )
    webhook.add_argument(
        "--url", default=None, help="set: the public HTTPS URL (instead of TGGATE_WEBHOOK_URL)"
    )
    webhook.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="set: Telegram's open requests at most, 1-100 (instead of "
        "TGGATE_WEBHOOK_MAX_CONNECTIONS)",
    )
    webhook.add_argument(
        "--drop-pending-updates",
        action="store_true",
        help="set, delete: Telegram forgets the updates not delivered yet (kept otherwise)",
    )
    webhook.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="delete: how long to wait for the intake's queues to empty (0: do not wait)",
    )
    webhook.epilog = variables_epilog("webhook")
    for plugin in plugins:
        plugin(kit)
    return parser


def _skip_pydantic_v1() -> None:
    """Before any command runs, so before any server declares its routes. FastAPI asks of every
    route parameter whether its type is a pydantic v1 model, and imports pydantic's v1 layer to
    ask: ~0.1-0.2 s of CPU in each of the demo's six servers, on 2 cores (issue 11, item 7). No
    model here is a v1 one, and nothing else installed imports that layer; marked absent, its
    import fails and FastAPI answers "no" through the branch it keeps for a pydantic without v1.
    A process that already imported it keeps it."""
    if "pydantic.v1" not in sys.modules:
        sys.modules["pydantic.v1"] = None  # type: ignore[assignment]  # None marks a module absent


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):  # options that belong to the command's own runner
        args.names = [*args.names, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # uvicorn re-raises SIGTERM after its graceful shutdown; a stop on request is a success.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _skip_pydantic_v1()
    try:
        settings = load_settings()
        settings.check_required(args.command)
        configure_logging(
            component=args.command, level=settings.log_level, secrets=settings.secrets()
        )
        args.run(settings, args)
    except SettingsError as error:
        print(f"tggate: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
