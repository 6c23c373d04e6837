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
const NICK_COLOURS = 12; // --nick-0 ... --nick-11 in style.css, each readable on both themes
// The server's --max-line, written into the page when it is served: the longest message, in
// UTF-8 bytes, that it accepts. The page refuses longer ones rather than be disconnected.
const MAX_LINE = Number(document.querySelector('meta[name="chatlab-max-line"]').content);
const COUNTER_FROM = 0.8; // show the byte counter once a message is this share of MAX_LINE
const RETRY_FIRST = 1; // seconds before the first retry of a failed reconnect; doubles each time
const RETRY_MOST = 30; // ... up to this
const NICK_TRIES = 3; // a reloaded page's old connection may still hold our nick: ask again
const NICK_KEY = "chatlab-nick"; // sessionStorage: the nick this tab chose, kept over reloads

const ui = {
  status: document.getElementById("status"),
  messages: document.getElementById("messages"),
  sayForm: document.getElementById("say-form"),
  say: document.getElementById("say"),
  nickForm: document.getElementById("nick-form"),
  nick: document.getElementById("nick"),
  who: document.getElementById("who"),
  count: document.getElementById("count"),
  counter: document.getElementById("counter"),
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
const NICK_TAKEN = /^! nick already taken: (\S+)$/;
const LISTING = /^\* {3}/; // "*   /who   list who is online": a line of /help's aligned list

let socket = null;
let me = null; // our nick, as the server last told us
let leaving = false; // the user typed /quit: the close is no surprise
let whoQueue = []; // one entry per /who sent, oldest first: true if the page sent it itself
let opened = false; // the current socket has connected (a close before that is a failed try)
let retries = 0; // failed tries in a row since the user clicked Reconnect
let retryTimer = null; // counts down to the next try
let nickTries = 0; // times we asked for our kept nick since the last welcome

// -- the connection ---------------------------------------------------------------

function connect() {
  clearTimeout(retryTimer);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/ws`);
  leaving = false;
  opened = false;
  whoQueue = [];
  setState("connecting", "connecting…");
  if (retries > 0) {
    ui.goneText.textContent = "Trying to connect…";
  } else {
    ui.gone.hidden = true;
  }
  socket.addEventListener("open", () => {
    opened = true;
    retries = 0;
    ui.gone.hidden = true;
    setState("online", "online");
    setEnabled(true);
    ui.say.focus();
  });
  socket.addEventListener("message", (event) => receive(String(event.data)));
  socket.addEventListener("close", (event) => disconnected(event.code));
}

function reconnect() {
  retries = Math.max(retries, 1); // from now on a failed try is retried, with feedback
  connect();
}

function disconnected(code) {
  setEnabled(false);
  setState("offline", "offline");
  showWho([]);
  if (!opened && retries > 0) {
    retryLater(Math.min(RETRY_FIRST * 2 ** (retries - 1), RETRY_MOST));
    retries += 1;
    return;
  }
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

function retryLater(seconds) {
  ui.goneText.textContent = `Could not connect; retrying in ${seconds} s.`;
  ui.gone.hidden = false;
  retryTimer = setTimeout(() => (seconds > 1 ? retryLater(seconds - 1) : connect()), 1000);
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
  if (askAgainForNick(line)) return;
  show(line);
  const welcome = line.match(WELCOME);
  const renamed = line.match(RENAMED);
  if (welcome) {
    setMe(welcome[1]);
    nickTries = 0;
    askForKeptNick();
  } else if (renamed && renamed[1] === me) {
    setMe(renamed[2]);
    sessionStorage.setItem(NICK_KEY, me);
  } else if (NICK_REFUSED.test(line)) {
    ui.nick.value = me; // the box shows the nick we really have
  }
  if (welcome || renamed || ARRIVED_OR_LEFT.test(line)) requestWho();
}

// After a reconnect or a reload the server greets us as a guest: ask for the nick we had.
function askForKeptNick() {
  const kept = sessionStorage.getItem(NICK_KEY);
  if (kept && kept !== me) {
    nickTries += 1;
    socket.send(`/nick ${kept}`);
  }
}

// A reloaded page's old connection may not have left yet and still hold the nick: ask again
// a second later, quietly, a few times. True if the line was that refusal.
function askAgainForNick(line) {
  const taken = line.match(NICK_TAKEN);
  if (!taken || taken[1] !== sessionStorage.getItem(NICK_KEY) || nickTries >= NICK_TRIES) {
    return false;
  }
  const asking = socket;
  setTimeout(() => socket === asking && askForKeptNick(), 1000);
  return true;
}

function show(line) {
  const chat = line.match(CHAT);
  if (chat) {
    addRow("said", chat[1], chat[2]);
  } else if (LISTING.test(line)) {
    addListing(line.slice(2));
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
  const body = document.createElement(kind.includes("listing") ? "pre" : "span");
  body.className = "text";
  body.textContent = text;
  row.append(body);
  list.append(row);
  while (list.childElementCount > MAX_ROWS) list.firstElementChild.remove();
  if (atEnd) row.scrollIntoView({ block: "end" });
}

// Consecutive lines of an aligned list (/help) share one monospace block, so columns line up.
function addListing(text) {
  const last = ui.messages.lastElementChild;
  if (last?.classList.contains("listing")) {
    last.querySelector(".text").append(`\n${text}`);
  } else {
    addRow("notice listing", null, text);
  }
}

function nickTag(nick) {
  const tag = document.createElement("span");
  tag.className = "nick";
  tag.textContent = nick;
  tag.style.setProperty("--nick-colour", `var(--nick-${colourOf(nick)})`);
  return tag;
}

function colourOf(nick) {
  let hash = 0;
  for (const char of nick.toLowerCase()) hash = (hash * 31 + char.codePointAt(0)) % 1000003;
  return hash % NICK_COLOURS;
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

// The message's size as the server counts it, shown once it nears --max-line; true if it fits.
function countBytes() {
  const bytes = new TextEncoder().encode(ui.say.value).length;
  const fits = bytes <= MAX_LINE;
  ui.counter.hidden = bytes < COUNTER_FROM * MAX_LINE;
  ui.counter.textContent = `${bytes.toLocaleString("en")} / ${MAX_LINE.toLocaleString("en")} bytes`;
  ui.counter.classList.toggle("over", !fits);
  ui.say.setAttribute("aria-invalid", String(!fits));
  return fits;
}

ui.sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!countBytes()) return; // too long: the server would refuse it, so keep it here to edit
  say(ui.say.value);
  ui.say.value = "";
  countBytes();
});

ui.say.addEventListener("input", countBytes);

ui.nickForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const nick = ui.nick.value.trim();
  if (nick && nick !== me) send(`/nick ${nick}`);
  ui.say.focus();
});

ui.reconnect.addEventListener("click", reconnect);

connect();
