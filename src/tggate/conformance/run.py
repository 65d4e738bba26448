"""`tggate check-modules`: the contract run against a team's running modules, in the order that
needs the fewest logins from a person (docs/integrate.md#check-modules).

Exit status: 0 when nothing failed (warnings and skips included), 1 when a check failed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import secrets
import time
from dataclasses import dataclass
from typing import TextIO

import aiohttp

from tggate.adapters.auth_api import AuthApi
from tggate.conformance.auth_checks import AuthChecks, forged
from tggate.conformance.logins import Decider, GrantedTokens, Hooks, PersonAtThePage
from tggate.conformance.main_checks import MainChecks
from tggate.conformance.plan import Plan
from tggate.conformance.probe import Probe
from tggate.conformance.report import Redactor, Report, Verdict
from tggate.core.commands import CommandTable

__all__ = ["CheckOptions", "check_modules", "run_check"]


@dataclass(frozen=True, slots=True)
class CheckOptions:
    auth_url: str
    main_url: str
    api: AuthApi
    table: CommandTable
    plan: Plan
    hooks_url: str | None = None  # the Authorization module's test hooks; None: a person
    hook_secret: str | None = None
    notify_secret: str | None = None
    expired_token: str | None = None  # an expired access token the team kept (person mode)
    person_timeout_s: float = 300.0
    max_wait_s: float = 120.0  # the longest the check waits out an expiry or a grace window
    timeout_s: float = 5.0  # each HTTP request


def _expires_at(token: str) -> float | None:
    """The `exp` claim of a JWT, read without verifying it (only to know when it expires)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


async def check_modules(options: CheckOptions, out: TextIO) -> int:
    """Run every check, print the report to `out`; the exit status."""
    redactor = Redactor()
    redactor.add(options.hook_secret, options.notify_secret, options.expired_token)
    report = Report(out, redactor)
    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(connector=connector) as session:
        probe = Probe(session, timeout_s=options.timeout_s)
        await _run(options, probe, report)
    report.summary()
    return 1 if report.failed else 0


def run_check(options: CheckOptions, out: TextIO) -> int:
    """`check_modules` in an event loop of its own (the CLI's entry)."""
    return asyncio.run(check_modules(options, out))


async def _run(options: CheckOptions, probe: Probe, report: Report) -> None:
    plan = options.plan
    decider: Decider
    if options.hooks_url:
        decider = Hooks(probe, url=options.hooks_url, secret=options.hook_secret)
        how = f"logins decided by the test hooks at {options.hooks_url}"
    else:
        decider = PersonAtThePage(report, patience_s=options.person_timeout_s)
        how = "logins decided by the person running the check (WAIT lines)"
    # Chat ids of the check's own, far from real ones, and new on every run.
    chat_ids = itertools.count(7_000_000_000 + secrets.randbelow(10**8) * 10)
    auth = AuthChecks(
        probe=probe,
        report=report,
        api=options.api,
        base_url=options.auth_url,
        decider=decider,
        chat_ids=chat_ids,
        login_with=plan.login_with,
        max_wait_s=options.max_wait_s,
    )
    main = MainChecks(
        probe=probe,
        report=report,
        table=options.table,
        plan=plan,
        base_url=options.main_url,
        notify_secret=options.notify_secret,
        patience_s=decider.patience_s,
        poll_s=decider.poll_s,
    )

    report.section(f"Authorization module {options.auth_url} (its API: {options.api.source})")
    report.note(how)
    started = {}
    for login_type in plan.login_types:
        login = await auth.start(login_type)
        if login is not None:
            started[login_type] = login
    await auth.unknown_login()
    # The login that is left to expire: started first, so its time runs while the rest does.
    expiring = started.get(plan.login_with)
    if expiring is not None:
        await auth.pending_login(expiring)
    pairs: dict[str, GrantedTokens] = {}
    for person in plan.people:
        pair = await auth.grant(person)
        if pair is not None:
            pairs[person.identity] = pair
    await auth.deny()

    report.section(f"Main module {options.main_url} (the actions of the command table)")
    main.skipped()
    for person in plan.people:
        pair = pairs.get(person.identity)
        if pair is None:
            report.line(Verdict.SKIP, f"main ({person.identity})", "no token: the login failed")
            continue
        await main.allowed(person, pair)
        await main.forbidden(person, pair)
    first = plan.people[0]
    sample = pairs.get(first.identity)
    if sample is not None:
        await main.notifications(first, sample)
        await main.refused("forged", forged(sample.access_token))
    await main.refused("missing", None)
    expired = await _expired_token(options, auth, report, decider, sample)
    if expired is not None:
        await main.refused("expired", expired)

    report.section("Authorization module: refresh and logout")
    if sample is None:
        report.line(Verdict.SKIP, "auth refresh", "no token: the login failed")
    else:
        await auth.rotation(sample, lambda pair: main.accepts(pair, first))
        await auth.unknown_refresh(sample)
    last = plan.people[-1]
    kept = (
        pairs.get(last.identity)
        if len(plan.people) > 1
        else await auth.grant(last, why=", a second session")
    )
    given = await auth.grant(last, why=", another session") if kept is not None else None
    if kept is None or given is None:
        report.line(Verdict.SKIP, "auth logout", "no two sessions: a login failed")
    else:
        await auth.logout(kept, given)
    if expiring is not None:
        await auth.expiry(expiring)


async def _expired_token(
    options: CheckOptions,
    auth: AuthChecks,
    report: Report,
    decider: Decider,
    sample: GrantedTokens | None,
) -> str | None:
    """An expired access token for the 401 checks: the one given (--expired-token), one a test
    hook grants already expired, or a person's own once its `exp` has passed (if soon enough)."""
    if options.expired_token:
        token = options.expired_token
    elif isinstance(decider, Hooks):
        pair = await auth.grant(
            options.plan.people[0], access_ttl_s=0, why=", access token expired at once"
        )
        if pair is None:
            return None
        token = pair.access_token
    elif sample is not None:
        token = sample.access_token
    else:
        report.line(Verdict.SKIP, "main (expired token)", "no token: the login failed")
        return None
    expires_at = _expires_at(token)
    if expires_at is None and options.expired_token:
        return token  # the team's word for it: an opaque token says nothing of its expiry
    if expires_at is None:
        report.line(
            Verdict.SKIP,
            "main (expired token)",
            "the token has no readable exp claim; pass --expired-token",
        )
        return None
    # One second more: exp counts whole seconds, and the module's clock may be a little behind.
    left = expires_at + 1 - time.time()
    if left > options.max_wait_s:
        report.line(
            Verdict.SKIP,
            "main (expired token)",
            f"the access token expires in {left:.0f} s, "
            f"beyond --max-wait {options.max_wait_s:g} s; pass --expired-token, or use --hooks",
        )
        return None
    if left > 0:
        report.note(f"waiting {left:.1f} s for an access token to expire")
        await asyncio.sleep(left)
    return token
