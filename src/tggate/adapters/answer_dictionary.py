"""The preset dictionary kept answers are compressed with before sealing (zlib `zdict`;
tggate.adapters.redis_store, `SessionCodec`).

Most replies are the bot's own texts (tggate.core.texts) and the bundled command table's
templates (src/tggate/commands.toml), so an answer deflated against them keeps little more than
its personal part: a `/me` answer's 63 bytes of JSON become 36. The pieces are those texts as
they appear in an answer's JSON (escaped), both languages, and last, where a match is cheapest
to point at, a U1 login offer whole.

Frozen: a record compressed with it lives for a day (`update_ttl_s`) and is inflated with the
very same bytes, so changing a text must not change this. A better dictionary is a new constant
with a new format byte in the store, this one kept to read the records of the day before.
"""

# ruff: noqa: E501  # frozen data: one piece a line, so the file shows each as it is

from __future__ import annotations

__all__ = ["ANSWER_DICTIONARY_V1"]

_PIECES_V1 = (
    "No such command",
    "Нет такой команды",
    "You are not logged in.",
    "Вы не залогинены.",
    "Log in with GitHub, Yandex ID or a one-time code:",
    "Войдите через GitHub, Яндекс ID или по коду:",
    "Login failed.",
    "Неудачная авторизация.",
    "Your login is not finished yet.",
    "Вход ещё не завершён.",
    "You are logged in.",
    "Успешная авторизация.",
    "You are already logged in.",
    "Вы уже авторизованы.",
    "Session ended.",
    "Сеанс завершён.",
    "Session ended on all devices.",
    "Сеанс завершён на всех устройствах.",
    "Your session could not be restored, please log in again.",
    "Не удалось восстановить ваш сеанс, войдите снова.",
    "Not enough rights for this action.",
    "Недостаточно прав для этого действия.",
    "Not found.",
    "Не найдено.",
    "The service is temporarily unavailable, please try again later.",
    "Сервис временно недоступен, попробуйте позже.",
    "The action could not be completed.",
    "Не удалось выполнить действие.",
    "Usage: ",
    "Использование: ",
    "I am the system's front door in Telegram: log in, and I will run your commands and send you notifications.",
    "Я — вход в систему через Telegram: войдите, и я выполню ваши команды и пришлю уведомления.",
    "Commands:",
    "Команды:",
    "🔔 ",
    "One-time code",
    "По коду",
    "Open the login page",
    "Открыть страницу входа",
    "Wrong arguments: ",
    "Неверные аргументы: ",
    "Something went wrong. Please try again later.",
    "Что-то пошло не так. Попробуйте позже.",
    "The service is temporarily unavailable. The answer will come once it is back.",
    "Сервис временно недоступен. Ответ придёт, как только он заработает.",
    "👤 {name}\\nLogin: {id}\\nRole: {role}",
    "👤 {name}\\nЛогин: {id}\\nРоль: {role}",
    "You have no courses yet.",
    "У вас пока нет курсов.",
    "Your courses:",
    "Ваши курсы:",
    "• {id} — {title} (teacher: {teacher})",
    "• {id} — {title} (преподаватель: {teacher})",
    "📘 {title} ({id})\\n{description}\\nTeacher: {teacher}\\nStudents: {students}",
    "📘 {title} ({id})\\n{description}\\nПреподаватель: {teacher}\\nСтудентов: {students}",
    "The course has no tasks yet.",
    "В курсе пока нет заданий.",
    "Course tasks:",
    "Задания курса:",
    "• {id}: {title} — due {due}",
    "• {id}: {title} — срок {due}",
    "The course has no students yet.",
    "На курсе пока нет студентов.",
    "Course students:",
    "Студенты курса:",
    "• {name} ({id})",
    "No grades yet.",
    "Оценок пока нет.",
    "Your grades:",
    "Ваши оценки:",
    "• {course} · {task_title}: {grade}",
    '[["Log in with GitHub, Yandex ID or a one-time code:",[[["GitHub",null,"/login github"],["Yandex ID",null,"/login yandex"]],[["One-time code",null,"/login code"]]]]]',
    '[["You are not logged in.\\nLog in with GitHub, Yandex ID or a one-time code:",[[["GitHub",null,"/login github"],["Yandex ID",null,"/login yandex"]],[["One-time code",null,"/login code"]]]]]',
    '[["Войдите через GitHub, Яндекс ID или по коду:",[[["GitHub",null,"/login github"],["Яндекс ID",null,"/login yandex"]],[["По коду",null,"/login code"]]]]]',
    '[["Вы не залогинены.\\nВойдите через GitHub, Яндекс ID или по коду:",[[["GitHub",null,"/login github"],["Яндекс ID",null,"/login yandex"]],[["По коду",null,"/login code"]]]]]',
)

ANSWER_DICTIONARY_V1 = "".join(_PIECES_V1).encode()
