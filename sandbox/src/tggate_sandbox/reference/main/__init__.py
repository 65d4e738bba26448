"""The reference Main module (SPEC §5.3, §7): `create_app` builds it."""

from tggate_sandbox.reference.main.app import create_app

__all__ = ["create_app"]
