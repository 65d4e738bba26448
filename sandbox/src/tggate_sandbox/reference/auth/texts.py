"""What the person is shown when a login starts, in Russian and English (the `text` of /login,
docs/openapi/auth.yaml)."""

from __future__ import annotations

from typing import Literal

__all__ = ["Language", "login_text", "not_configured_text"]

Language = Literal["ru", "en"]

_PROVIDERS = {"github": "GitHub", "yandex": "Яндекс ID"}
_PROVIDERS_EN = {"github": "GitHub", "yandex": "Yandex ID"}


def login_text(
    login_type: str,
    *,
    public_url: str,
    code: str | None,
    url: str | None,
    ttl_s: int,
    language: Language,
) -> str:
    minutes = max(1, ttl_s // 60)
    if login_type == "code":
        if language == "en":
            return (
                f"Open {public_url}/code and enter the code {code}. "
                f"The code is valid for {minutes} min."
            )
        return f"Откройте {public_url}/code и введите код {code}. Код действует {minutes} мин."
    if language == "en":
        provider = _PROVIDERS_EN.get(login_type, login_type)
        return (
            f"To log in with {provider}, open the link: {url}\nThe link is valid for {minutes} min."
        )
    provider = _PROVIDERS.get(login_type, login_type)
    return f"Чтобы войти через {provider}, откройте ссылку: {url}\nСсылка действует {minutes} мин."


def not_configured_text(login_type: str, *, language: Language) -> str:
    """The answer to a login with a provider this module has no OAuth app for."""
    if language == "en":
        provider = _PROVIDERS_EN.get(login_type, login_type)
        return f"Login with {provider} is not configured here. Try /login code."
    provider = _PROVIDERS.get(login_type, login_type)
    return f"Вход через {provider} здесь не настроен. Попробуйте /login code."
