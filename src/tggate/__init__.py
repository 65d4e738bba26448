"""tggate: a production Telegram front door."""
