// The fake Telegram's web chat (tggate docs/contract.md#reference): plain DOM, no build step,
// no innerHTML.
// Bot content only ever reaches the page through textContent and attributes we check first.
"use strict";

(() => {
  const STORAGE_KEY = "tggate.webchat.person"; // the person shown now, with their key
  const PEOPLE_KEY = "tggate.webchat.people"; // everyone this browser created
  const KEY_HEADER = "X-Webchat-Key";
  const POLL_TIMEOUT_S = 25;
  const ANSWER_TIMEOUT_S = 10;

  const STRINGS = {
    en: {
      people: "People",
      newPerson: "New person",
      name: "Name",
      language: "Language",
      create: "Start chatting",
      about: "A person here is a Telegram user to the bot: it gets your messages as updates.",
      noPeople: "Nobody yet — create a person below.",
      private: "Each person's chat opens only in the browser that created them.",
      placeholder: "Message",
      send: "Send",
      idle: "",
      online: "online",
      connecting: "connecting…",
      offline: "no connection, retrying…",
      edited: "edited",
      empty: "No messages yet. Send /start to begin.",
      nameRequired: "Enter a name",
      unsupported: "This button does not work in the web chat",
    },
    ru: {
      people: "Люди",
      newPerson: "Новый человек",
      name: "Имя",
      language: "Язык",
      create: "Начать разговор",
      about: "Для бота это пользователь Telegram: ваши сообщения приходят ему как обновления.",
      noPeople: "Пока никого — создайте человека ниже.",
      private: "Чат человека открывается только в браузере, где его создали.",
      placeholder: "Сообщение",
      send: "Отправить",
      idle: "",
      online: "в сети",
      connecting: "подключение…",
      offline: "нет связи, переподключаюсь…",
      edited: "изменено",
      empty: "Сообщений пока нет. Отправьте /start, чтобы начать.",
      nameRequired: "Введите имя",
      unsupported: "Эта кнопка не работает в веб-чате",
    },
  };

  const $ = (selector) => document.querySelector(selector);
  const state = {
    bot: null,
    person: null,
    language: initialLanguage(),
    generation: 0, // bumped on every switch of person: older loops stop
    controller: null,
    nodes: new Map(), // message_id -> {node, key}
    commandsKey: "",
  };

  function initialLanguage() {
    const stored = loadPerson();
    if (stored) return uiLanguage(stored.language);
    return uiLanguage(navigator.language || "en");
  }

  function uiLanguage(code) {
    return String(code || "").toLowerCase().startsWith("ru") ? "ru" : "en";
  }

  function t(key, ...args) {
    const value = STRINGS[state.language][key];
    return typeof value === "function" ? value(...args) : value;
  }

  function applyStrings() {
    document.documentElement.lang = state.language;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      node.textContent = t(node.dataset.i18n);
    }
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    }
    for (const node of document.querySelectorAll("[data-i18n-title]")) {
      node.title = t(node.dataset.i18nTitle);
      node.setAttribute("aria-label", node.title);
    }
    setStatus($("#status").dataset.state);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- the JSON API ----

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  // `key`: the person's session, for their own chat's endpoints (a Telegram app's login).
  async function api(method, path, body, signal, key) {
    const options = { method, signal, headers: {} };
    if (key) options.headers[KEY_HEADER] = key;
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, describe(data, response.status));
    return data;
  }

  function describe(data, status) {
    const detail = data && data.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail) && detail.length) {
      return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    }
    return `HTTP ${status}`;
  }

  // ---- people ----

  function usable(person) {
    return Boolean(
      person && Number.isSafeInteger(person.chat_id) && person.name && typeof person.key === "string",
    );
  }

  function loadPerson() {
    try {
      const person = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
      if (usable(person)) return person;
    } catch {
      // a broken entry is as good as none
    }
    return null;
  }

  function loadPeople() {
    try {
      const people = JSON.parse(localStorage.getItem(PEOPLE_KEY) || "[]");
      if (Array.isArray(people)) return people.filter(usable);
    } catch {
      // a broken list is as good as none
    }
    return [];
  }

  function savePerson(person) {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(person));
    const others = loadPeople().filter((p) => p.chat_id !== person.chat_id);
    localStorage.setItem(PEOPLE_KEY, JSON.stringify([...others, person]));
  }

  async function refreshPeople() {
    state.bot = await api("GET", "/webchat/api/bot");
    $("#chat-title").textContent = state.bot.first_name + " @" + state.bot.username;
    const people = loadPeople();
    const list = $("#people-list");
    list.replaceChildren();
    for (const person of people) {
      const item = el("li");
      const button = el("button", "person");
      button.type = "button";
      button.dataset.chatId = String(person.chat_id);
      if (state.person && state.person.chat_id === person.chat_id) {
        button.setAttribute("aria-current", "true");
      }
      button.append(
        el("span", "person-name", person.name),
        el("span", "person-meta", `${person.language || "?"} · ${person.chat_id}`),
      );
      button.addEventListener("click", () => switchTo(person));
      item.append(button);
      list.append(item);
    }
    $("#people-empty").hidden = people.length > 0;
  }

  // Back to a person this browser created: registered again, in case the fake restarted.
  async function switchTo(person) {
    try {
      selectPerson(await registerAgain(person));
    } catch (error) {
      toast(error.message);
    }
  }

  function showPeople(show) {
    $("#people-panel").hidden = !show;
    $("#chat-panel").hidden = show || !state.person;
    if (show) {
      $("#person-language").value = state.language;
      refreshPeople().catch((error) => toast(error.message));
    }
  }

  async function createPerson(event) {
    event.preventDefault();
    const name = $("#person-name").value.trim();
    if (!name) {
      toast(t("nameRequired"));
      $("#person-name").focus();
      return;
    }
    try {
      const person = await api("POST", "/webchat/api/people", {
        name,
        language: $("#person-language").value,
      });
      $("#person-name").value = "";
      selectPerson(person);
    } catch (error) {
      toast(error.message);
    }
  }

  function selectPerson(person) {
    state.person = {
      chat_id: person.chat_id,
      name: person.name,
      language: person.language,
      key: person.key,
    };
    savePerson(state.person);
    state.language = uiLanguage(person.language);
    applyStrings();
    $("#person-label").textContent = person.name;
    for (const node of state.nodes.values()) node.node.remove();
    state.nodes.clear();
    state.commandsKey = "";
    renderCommands([]);
    setStatus("connecting");
    $("#messages-empty").hidden = true;
    showPeople(false);
    startPolling();
    $("#message-input").focus();
  }

  // A reload, or a restarted fake: register the stored person again under the same chat id,
  // with the key that proves it is theirs.
  async function registerAgain(person) {
    const language = person.language === "ru" || person.language === "en" ? person.language : state.language;
    return api("POST", "/webchat/api/people", {
      name: person.name,
      language,
      chat_id: person.chat_id,
      key: person.key,
    });
  }

  // ---- the long poll ----

  function startPolling() {
    state.generation += 1;
    if (state.controller) state.controller.abort();
    pollLoop(state.generation, state.person);
  }

  async function pollLoop(generation, person) {
    let revision = null;
    let delay = 0;
    while (generation === state.generation) {
      const controller = new AbortController();
      state.controller = controller;
      // Give up on an answer that is long overdue (a proxy that swallowed the request).
      const guard = setTimeout(() => controller.abort(), (POLL_TIMEOUT_S + 15) * 1000);
      try {
        const query = revision === null ? "timeout=0" : `revision=${encodeURIComponent(revision)}&timeout=${POLL_TIMEOUT_S}`;
        const data = await api(
          "GET",
          `/webchat/api/chats/${person.chat_id}/messages?${query}`,
          undefined,
          controller.signal,
          person.key,
        );
        if (generation !== state.generation) return;
        revision = data.revision;
        renderMessages(data.messages);
        renderCommands(data.commands);
        setStatus("online");
        delay = 0;
      } catch (error) {
        if (generation !== state.generation) return;
        if (error instanceof ApiError && error.status === 404) {
          try {
            await registerAgain(person);
            continue;
          } catch {
            // fall through to the back-off below
          }
        }
        setStatus("offline");
        delay = Math.min(delay ? delay * 2 : 500, 5000);
        await sleep(delay);
      } finally {
        clearTimeout(guard);
      }
    }
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function setStatus(name) {
    const status = $("#status");
    status.dataset.state = name;
    status.textContent = t(name);
  }

  // ---- messages ----

  function renderMessages(messages) {
    const box = $("#messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const seen = new Set();
    let previous = $("#messages-empty");
    let appended = false;
    for (const message of messages) {
      seen.add(message.message_id);
      const key = JSON.stringify(message);
      const known = state.nodes.get(message.message_id);
      let node = known && known.node;
      if (!known || known.key !== key) {
        const fresh = messageNode(message);
        if (node) node.replaceWith(fresh);
        else {
          previous.after(fresh);
          appended = true;
        }
        node = fresh;
        state.nodes.set(message.message_id, { node, key });
      }
      previous = node;
    }
    for (const [id, known] of state.nodes) {
      if (!seen.has(id)) {
        known.node.remove();
        state.nodes.delete(id);
      }
    }
    $("#messages-empty").hidden = messages.length > 0;
    if (atBottom || appended) box.scrollTop = box.scrollHeight;
  }

  function messageNode(message) {
    const node = el("div", `message ${message.from === "bot" ? "bot" : "person"}`);
    node.dataset.messageId = String(message.message_id);
    const bubble = el("div", "bubble");
    const text = el("div", "text");
    renderText(text, message.text, message.entities || [], message.from === "bot");
    const meta = el("div", "meta");
    if (message.edited) meta.append(el("span", "edited", t("edited")));
    const time = el("time", "", formatTime(message.date));
    time.dateTime = new Date(message.date * 1000).toISOString();
    meta.append(time);
    bubble.append(text, meta);
    node.append(bubble);
    if (message.from === "bot" && message.keyboard && message.keyboard.length) {
      node.append(keyboardNode(message));
    }
    return node;
  }

  function formatTime(seconds) {
    const date = new Date(seconds * 1000);
    return date.toLocaleTimeString(state.language, { hour: "2-digit", minute: "2-digit" });
  }

  function keyboardNode(message) {
    const keyboard = el("div", "keyboard");
    for (const row of message.keyboard) {
      const line = el("div", "row");
      for (const button of row) line.append(buttonNode(message, button));
      keyboard.append(line);
    }
    return keyboard;
  }

  function buttonNode(message, button) {
    const url = button.kind === "url" ? safeUrl(button.url) : null;
    if (url) {
      const link = el("a", "url-button", button.text);
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.dataset.url = url;
      link.title = url;
      return link;
    }
    const node = el("button", "", button.text);
    node.type = "button";
    if (button.kind === "callback") {
      node.dataset.callback = button.data;
      node.addEventListener("click", () => press(message.message_id, button.data, node));
    } else {
      node.disabled = true;
      node.classList.add("unsupported");
      node.title = t("unsupported");
    }
    return node;
  }

  async function press(messageId, data, node) {
    const person = state.person;
    node.classList.add("pending");
    try {
      const pressed = await api(
        "POST",
        `/webchat/api/chats/${person.chat_id}/press`,
        { message_id: messageId, data },
        undefined,
        person.key,
      );
      // Telegram shows the bot's answer (answerCallbackQuery) as a toast or an alert.
      const answer = await api(
        "GET",
        `/webchat/api/chats/${person.chat_id}/callbacks/${encodeURIComponent(pressed.callback_query_id)}?timeout=${ANSWER_TIMEOUT_S}`,
        undefined,
        undefined,
        person.key,
      );
      if (answer.text) toast(answer.text, answer.show_alert ? 8000 : 3000);
      const url = answer.url ? safeUrl(answer.url) : null;
      if (url) window.open(url, "_blank", "noopener,noreferrer");
    } catch (error) {
      toast(error.message);
    } finally {
      node.classList.remove("pending");
    }
  }

  function safeUrl(candidate) {
    try {
      const url = new URL(String(candidate));
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  // ---- text with entities ----

  // Entity offsets count UTF-16 code units, like JavaScript string indices: they apply as they are.
  const WRAPPERS = {
    bold: () => el("strong"),
    italic: () => el("em"),
    underline: () => el("u"),
    strikethrough: () => el("s"),
    spoiler: () => {
      const node = el("span", "spoiler");
      node.addEventListener("click", () => node.classList.add("revealed"));
      return node;
    },
    code: () => el("code"),
    pre: () => el("code", "pre"),
    blockquote: () => el("span", "quote"),
    expandable_blockquote: () => el("span", "quote"),
  };
  const LINKS = new Set(["text_link", "url"]);

  function renderText(container, text, entities, fromBot) {
    const usable = entities.filter(
      (e) => (WRAPPERS[e.type] || LINKS.has(e.type)) && e.length > 0 && e.offset >= 0,
    );
    const cuts = new Set([0, text.length]);
    for (const e of usable) {
      cuts.add(Math.min(e.offset, text.length));
      cuts.add(Math.min(e.offset + e.length, text.length));
    }
    const points = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i + 1 < points.length; i += 1) {
      const [start, end] = [points[i], points[i + 1]];
      const active = usable
        .filter((e) => e.offset <= start && e.offset + e.length >= end)
        .sort((a, b) => a.offset - b.offset || b.length - a.length);
      const piece = text.slice(start, end);
      let outer = null;
      let inner = null;
      let linked = false;
      for (const e of active) {
        let wrapper = null;
        if (LINKS.has(e.type)) {
          const url = safeUrl(e.type === "url" ? text.slice(e.offset, e.offset + e.length) : e.url);
          if (!url || linked) continue;
          wrapper = linkNode(url);
          linked = true;
        } else {
          wrapper = WRAPPERS[e.type]();
        }
        if (inner) inner.append(wrapper);
        else outer = wrapper;
        inner = wrapper;
      }
      const target = inner || container;
      if (linked) target.append(piece);
      else linkify(target, piece, fromBot);
      if (outer) container.append(outer);
    }
  }

  function linkNode(url) {
    const link = el("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    return link;
  }

  // Bare links become clickable (Telegram does the same), and so do /commands in the bot's text.
  // A command starts the text or follows a space or an opening bracket or quote (not "</b>").
  const AUTOLINK =
    /https?:\/\/[^\s<>"'«»]+|(?<![^\s(\[«"'])\/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])/g;

  function linkify(target, piece, fromBot) {
    let last = 0;
    for (const match of piece.matchAll(AUTOLINK)) {
      let found = match[0];
      if (found.startsWith("/")) {
        if (!fromBot) continue;
        target.append(piece.slice(last, match.index));
        const command = el("button", "command-link", found);
        command.type = "button";
        command.dataset.command = found;
        command.addEventListener("click", () => sendText(found));
        target.append(command);
        last = match.index + found.length;
        continue;
      }
      found = found.replace(/[.,;:!?)\]}'"]+$/, "");
      const url = safeUrl(found);
      if (!url) continue;
      target.append(piece.slice(last, match.index));
      const link = linkNode(url);
      link.textContent = found;
      target.append(link);
      last = match.index + found.length;
    }
    target.append(piece.slice(last));
  }

  // ---- sending ----

  async function sendText(text) {
    const person = state.person;
    if (!person || !text.trim()) return false;
    try {
      await api("POST", `/webchat/api/chats/${person.chat_id}/messages`, { text }, undefined, person.key);
      return true;
    } catch (error) {
      toast(error.message);
      return false;
    }
  }

  async function submitMessage(event) {
    if (event) event.preventDefault();
    const input = $("#message-input");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    fitInput();
    if (!(await sendText(text))) input.value = text;
    input.focus();
  }

  function fitInput() {
    const input = $("#message-input");
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
  }

  function renderCommands(commands) {
    const key = JSON.stringify(commands || []);
    if (key === state.commandsKey) return;
    state.commandsKey = key;
    const bar = $("#commands");
    bar.replaceChildren();
    for (const command of commands || []) {
      const chip = el("button", "command", `/${command.command}`);
      chip.type = "button";
      chip.dataset.command = `/${command.command}`;
      chip.title = command.description;
      chip.addEventListener("click", () => {
        const input = $("#message-input");
        input.value = `/${command.command} `;
        fitInput();
        input.focus();
      });
      bar.append(chip);
    }
    bar.hidden = !bar.childElementCount;
  }

  // ---- toast ----

  let toastTimer = null;

  function toast(text, ms = 4000) {
    const node = $("#toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      node.hidden = true;
    }, ms);
  }

  // ---- start ----

  async function start() {
    applyStrings();
    $("#person-form").addEventListener("submit", createPerson);
    $("#person-language").addEventListener("change", (event) => {
      state.language = uiLanguage(event.target.value);
      applyStrings();
    });
    $("#people-toggle").addEventListener("click", () => showPeople($("#people-panel").hidden));
    $("#composer").addEventListener("submit", submitMessage);
    $("#message-input").addEventListener("input", fitInput);
    $("#message-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submitMessage(event);
    });
    $("#toast").addEventListener("click", () => {
      $("#toast").hidden = true;
    });
    // Back online: do not wait for the back-off, poll again now.
    window.addEventListener("online", () => {
      if (state.person) startPolling();
    });

    const stored = loadPerson();
    if (stored) {
      try {
        selectPerson(await registerAgain(stored));
        refreshPeople().catch(() => {});
        return;
      } catch (error) {
        toast(error.message);
      }
    }
    showPeople(true);
    $("#person-name").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((error) => toast(String(error.message || error)));
  });
})();
