"""The reference Authorization module (docs/contract.md#the-authorization-module,
docs/contract.md#reference): `create_app` builds it."""

from tggate_sandbox.reference.auth.app import create_app
from tggate_sandbox.reference.auth.oauth import OAuthProviderConfig, github_config, yandex_config
from tggate_sandbox.reference.auth.pages import DEMO_IDENTITIES, DemoIdentity

__all__ = [
    "DEMO_IDENTITIES",
    "DemoIdentity",
    "OAuthProviderConfig",
    "create_app",
    "github_config",
    "yandex_config",
]
