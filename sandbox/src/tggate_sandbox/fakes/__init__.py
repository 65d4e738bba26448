"""Stand-ins for what lives outside this machine: Telegram, and GitHub / Yandex ID OAuth."""
