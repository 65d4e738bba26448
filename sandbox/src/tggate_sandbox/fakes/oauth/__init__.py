"""A local fake OAuth 2.0 provider (GitHub and Yandex ID flavours) for tests and the demo."""

from tggate_sandbox.fakes.oauth.app import OAuthClient, auth_configs, create_app
from tggate_sandbox.fakes.oauth.grants import DEMO_USERS, FakeUser

__all__ = ["DEMO_USERS", "FakeUser", "OAuthClient", "auth_configs", "create_app"]
