"""The command table the tests share: one action without arguments, one with a checked one."""

from __future__ import annotations

from tggate.core.commands import parse_command_table

__all__ = ["TABLE"]

TABLE = parse_command_table(
    """
[[actions]]
command = "me"
description = { ru = "Профиль", en = "Profile" }
method = "GET"
path = "/api/me"
[actions.reply]
template = { ru = "Имя: {name}", en = "Name: {name}" }

[[actions]]
command = "course"
description = { ru = "Курс", en = "Course" }
method = "GET"
path = "/api/courses/{course_id}"
[[actions.args]]
name = "course_id"
pattern = "^[a-z0-9]{1,20}$"
"""
)
