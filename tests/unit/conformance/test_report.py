"""The report (conformance/report.py): one line per check, the exchange behind a failure, and
never a token in full."""

from __future__ import annotations

import io

from tggate.conformance.report import Exchange, Redactor, Report, Verdict

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
OPAQUE = "opaque-refresh-token-0123456789"


def test_registered_secrets_and_anything_jwt_shaped_are_shortened() -> None:
    redactor = Redactor()
    redactor.add(OPAQUE, None, "short")

    shown = redactor.hide(f"a {OPAQUE} b {JWT} c short d host.example.com e")

    short = "<jwt …" + JWT[-4:] + ">"
    assert shown == f"a <token …6789> b {short} c short d host.example.com e"


def test_a_failure_shows_the_request_and_the_answer_and_a_pass_does_not() -> None:
    out = io.StringIO()
    report = Report(out, Redactor())
    exchange = Exchange(
        "GET",
        "http://main/api/me",
        {"Authorization": f"Bearer {JWT}"},
        None,
        500,
        b'{"detail": "boom",\n "token": "' + JWT.encode() + b'"}',
    )
    report.line(Verdict.PASS, "main me (alice)", "200", exchange)
    report.line(Verdict.FAIL, "main me (expired token)", "expected 401, got HTTP 500", exchange)
    report.line(
        Verdict.FAIL,
        "auth login",
        "no answer",
        Exchange("POST", "http://a/login", error="timed out"),
    )

    assert report.summary() == "1 passed, 2 failed, 0 warnings, 0 skipped"
    assert report.failed
    text = out.getvalue()
    short = "<jwt …" + JWT[-4:] + ">"
    assert text.splitlines()[:6] == [
        "PASS  main me (alice): 200",
        "FAIL  main me (expired token): expected 401, got HTTP 500",
        "        request:  GET http://main/api/me",
        f"                  Authorization: Bearer {short}",
        f'        response: 500 {{"detail": "boom",  "token": "{short}"}}',
        "FAIL  auth login: no answer",
    ]
    assert "        response: none (timed out)" in text
    assert JWT not in text


def test_a_long_body_is_cut_after_its_tokens_are_hidden() -> None:
    out = io.StringIO()
    report = Report(out, Redactor())
    body = ('{"pad": "' + "x" * 590 + '", "access_token": "' + JWT + '"}').encode()

    report.line(
        Verdict.FAIL, "auth refresh", "bad", Exchange("POST", "http://a", status=200, answer=body)
    )

    text = out.getvalue()
    assert JWT[:20] not in text and "chars)" in text
