"""tggate's sandbox: everything that lets the product run on one machine with no Telegram
account, and that the tests run against — never part of a production install.

- `reference.auth`, `reference.main`: reference Authorization and Main modules
  (docs/contract.md says what any module must do; these do it).
- `fakes.telegram`: a fake Telegram Bot API server with a web chat.
- `fakes.oauth`: a fake GitHub + Yandex ID OAuth provider.
- `topology`: the whole system as real processes on loopback; `demo`: `tggate demo`.
- `cli`: the `tggate` commands above, added to the product's CLI through the
  `tggate.commands` entry point.
"""
