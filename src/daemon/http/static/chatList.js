// The list view: the caller's chats, newest first, kept live by the owner events of `/chats/watch`, paged, each
// with an Archive button; the form that starts a chat; the notifications toggle.
import { api, keepOpen } from './api.js';
import { h, navigate, statusBadge, submitOnCtrlEnter, timeFormat } from './dom.js';
import { notificationsToggle } from './notifications.js';

export const pageSize = 50;

export function chatList(serviceWorker) {
  const chats = new Map();
  const archived = new Set();
  let selected = null;
  let more = false;
  const items = h('ul', { className: 'chats', id: 'chats' });
  const state = h('span', { className: 'conn' });
  const listError = h('p', { className: 'error', role: 'alert', id: 'list-error' });
  const loadMore = h('button', { type: 'button', className: 'quiet', id: 'load-more', hidden: true, onclick: () => void fetchPage(oldest()) }, 'Load more');

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
  // A change to a chat on a page not loaded yet waits for that page: shown now, it would sit out of order.
  const pastLoaded = (chat) => more && !chats.has(chat.id) && chat.created_at < (chats.get(oldest())?.created_at ?? '');
  const oldest = () => [...chats.values()].reduce((a, c) => (a && a.created_at <= c.created_at ? a : c), undefined)?.id;

  const archive = async (chat) => {
    listError.textContent = '';
    try {
      await api('DELETE', `/api/experimental/chats/${encodeURIComponent(chat.id)}`);
    } catch (err) {
      // 404: gone already, which is what was asked.
      if (err.status !== 404) return void (listError.textContent = `Could not archive “${chat.title}”: ${err.message}`);
    }
    upsert({ ...chat, archived: true });
    render();
    if (selected === chat.id) navigate('/');
  };

  const item = (c) =>
    h(
      'li',
      { 'data-chat-id': c.id, className: c.id === selected ? 'selected' : '' },
      h('a', { href: `/chats/${c.id}`, 'data-link': true }, h('span', { className: 'title' }, c.title || 'Untitled'), statusBadge(c.status), h('time', { dateTime: c.updated_at }, timeFormat.format(new Date(c.updated_at)))),
      h('button', { type: 'button', className: 'quiet archive', title: 'Archive this chat', 'aria-label': `Archive ${c.title || 'Untitled'}`, onclick: () => void archive(c) }, 'Archive'),
    );
  const render = () => {
    const sorted = [...chats.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
    items.replaceChildren(...sorted.map(item));
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

  const watch = keepOpen({
    // The list shows even where WebSockets do not get through; the server's first, empty frame says it is
    // listening, and the page is read again then, so a change made between the two reads is not lost. Copies are
    // merged by updated_at.
    prepare: async () => {
      await fetchPage();
      return '/api/experimental/chats/watch';
    },
    onEvents: (events) => {
      if (events.length === 0) return void fetchPage().catch(() => undefined);
      for (const e of events) if (e.chat && !pastLoaded(e.chat)) upsert(e.kind === 'archived' ? { ...e.chat, archived: true } : e.chat);
      render();
    },
    onState: (s) => (state.textContent = s === 'live' ? '' : s === 'reconnecting' ? 'reconnecting…' : 'offline'),
  });

  const element = h(
    'section',
    { className: 'list-pane' },
    h('div', { className: 'pane-head' }, h('h2', {}, 'Chats'), state),
    notificationsToggle(serviceWorker),
    newChatForm((chat) => {
      upsert(chat);
      render();
      navigate(`/chats/${chat.id}`);
    }),
    listError,
    items,
    loadMore,
  );
  return {
    element,
    stop: watch.stop,
    select(id) {
      selected = id;
      render();
    },
  };
}

function newChatForm(onCreated) {
  const text = h('textarea', { name: 'message', id: 'new-message', rows: 3, required: true, placeholder: 'What should the agent do?' });
  const title = h('input', { name: 'title', id: 'new-title', maxLength: 200, placeholder: 'Title (optional)', 'aria-label': 'Title' });
  const error = h('p', { className: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit' }, 'Start chat');
  const form = h('form', { className: 'new-chat card', id: 'new-chat' }, h('label', { htmlFor: 'new-message' }, 'New chat'), text, title, submit, error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const body = { message: text.value };
    if (title.value.trim()) body.title = title.value.trim();
    // One click, one chat: the button waits for the (possibly retried) send.
    submit.disabled = true;
    try {
      const chat = await api('POST', '/api/experimental/chats', body, { idempotent: true });
      form.reset();
      onCreated(chat);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  submitOnCtrlEnter(text, form);
  return form;
}
