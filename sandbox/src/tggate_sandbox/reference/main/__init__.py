"""The reference Main module (docs/contract.md#the-main-module, docs/contract.md#reference):
`create_app` builds it."""

from tggate_sandbox.reference.main.app import create_app

__all__ = ["create_app"]
