// The chat view: its messages, the reply as it streams (kept, marked "interrupted", when the turn stops before
// it is saved), the queue in order with Delete, a box to send and a button to interrupt. It tells the stream when
// the chat is in front of its owner, so the server skips the push for a turn they watched end.
import { api, keepOpen } from './api.js';
import { h, statusBadge, submitOnCtrlEnter } from './dom.js';
import { reportPresence } from './presence.js';

export function chatView(chatId) {
  const path = `/api/experimental/chats/${encodeURIComponent(chatId)}`;
  let chat;
  let lastId = 0;
  /** Where to resume: every event carries it, and it is valid on any replica (no repeated or missing text). */
  let cursor;
  let draft = '';
  /** The run of the turn the draft belongs to: parts of a newer run start a new draft. */
  let draftGeneration = 0;
  /**
   * Set when a turn stops: parts the worker sent before it heard of the stop may still arrive, and belong to the
   * turn that ended. The next turn (`pending` or `running`) clears it.
   */
  let stopped = false;
  const seen = new Set();
  const title = h('h2', { id: 'chat-title' }, '…');
  const badge = h('span');
  const conn = h('span', { className: 'conn' });
  const lastError = h('p', { className: 'error', id: 'chat-error', role: 'alert' });
  const messages = h('ol', { className: 'messages', id: 'messages' });
  const draftText = h('div', { className: 'content' });
  const draftItem = h('li', { className: 'msg assistant draft', id: 'draft', hidden: true }, h('span', { className: 'role' }, 'Agent · writing…'), draftText);
  const queueHead = h('h3', { className: 'queue-head', id: 'queue-head', hidden: true }, 'Queued');
  const queue = h('ol', { className: 'queue', id: 'queue' });
  const interrupt = h('button', { type: 'button', className: 'quiet', id: 'interrupt', disabled: true }, 'Interrupt');
  const input = h('textarea', { name: 'content', id: 'content', rows: 2, required: true, placeholder: 'Send a message (Ctrl+Enter)', 'aria-label': 'Message' });
  const sendButton = h('button', { type: 'submit' }, 'Send');
  const sendError = h('p', { className: 'error', role: 'alert' });
  const composer = h('form', { className: 'composer', id: 'composer' }, input, sendButton, sendError);
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
  /**
   * A turn that stops without its reply saved (interrupted here or elsewhere, archived) leaves what streamed so far
   * on screen, marked: a saved reply always arrives before the status that ends its turn, and clears the draft.
   */
  const keepInterrupted = () => {
    stopped = true;
    if (draft === '') return;
    messages.insertBefore(
      h('li', { className: 'msg assistant interrupted' }, h('span', { className: 'role' }, 'Agent · ', h('span', { className: 'marker' }, 'interrupted')), h('div', { className: 'content' }, draft)),
      draftItem,
    );
    draft = '';
  };
  const addMessage = (m) => {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    lastId = Math.max(lastId, m.id);
    messages.insertBefore(h('li', { className: `msg ${m.role}`, 'data-message-id': m.id }, h('span', { className: 'role' }, m.role === 'user' ? 'You' : 'Agent'), h('div', { className: 'content' }, m.content)), draftItem);
    if (m.role === 'assistant') draft = '';
  };
  const deleteQueued = async (q, button) => {
    button.disabled = true;
    sendError.textContent = '';
    try {
      await api('DELETE', `${path}/queue/${q.id}`);
    } catch (err) {
      // 404: it started running (or was deleted elsewhere) a moment ago; the next queue update shows which.
      sendError.textContent = err.status === 404 ? 'That message already left the queue.' : err.message;
      button.disabled = false;
    }
  };
  /** The server's queue, in the order it will run; each entry leaves it as its turn starts. */
  const showQueue = (queued) => {
    queueHead.hidden = queued.length === 0;
    queue.replaceChildren(
      ...queued.map((q, i) => {
        const del = h('button', { type: 'button', className: 'quiet delete', 'aria-label': `Delete queued message ${i + 1}` }, 'Delete');
        del.addEventListener('click', () => void deleteQueued(q, del));
        return h('li', { className: 'queued', 'data-queued-id': q.id }, h('span', { className: 'role' }, `Queued · ${i + 1}`), h('div', { className: 'content' }, q.content), del);
      }),
    );
  };

  // Says whether the owner is watching on whichever socket is open; the stream says when one opens.
  let stream;
  const presence = reportPresence((message) => stream?.send(message));
  stream = keepOpen({
    // Each (re)connect re-reads the chat (its title, and proof it still exists) and resumes at the cursor: the
    // draft stays, and the stream sends what it lacks, or `preview_reset` when its run will not go on.
    prepare: async () => {
      chat = await api('GET', path);
      title.textContent = chat.title || 'Untitled';
      document.title = `${chat.title} · coder-lite`;
      showDraft();
      showStatus();
      return cursor ? `${path}/stream?cursor=${encodeURIComponent(cursor)}` : `${path}/stream?after_id=${lastId}`;
    },
    onEvents: (events) =>
      update(() => {
        for (const e of events) {
          if (e.cursor) cursor = e.cursor;
          if (e.type === 'status') {
            chat = { ...chat, status: e.status, last_error: e.last_error ?? null };
            if (e.status === 'running' || e.status === 'pending') stopped = false;
            else keepInterrupted();
            showStatus();
          } else if (e.type === 'message') addMessage(e.message);
          else if (e.type === 'message_part' && !stopped) {
            if (e.generation !== draftGeneration) draft = '';
            draftGeneration = e.generation;
            draft += e.text;
          } else if (e.type === 'preview_reset') draft = '';
          else if (e.type === 'retry') lastError.textContent = `The model call failed (${e.kind}); retrying at ${new Date(e.retrying_at).toLocaleTimeString()} (attempt ${e.attempt}).`;
          else if (e.type === 'queue_update') showQueue(e.queued);
          else if (e.type === 'error') lastError.textContent = e.message;
        }
        showDraft();
      }),
    onState: (s, err) => {
      conn.textContent = s === 'live' ? '' : s === 'reconnecting' ? 'reconnecting…' : '';
      if (s === 'live') presence.resend();
      if (s === 'failed') {
        title.textContent = err.status === 404 ? 'Chat not found' : 'Cannot open this chat';
        composer.hidden = true;
      }
    },
  });

  interrupt.addEventListener('click', async () => {
    try {
      chat = await api('POST', `${path}/interrupt`);
      keepInterrupted();
      showDraft();
      showStatus();
    } catch (err) {
      sendError.textContent = err.message;
    }
  });
  composer.addEventListener('submit', async (event) => {
    event.preventDefault();
    sendError.textContent = '';
    sendButton.disabled = true;
    try {
      await api('POST', `${path}/messages`, { content: input.value }, { idempotent: true });
      input.value = '';
    } catch (err) {
      sendError.textContent = err.status === 409 ? `Not sent: ${err.message}.` : err.message;
    } finally {
      sendButton.disabled = false;
    }
  });
  submitOnCtrlEnter(input, composer);

  const element = h(
    'article',
    { className: 'chat', 'data-chat-id': chatId },
    h('div', { className: 'pane-head' }, h('a', { href: '/', 'data-link': true, className: 'back' }, '← Chats'), title, badge, conn, interrupt),
    lastError,
    messages,
    queueHead,
    queue,
    composer,
  );
  return {
    element,
    stop() {
      presence.stop();
      stream.stop();
    },
  };
}
