"""The HTML the person sees on the login pages: plain forms, inline CSS, Russian or English.

Every value that comes from outside goes through `html.escape`. The element ids and button values
listed in `tggate_sandbox.reference.auth.web` are a contract with browser tests; keep them stable.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tggate.contract.auth import TelegramUserJson

__all__ = [
    "DEMO_IDENTITIES",
    "DemoIdentity",
    "Lang",
    "code_page",
    "confirm_page",
    "error_page",
    "error_text",
    "language_from_header",
    "layout",
    "result_page",
    "signin_page",
    "telegram_name",
]

Lang = Literal["ru", "en"]


@dataclass(frozen=True, slots=True)
class DemoIdentity:
    """One button on the demo sign-in page."""

    identity: str
    name: str
    label: str


# The reference Main module knows alice as a student and bob as a teacher (main/catalog.py).
DEMO_IDENTITIES: tuple[DemoIdentity, ...] = (
    DemoIdentity("alice", "Алиса Иванова", "alice (student)"),
    DemoIdentity("bob", "Борис Петров", "bob (teacher)"),
    DemoIdentity("dima", "Дмитрий Орлов", "dima (student)"),
)

_CSS = """
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f3f4f6;
color:#1f2328}
main{max-width:30rem;margin:1.5rem auto;padding:1.25rem;background:#fff;border-radius:12px;
box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:1.3rem;margin:0 0 .75rem}
label{display:block;margin:.75rem 0 .25rem}
input,select,textarea,button{font:inherit;box-sizing:border-box}
input[type=text],select,textarea{width:100%;padding:.6rem;border:1px solid #c4c8cf;
border-radius:8px}
button{padding:.65rem 1.1rem;margin:.35rem .35rem .35rem 0;border:0;border-radius:8px;
background:#2563eb;color:#fff;cursor:pointer}
button.secondary{background:#e5e7eb;color:#1f2328}
button.danger{background:#dc2626}
a.button{display:inline-block;padding:.65rem 1.1rem;margin:.35rem .35rem .35rem 0;
border-radius:8px;background:#24292f;color:#fff;text-decoration:none}
dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem .8rem}dt{color:#57606a}dd{margin:0}
.error{color:#b91c1c}.muted{color:#57606a;font-size:.9rem}
.warning{padding:.6rem .8rem;border-radius:8px;background:#fef3c7;color:#78350f;
border:1px solid #f59e0b}
"""

_TEXTS: dict[str, tuple[str, str]] = {
    "signin.title": ("Вход", "Sign in"),
    "signin.intro": (
        "Чтобы подтвердить вход в Telegram по коду, сначала войдите.",
        "To confirm a Telegram login with a code, sign in first.",
    ),
    "signin.identity": ("Имя пользователя", "User name"),
    "signin.submit": ("Войти", "Sign in"),
    "signin.demo": ("Или выберите демо-пользователя:", "Or pick a demo user:"),
    "signin.demo_warning": (
        "Демо-вход: здесь любой может войти кем угодно, просто введя имя. Он только для "
        "знакомства с tggate и никогда не должен стоять перед настоящими людьми.",
        "Demo sign-in: anyone can sign in here as anyone, just by typing a name. It is for "
        "trying tggate out and must never face real people.",
    ),
    "signin.providers": ("Или войдите через:", "Or sign in with:"),
    "code.title": ("Вход по коду", "Log in with a code"),
    "code.whoami": ("Вы вошли как", "You are signed in as"),
    "code.label": ("Код из Telegram", "The code from Telegram"),
    "code.submit": ("Продолжить", "Continue"),
    "code.signout": ("Выйти", "Sign out"),
    "confirm.title": ("Подтвердите вход", "Confirm the login"),
    "confirm.question": (
        "Чат Telegram просит доступ к системе от вашего имени. Разрешить?",
        "A Telegram chat asks for access to the system on your behalf. Allow it?",
    ),
    "confirm.telegram": ("В Telegram", "In Telegram"),
    "confirm.chat": ("Чат", "Chat"),
    "confirm.type": ("Способ входа", "Login type"),
    "confirm.when": ("Запрошен", "Requested"),
    "confirm.as": ("Войти как", "Log in as"),
    "confirm.yes": ("Да", "Yes"),
    "confirm.no": ("Нет", "No"),
    "result.granted.title": ("Вход разрешён", "Login allowed"),
    "result.denied.title": ("Вход отклонён", "Login denied"),
    "result.back": ("Можете вернуться в Telegram.", "You can return to Telegram."),
    "error.back": ("Вернуться к вводу кода", "Back to the code page"),
}

# reason -> (title ru, title en, text ru, text en); the reason is also `#error[data-reason]`.
_ERRORS: dict[str, tuple[str, str, str, str]] = {
    "wrong-code": (
        "Неверный код",
        "Wrong code",
        "Такого кода нет. Проверьте код в Telegram и введите его ещё раз.",
        "There is no such code. Check the code in Telegram and enter it again.",
    ),
    "expired": (
        "Вход устарел",
        "The login expired",
        "Время на вход истекло. Вернитесь в Telegram и начните вход заново: /login.",
        "The time to log in is over. Return to Telegram and start again: /login.",
    ),
    "used": (
        "Код уже использован",
        "The code was already used",
        "Этот вход уже подтверждён или отклонён, или его открыли в другом браузере. "
        "Начните вход в Telegram заново: /login.",
        "This login was already answered, or opened in another browser. "
        "Start again in Telegram: /login.",
    ),
    "used-link": (
        "Ссылка уже использована",
        "The link was already used",
        "Ссылка для входа работает один раз. Начните вход в Telegram заново: /login.",
        "A login link works once. Start again in Telegram: /login.",
    ),
    "unknown-link": (
        "Ссылка недействительна",
        "Unknown link",
        "Такой ссылки для входа нет. Начните вход в Telegram заново: /login.",
        "There is no such login link. Start again in Telegram: /login.",
    ),
    "rate-limited": (
        "Слишком много попыток",
        "Too many tries",
        "С вашего адреса введено слишком много неверных кодов. Подождите минуту и попробуйте "
        "снова.",
        "Too many wrong codes were entered from your address. Wait a minute and try again.",
    ),
    "blocked": (
        "Код заблокирован",
        "The code was blocked",
        "После слишком многих неверных попыток этот код больше не действует, вход отклонён. "
        "Начните вход в Telegram заново: /login.",
        "After too many wrong guesses this code no longer works, and the login was denied. "
        "Start again in Telegram: /login.",
    ),
    "csrf": (
        "Запрос отклонён",
        "Request refused",
        "Форма устарела или отправлена не с этой страницы. Обновите страницу и повторите.",
        "The form is stale or was not sent from this page. Reload the page and try again.",
    ),
    "state": (
        "Вход отклонён",
        "Login refused",
        "Ответ провайдера не относится ко входу, начатому в этом браузере. Ничего не изменено.",
        "The provider's answer does not belong to a login started in this browser. "
        "Nothing was changed.",
    ),
    "provider": (
        "Ошибка провайдера",
        "Provider error",
        "Не удалось получить ваши данные у провайдера, вход не выполнен. "
        "Начните вход в Telegram заново: /login.",
        "Could not get your details from the provider; the login failed. "
        "Start again in Telegram: /login.",
    ),
    "provider-denied": (
        "Вход отменён",
        "Sign-in cancelled",
        "Вы отказались входить у провайдера.",
        "You declined to sign in at the provider.",
    ),
    "not-configured": (
        "Способ входа не настроен",
        "Login type not configured",
        "Этот способ входа не настроен на сервере. Выберите в Telegram другой: /login.",
        "This login type is not configured on this server. Pick another in Telegram: /login.",
    ),
    "nothing-to-confirm": (
        "Нечего подтверждать",
        "Nothing to confirm",
        "Введите код из Telegram или откройте ссылку, которую прислал бот.",
        "Enter the code from Telegram or open the link the bot sent you.",
    ),
    "bad-identity": (
        "Недопустимое имя",
        "Invalid user name",
        "Имя: от 1 до 64 букв, цифр, точек, дефисов или подчёркиваний.",
        "A user name is 1 to 64 letters, digits, dots, dashes or underscores.",
    ),
    "bad-request": (
        "Неверный запрос",
        "Bad request",
        "Запрос неполон или неверен.",
        "The request is incomplete or invalid.",
    ),
}


def error_text(reason: str, lang: Lang) -> tuple[str, str]:
    """The title and the sentence for an error reason."""
    title_ru, title_en, text_ru, text_en = _ERRORS[reason]
    return (title_ru, text_ru) if lang == "ru" else (title_en, text_en)


_LOGIN_TYPES: dict[str, tuple[str, str]] = {
    "code": ("одноразовый код", "one-time code"),
    "github": ("GitHub", "GitHub"),
    "yandex": ("Яндекс ID", "Yandex ID"),
}


def _t(key: str, lang: Lang) -> str:
    ru, en = _TEXTS[key]
    return ru if lang == "ru" else en


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def language_from_header(accept_language: str | None) -> Lang:
    """Russian or English, whichever the browser prefers; Russian (the bot's default) otherwise."""
    best: tuple[float, Lang] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower()[:2]
        if lang not in ("ru", "en"):
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        # Among equal qualities, the earlier tag wins.
        score = quality - position * 1e-6
        if best is None or score > best[0]:
            best = (score, "ru" if lang == "ru" else "en")
    return "ru" if best is None or best[0] <= 0 else best[1]


def layout(title: str, body: str, *, lang: Lang, css: str = "") -> str:
    """A whole page around `body` (already escaped HTML)."""
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}{css}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{_e(token)}">'


def _error_line(reason: str | None, lang: Lang) -> str:
    if reason is None:
        return ""
    _, text = error_text(reason, lang)
    return f'<p id="error" class="error" data-reason="{_e(reason)}">{_e(text)}</p>'


def signin_page(
    *,
    lang: Lang,
    csrf: str,
    demo: Sequence[DemoIdentity],
    providers: Sequence[str],
    error: str | None = None,
) -> str:
    parts = [f"<h1>{_e(_t('signin.title', lang))}</h1>", _error_line(error, lang)]
    if demo:
        # Issue 10: a sign-in that trusts a typed name says so before anything else.
        parts.append(
            f'<p id="demo-warning" class="warning" role="alert">'
            f"{_e(_t('signin.demo_warning', lang))}</p>"
        )
    parts.append(f"<p>{_e(_t('signin.intro', lang))}</p>")
    if demo:
        buttons = "".join(
            f'<button type="submit" class="secondary" name="demo" value="{_e(d.identity)}">'
            f"{_e(d.label)}</button>"
            for d in demo
        )
        parts.append(
            '<form id="signin-form" method="post" action="/signin">'
            f"{_csrf(csrf)}"
            f'<label for="identity">{_e(_t("signin.identity", lang))}</label>'
            '<input type="text" id="identity" name="identity" autocomplete="username" '
            'maxlength="64">'
            f'<button type="submit" id="signin">{_e(_t("signin.submit", lang))}</button>'
            f'<p class="muted">{_e(_t("signin.demo", lang))}</p>'
            f'<div id="demo-users">{buttons}</div>'
            "</form>"
        )
    if providers:
        links = "".join(
            f'<a class="button" id="signin-{_e(name)}" href="/signin/{_e(name)}">'
            f"{_e(_LOGIN_TYPES.get(name, (name, name))[0 if lang == 'ru' else 1])}</a>"
            for name in providers
        )
        parts.append(f'<p class="muted">{_e(_t("signin.providers", lang))}</p><p>{links}</p>')
    return layout(_t("signin.title", lang), "".join(parts), lang=lang)


def code_page(
    *,
    lang: Lang,
    csrf: str,
    identity: str,
    name: str,
    error: str | None = None,
) -> str:
    who = name if name == identity else f"{name} ({identity})"
    body = (
        f"<h1>{_e(_t('code.title', lang))}</h1>"
        f'<p id="whoami" data-identity="{_e(identity)}">{_e(_t("code.whoami", lang))} '
        f"<b>{_e(who)}</b></p>"
        f"{_error_line(error, lang)}"
        '<form id="code-form" method="post" action="/code">'
        f"{_csrf(csrf)}"
        f'<label for="code">{_e(_t("code.label", lang))}</label>'
        '<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" '
        'placeholder="123-456" maxlength="16" required autofocus>'
        f'<button type="submit" id="submit-code">{_e(_t("code.submit", lang))}</button>'
        "</form>"
        '<form id="signout-form" method="post" action="/signout">'
        f"{_csrf(csrf)}"
        f'<button type="submit" id="signout" class="secondary">{_e(_t("code.signout", lang))}'
        "</button></form>"
    )
    return layout(_t("code.title", lang), body, lang=lang)


def confirm_page(
    *,
    lang: Lang,
    csrf: str,
    ticket: str,
    chat_id: int,
    login_type: str,
    requested_at: float,
    identity: str,
    name: str,
    telegram_user: TelegramUserJson | None = None,
) -> str:
    when = datetime.fromtimestamp(requested_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    kind = _LOGIN_TYPES.get(login_type, (login_type, login_type))[0 if lang == "ru" else 1]
    who = name if name == identity else f"{name} ({identity})"
    # The names the person gave Telegram, so they recognise their own request (issue 9,
    # finding 8). Anyone can choose any name: escaped like every value, and the chat id stays.
    sender = (
        ""
        if telegram_user is None
        else f"<dt>{_e(_t('confirm.telegram', lang))}</dt>"
        f'<dd id="telegram-user">{_e(telegram_name(telegram_user))}</dd>'
    )
    body = (
        f"<h1>{_e(_t('confirm.title', lang))}</h1>"
        f"<p>{_e(_t('confirm.question', lang))}</p>"
        "<dl>"
        f"{sender}"
        f'<dt>{_e(_t("confirm.chat", lang))}</dt><dd id="chat-id">{_e(chat_id)}</dd>'
        f"<dt>{_e(_t('confirm.type', lang))}</dt>"
        f'<dd id="login-type" data-type="{_e(login_type)}">{_e(kind)}</dd>'
        f'<dt>{_e(_t("confirm.when", lang))}</dt><dd id="requested-at">{_e(when)}</dd>'
        f"<dt>{_e(_t('confirm.as', lang))}</dt>"
        f'<dd id="confirm-identity" data-identity="{_e(identity)}">{_e(who)}</dd>'
        "</dl>"
        '<form id="confirm-form" method="post" action="/confirm">'
        f'{_csrf(csrf)}<input type="hidden" name="ticket" value="{_e(ticket)}">'
        f'<button type="submit" id="yes" name="decision" value="yes">'
        f"{_e(_t('confirm.yes', lang))}</button>"
        f'<button type="submit" id="no" name="decision" value="no" class="danger">'
        f"{_e(_t('confirm.no', lang))}</button>"
        "</form>"
    )
    return layout(_t("confirm.title", lang), body, lang=lang)


def telegram_name(user: TelegramUserJson) -> str:
    """ "Alice Smith (@alice)", as Telegram shows a person."""
    full = " ".join(part for part in (user.first_name, user.last_name) if part)
    return f"{full} (@{user.username})" if user.username else full


def result_page(*, lang: Lang, granted: bool, note: str | None = None) -> str:
    status = "granted" if granted else "denied"
    title = _t(f"result.{status}.title", lang)
    extra = f'<p class="muted">{_e(note)}</p>' if note else ""
    body = (
        f"<h1>{_e(title)}</h1>"
        f'<p id="result" data-status="{status}">{_e(_t("result.back", lang))}</p>{extra}'
    )
    return layout(title, body, lang=lang)


def error_page(*, lang: Lang, reason: str, back: bool = False) -> str:
    """A page that only explains what went wrong (`#error[data-reason]`)."""
    title, _ = error_text(reason, lang)
    link = f'<p><a id="back" href="/code">{_e(_t("error.back", lang))}</a></p>' if back else ""
    body = f'<h1 class="error">{_e(title)}</h1>{_error_line(reason, lang)}{link}'
    return layout(title, body, lang=lang)
