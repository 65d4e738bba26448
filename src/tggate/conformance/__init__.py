"""`tggate check-modules`: the contract run against a team's running modules (docs/integrate.md).

`run.py` orders the checks, `auth_checks.py` and `main_checks.py` make them, `logins.py` says who
finishes a login (test hooks or a person), `plan.py` reads what the contract cannot know (people,
rights, argument values), `report.py` prints one line per check with tokens shortened.
"""
