// Small DOM helpers every view uses.

export const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' });
const statusLabels = { pending: 'pending', running: 'running', waiting: 'idle', error: 'error' };

/** Creates an element: properties the element has are set as such, the rest as attributes; `on…` adds listeners. */
export function h(tag, props = {}, ...children) {
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

export const statusBadge = (status) => h('span', { className: `status status-${status}`, 'data-status': status }, statusLabels[status] ?? status);

export function submitOnCtrlEnter(textarea, form) {
  textarea.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

/** Internal links and code change the view without a reload; `app.js` says how. */
let router = () => {};
export const onNavigate = (fn) => (router = fn);
export function navigate(path) {
  if (path !== location.pathname) history.pushState(null, '', path);
  router();
}
