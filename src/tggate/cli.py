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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from tggate.logs import configure_logging
from tggate.settings import Settings, SettingsError, load_settings

__all__ = ["CommandKit", "Run", "main"]

PLUGIN_GROUP = "tggate.commands"
SANDBOX_HINT = (
    "The demo, the reference modules and the fakes come with the sandbox distribution "
    "(tggate-sandbox): in a checkout of the repository `uv run tggate demo` has it; elsewhere "
    "install tggate-sandbox beside tggate."
)

Run = Callable[[Settings, argparse.Namespace], None]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default; descriptions keep their line breaks."""


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
    """The `TGGATE_*` variables a command reads, from the settings object itself."""
    lines = ["environment (docs/configuration.md has them all):"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        used_by = extra.get("used_by", []) if isinstance(extra, dict) else []
        if isinstance(used_by, list) and component in used_by:
            default = "unset" if field.default is None else str(field.default)
            lines.append(f"  TGGATE_{name.upper()}  (default: {default})")
            lines.append(f"      {field.description}")
    return "\n".join(lines)


def _run_logic(settings: Settings, args: argparse.Namespace) -> None:
    from tggate.bootstrap import build_logic_app, redis_url_or_embedded, settle_gc
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
        settle_gc()
        serve(app, name="Bot Logic", host=args.host, port=args.port, log_level=settings.log_level)


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


def _plugins() -> list[Callable[[CommandKit], None]]:
    return [entry.load() for entry in entry_points(group=PLUGIN_GROUP)]


def _parser() -> argparse.ArgumentParser:
    plugins = _plugins()
    parser = argparse.ArgumentParser(
        prog="tggate",
        description="tggate: a Telegram front door for a system with its own Authorization "
        "and Main modules. Settings come from TGGATE_* environment variables "
        "(docs/configuration.md).",
        epilog=None if plugins else SANDBOX_HINT,
        formatter_class=_Formatter,
    )
    kit = CommandKit(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
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
    for plugin in plugins:
        plugin(kit)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):  # options that belong to the command's own runner
        args.names = [*args.names, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # uvicorn re-raises SIGTERM after its graceful shutdown; a stop on request is a success.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        settings = load_settings()
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
