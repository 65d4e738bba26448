"""The reference Authorization module (SPEC §5.2, §7): `create_app` builds it."""

from tggate.reference.auth.app import create_app

__all__ = ["create_app"]
