// The web console: sign in with an API token, watch the chat list live, follow a chat's stream, send and
// interrupt, and turn push notifications on. Plain DOM and ES modules: no build step, nothing to download.
import { api, clearToken, getToken, keepOpen, onUnauthorized, setToken } from './api.js';
import * as push from './push.js';

const main = document.getElementById('main');
const who = document.getElementById('who');
const signOutButton = document.getElementById('sign-out');

const pageSize = 50;
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' });
const statusLabels = { pending: 'pending', running: 'running', waiting: 'idle', error: 'error' };

/** Creates an element: properties the element has are set as such, the rest as attributes; `on…` adds listeners. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key in el) el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  el.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

const statusBadge = (status) => h('span', { className: `status status-${status}`, 'data-status': status }, statusLabels[status] ?? status);

let session; // { list, chat, stop() } while signed in
const serviceWorker = push.registerServiceWorker().catch(() => undefined);

// Internal links change the view without a reload.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-link]');
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});
addEventListener('popstate', () => session?.show());
signOutButton.addEventListener('click', () => signOut());
onUnauthorized(() => signOut('The API token is no longer accepted: sign in again.'));

function navigate(path) {
  if (path !== location.pathname) history.pushState(null, '', path);
  session?.show();
}

function chatIdFromPath() {
  const m = /^\/chats\/([^/]+)\/?$/.exec(location.pathname);
  return m ? decodeURIComponent(m[1]) : null;
}

function signOut(message) {
  clearToken();
  session?.stop();
  session = undefined;
  showSignIn(message);
}

function showSignIn(message) {
  who.textContent = '';
  signOutButton.hidden = true;
  document.body.classList.remove('in-chat');
  const input = h('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'off', required: true, spellcheck: false });
  const error = h('p', { className: 'error', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    { className: 'sign-in card', id: 'sign-in' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an API token. ', h('code', {}, 'coder-lite users create NAME'), ' prints one.'),
    h('label', { htmlFor: 'token' }, 'API token'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    error.textContent = '';
    try {
      const user = await api('GET', '/api/v2/users/me', undefined, token);
      setToken(token);
      start(user);
    } catch (err) {
      error.textContent = err.status === 401 ? 'That token was not accepted.' : err.message;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

function start(user) {
  who.textContent = user.username;
  signOutButton.hidden = false;
  const list = chatList();
  const chatPane = h('section', { className: 'chat-pane', id: 'chat-pane', 'aria-live': 'polite' });
  main.replaceChildren(h('div', { className: 'layout' }, list.element, chatPane));
  let chat;
  session = {
    show() {
      chat?.stop();
      const id = chatIdFromPath();
      document.body.classList.toggle('in-chat', id !== null);
      list.select(id);
      chat = id ? chatView(id) : undefined;
      if (!chat) document.title = 'coder-lite';
      chatPane.replaceChildren(chat ? chat.element : h('p', { className: 'placeholder' }, 'Pick a chat, or start one.'));
    },
    stop() {
      chat?.stop();
      list.stop();
    },
  };
  session.show();
}

/** The caller's chats, newest first, kept live by the owner events of `/chats/watch`. */
function chatList() {
  const chats = new Map();
  const archived = new Set();
  let selected = null;
  let more = false;
  const items = h('ul', { className: 'chats', id: 'chats' });
  const state = h('span', { className: 'conn' });
  const loadMore = h('button', { type: 'button', className: 'quiet', hidden: true, onclick: () => void fetchPage(oldest()) }, 'Load more');

  /** Keeps whichever copy of a chat is newer: list pages and events race. */
  const upsert = (chat) => {
    if (archived.has(chat.id) || chat.archived) {
      archived.add(chat.id);
      chats.delete(chat.id);
      return;
    }
    const known = chats.get(chat.id);
    if (!known || chat.updated_at >= known.updated_at) chats.set(chat.id, chat);
  };
  const oldest = () => [...chats.values()].reduce((a, c) => (a && a.created_at <= c.created_at ? a : c), undefined)?.id;
  const render = () => {
    const sorted = [...chats.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
    items.replaceChildren(
      ...sorted.map((c) =>
        h(
          'li',
          { 'data-chat-id': c.id, className: c.id === selected ? 'selected' : '' },
          h('a', { href: `/chats/${c.id}`, 'data-link': true }, h('span', { className: 'title' }, c.title || 'Untitled'), statusBadge(c.status), h('time', { dateTime: c.updated_at }, timeFormat.format(new Date(c.updated_at)))),
        ),
      ),
    );
    if (sorted.length === 0) items.append(h('li', { className: 'empty' }, 'No chats yet.'));
    loadMore.hidden = !more;
  };
  const fetchPage = async (afterId) => {
    const page = await api('GET', `/api/experimental/chats?limit=${pageSize}${afterId ? `&after_id=${afterId}` : ''}`);
    for (const c of page.chats) upsert(c);
    // A reconnect re-reads only the first page: it must not hide the button for pages loaded before.
    if (afterId || chats.size <= pageSize) more = page.chats.length === pageSize;
    render();
  };

  const stop = keepOpen({
    // The list shows even where WebSockets do not get through; the server's first, empty frame says it is
    // listening, and the page is read again then, so a change made between the two reads is not lost. Copies are
    // merged by updated_at.
    prepare: async () => {
      await fetchPage();
      return '/api/experimental/chats/watch';
    },
    onEvents: (events) => {
      if (events.length === 0) return void fetchPage().catch(() => undefined);
      for (const e of events) if (e.chat) upsert(e.kind === 'archived' ? { ...e.chat, archived: true } : e.chat);
      render();
    },
    onState: (s) => (state.textContent = s === 'live' ? '' : s === 'reconnecting' ? 'reconnecting…' : 'offline'),
  });

  const element = h(
    'section',
    { className: 'list-pane' },
    h('div', { className: 'pane-head' }, h('h2', {}, 'Chats'), state),
    notifications(),
    newChatForm((chat) => {
      upsert(chat);
      render();
      navigate(`/chats/${chat.id}`);
    }),
    items,
    loadMore,
  );
  return {
    element,
    stop,
    select(id) {
      selected = id;
      render();
    },
  };
}

/** The "Enable notifications" / "Disable notifications" button and what it has to say. */
function notifications() {
  const message = h('p', { className: 'push-message', id: 'push-message', role: 'status' });
  const button = h('button', { type: 'button', className: 'quiet', id: 'notifications' }, 'Enable notifications');
  let subscribed = false;
  const show = (on) => {
    subscribed = on;
    button.textContent = on ? 'Disable notifications' : 'Enable notifications';
  };
  serviceWorker.then(() => push.currentSubscription()).then((s) => show(Boolean(s)), () => show(false));
  button.addEventListener('click', async () => {
    button.disabled = true;
    message.textContent = '';
    message.classList.remove('error');
    try {
      if (subscribed) {
        await push.disable();
        show(false);
        message.textContent = 'Notifications are off.';
      } else {
        await push.enable();
        show(true);
        message.textContent = 'Notifications are on: you hear from a chat when its turn ends.';
      }
    } catch (err) {
      message.classList.add('error');
      message.textContent = err instanceof push.PushError ? err.message : `Something went wrong: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return h('div', { className: 'push' }, button, message);
}

function newChatForm(onCreated) {
  const text = h('textarea', { name: 'message', id: 'new-message', rows: 3, required: true, placeholder: 'What should the agent do?' });
  const title = h('input', { name: 'title', id: 'new-title', maxLength: 200, placeholder: 'Title (optional)', 'aria-label': 'Title' });
  const error = h('p', { className: 'error', role: 'alert' });
  const form = h('form', { className: 'new-chat card', id: 'new-chat' }, h('label', { htmlFor: 'new-message' }, 'New chat'), text, title, h('button', { type: 'submit' }, 'Start chat'), error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const body = { message: text.value };
    if (title.value.trim()) body.title = title.value.trim();
    try {
      const chat = await api('POST', '/api/experimental/chats', body);
      form.reset();
      onCreated(chat);
    } catch (err) {
      error.textContent = err.message;
    }
  });
  submitOnCtrlEnter(text, form);
  return form;
}

function submitOnCtrlEnter(textarea, form) {
  textarea.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

/** One chat: its messages, the reply as it streams, the queue, a box to send and a button to interrupt. */
function chatView(chatId) {
  let chat;
  let lastId = 0;
  let draft = '';
  const seen = new Set();
  const title = h('h2', { id: 'chat-title' }, '…');
  const badge = h('span');
  const conn = h('span', { className: 'conn' });
  const lastError = h('p', { className: 'error', id: 'chat-error', role: 'alert' });
  const messages = h('ol', { className: 'messages', id: 'messages' });
  const draftText = h('div', { className: 'content' });
  const draftItem = h('li', { className: 'msg assistant draft', id: 'draft', hidden: true }, h('span', { className: 'role' }, 'Agent · writing…'), draftText);
  const queue = h('ul', { className: 'queue', id: 'queue' });
  const interrupt = h('button', { type: 'button', className: 'quiet', id: 'interrupt', disabled: true }, 'Interrupt');
  const input = h('textarea', { name: 'content', id: 'content', rows: 2, required: true, placeholder: 'Send a message (Ctrl+Enter)', 'aria-label': 'Message' });
  const sendError = h('p', { className: 'error', role: 'alert' });
  const composer = h('form', { className: 'composer', id: 'composer' }, input, h('button', { type: 'submit' }, 'Send'), sendError);
  messages.append(draftItem);

  const scroller = document.scrollingElement;
  const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const update = (apply) => {
    const follow = nearBottom();
    apply();
    if (follow) scroller.scrollTop = scroller.scrollHeight;
  };
  const showStatus = () => {
    badge.replaceChildren(statusBadge(chat.status));
    interrupt.disabled = chat.status !== 'running' && chat.status !== 'pending';
    lastError.textContent = chat.status === 'error' ? (chat.last_error ?? 'The agent hit an error.') : '';
  };
  const showDraft = () => {
    draftItem.hidden = draft === '';
    draftText.textContent = draft;
  };
  const addMessage = (m) => {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    lastId = Math.max(lastId, m.id);
    messages.insertBefore(h('li', { className: `msg ${m.role}`, 'data-message-id': m.id }, h('span', { className: 'role' }, m.role === 'user' ? 'You' : 'Agent'), h('div', { className: 'content' }, m.content)), draftItem);
    if (m.role === 'assistant') draft = '';
  };

  const stop = keepOpen({
    // Each (re)connect re-reads the chat (its title, and proof it still exists) and resumes after the last message.
    prepare: async () => {
      chat = await api('GET', `/api/experimental/chats/${encodeURIComponent(chatId)}`);
      title.textContent = chat.title || 'Untitled';
      document.title = `${chat.title} · coder-lite`;
      // The snapshot repeats the running turn's parts from its start.
      draft = '';
      showDraft();
      showStatus();
      return `/api/experimental/chats/${encodeURIComponent(chatId)}/stream?after_id=${lastId}`;
    },
    onEvents: (events) =>
      update(() => {
        for (const e of events) {
          if (e.type === 'status') {
            chat = { ...chat, status: e.status, last_error: e.last_error ?? null };
            if (e.status !== 'running') draft = '';
            showStatus();
          } else if (e.type === 'message') addMessage(e.message);
          else if (e.type === 'message_part') draft += e.text;
          else if (e.type === 'queue_update') queue.replaceChildren(...e.queued.map((q) => h('li', { className: 'queued' }, h('span', { className: 'role' }, 'Queued'), q.content)));
          else if (e.type === 'error') lastError.textContent = e.message;
        }
        showDraft();
      }),
    onState: (s, err) => {
      conn.textContent = s === 'live' ? '' : s === 'reconnecting' ? 'reconnecting…' : '';
      if (s === 'failed') {
        title.textContent = err.status === 404 ? 'Chat not found' : 'Cannot open this chat';
        composer.hidden = true;
      }
    },
  });

  interrupt.addEventListener('click', async () => {
    try {
      chat = await api('POST', `/api/experimental/chats/${encodeURIComponent(chatId)}/interrupt`);
      draft = '';
      showDraft();
      showStatus();
    } catch (err) {
      sendError.textContent = err.message;
    }
  });
  composer.addEventListener('submit', async (event) => {
    event.preventDefault();
    sendError.textContent = '';
    try {
      await api('POST', `/api/experimental/chats/${encodeURIComponent(chatId)}/messages`, { content: input.value });
      input.value = '';
    } catch (err) {
      sendError.textContent = err.status === 409 ? `Not sent: ${err.message}.` : err.message;
    }
  });
  submitOnCtrlEnter(input, composer);

  const element = h(
    'article',
    { className: 'chat', 'data-chat-id': chatId },
    h('div', { className: 'pane-head' }, h('a', { href: '/', 'data-link': true, className: 'back' }, '← Chats'), title, badge, conn, interrupt),
    lastError,
    messages,
    queue,
    composer,
  );
  return { element, stop };
}

const token = getToken();
if (token) {
  // A 401 signs out through onUnauthorized; anything else keeps the token for the next try.
  api('GET', '/api/v2/users/me').then(start, (err) => err.status !== 401 && showSignIn(err.message));
} else {
  showSignIn();
}
