// The chatlab web client: one WebSocket to /ws, one protocol line per text message, both ways.
//
// The browser is just another member of the room: it sends what the user types
// (chat, or /commands) and shows the server's lines: "* ..." notices, "! ..."
// errors, "<nick> text" chat. Every line is put on the page with textContent,
// as text and never as HTML, so nothing a peer sends can run script here (the
// server's Content-Security-Policy would refuse inline script anyway).
"use strict";

const MAX_ROWS = 500; // messages kept on the page; older ones are removed
const NEAR_BOTTOM = 40; // pixels: closer than this to the end, new messages scroll into view

const ui = {
  status: document.getElementById("status"),
  messages: document.getElementById("messages"),
  sayForm: document.getElementById("say-form"),
  say: document.getElementById("say"),
  nickForm: document.getElementById("nick-form"),
  nick: document.getElementById("nick"),
  who: document.getElementById("who"),
  count: document.getElementById("count"),
  gone: document.getElementById("gone"),
  goneText: document.getElementById("gone-text"),
  reconnect: document.getElementById("reconnect"),
};

// The server's lines this page reacts to, beyond showing them.
const WELCOME = /^\* welcome to chatlab, you are (\S+) /;
const RENAMED = /^\* (\S+) is now known as (\S+)$/;
const ARRIVED_OR_LEFT = /^\* \S+ (joined|left)$/;
const ONLINE = /^\* online: (.*)$/;
const NICK_REFUSED = /^! (invalid nick|nick already taken|usage: \/nick)/;
const CHAT = /^<([^>]+)> (.*)$/s;

let socket = null;
let me = null; // our nick, as the server last told us
let leaving = false; // the user typed /quit: the close is no surprise
let whoQueue = []; // one entry per /who sent, oldest first: true if the page sent it itself

// -- the connection ---------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/ws`);
  leaving = false;
  whoQueue = [];
  setState("connecting", "connecting…");
  ui.gone.hidden = true;
  socket.addEventListener("open", () => {
    setState("online", "online");
    setEnabled(true);
    ui.say.focus();
  });
  socket.addEventListener("message", (event) => receive(String(event.data)));
  socket.addEventListener("close", (event) => disconnected(event.code));
}

function disconnected(code) {
  setEnabled(false);
  setState("offline", "offline");
  showWho([]);
  if (leaving) {
    ui.goneText.textContent = "You left the room.";
  } else if (code === 1009) {
    ui.goneText.textContent = "Disconnected: that message was far too long.";
  } else {
    ui.goneText.textContent = "Disconnected: the server went away.";
  }
  ui.gone.hidden = false;
  ui.messages.scrollTop = ui.messages.scrollHeight; // the banner took room: keep the last line in view
  ui.reconnect.focus();
}

function send(text) {
  socket.send(text);
  if (commandOf(text) === "/who") whoQueue.push(false); // the user asked: show the answer
}

function requestWho() {
  socket.send("/who");
  whoQueue.push(true);
}

// -- lines from the server ----------------------------------------------------------

function receive(line) {
  const online = line.match(ONLINE);
  if (online) {
    showWho(online[1].split(", ").filter(Boolean));
    if (whoQueue.shift()) return; // the page asked, to refresh the list: not news to the user
  }
  show(line);
  const welcome = line.match(WELCOME);
  const renamed = line.match(RENAMED);
  if (welcome) {
    setMe(welcome[1]);
  } else if (renamed && renamed[1] === me) {
    setMe(renamed[2]);
  } else if (NICK_REFUSED.test(line)) {
    ui.nick.value = me; // the box shows the nick we really have
  }
  if (welcome || renamed || ARRIVED_OR_LEFT.test(line)) requestWho();
}

function show(line) {
  const chat = line.match(CHAT);
  if (chat) {
    addRow("said", chat[1], chat[2]);
  } else if (line.startsWith("* ")) {
    addRow("notice", null, line.slice(2));
  } else if (line.startsWith("! ")) {
    addRow("error", null, line.slice(2));
  } else {
    addRow("notice", null, line);
  }
}

// -- what the user types ------------------------------------------------------------

function say(text) {
  if (!text.trim()) return; // the server ignores blank lines
  send(text);
  // The server sends chat to everyone else, so the page shows our own.
  const command = commandOf(text);
  const action = text.slice(command.length).trim();
  if (text.startsWith("//")) {
    addRow("said mine", me, text.slice(1));
  } else if (!text.startsWith("/")) {
    addRow("said mine", me, text);
  } else if (command === "/me" && action) {
    addRow("notice mine", null, `${me} ${action}`);
  } else if (command === "/quit") {
    leaving = true;
  }
}

function commandOf(text) {
  return text.startsWith("/") ? text.split(" ", 1)[0].toLowerCase() : "";
}

// -- the page -----------------------------------------------------------------------

function addRow(kind, nick, text) {
  const list = ui.messages;
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM;
  const row = document.createElement("li");
  row.className = `row ${kind}`;
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  row.append(time);
  if (nick !== null) row.append(nickTag(nick));
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  row.append(body);
  list.append(row);
  while (list.childElementCount > MAX_ROWS) list.firstElementChild.remove();
  if (atEnd) row.scrollIntoView({ block: "end" });
}

function nickTag(nick) {
  const tag = document.createElement("span");
  tag.className = "nick";
  tag.textContent = nick;
  tag.style.setProperty("--hue", String(hueOf(nick)));
  return tag;
}

function hueOf(nick) {
  let hash = 0;
  for (const char of nick.toLowerCase()) hash = (hash * 31 + char.codePointAt(0)) % 360;
  return hash;
}

function showWho(nicks) {
  ui.who.replaceChildren(
    ...nicks.map((nick) => {
      const item = document.createElement("li");
      item.append(nickTag(nick));
      if (nick === me) item.classList.add("me");
      return item;
    }),
  );
  ui.count.textContent = String(nicks.length);
}

function setMe(nick) {
  me = nick;
  ui.nick.value = nick;
}

function setState(state, label) {
  ui.status.dataset.state = state;
  ui.status.textContent = label;
}

function setEnabled(enabled) {
  for (const control of document.querySelectorAll("form input, form button")) {
    control.disabled = !enabled;
  }
}

ui.sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  say(ui.say.value);
  ui.say.value = "";
});

ui.nickForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const nick = ui.nick.value.trim();
  if (nick && nick !== me) send(`/nick ${nick}`);
  ui.say.focus();
});

ui.reconnect.addEventListener("click", connect);

connect();
