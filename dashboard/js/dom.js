// A small element builder: text is always set as text, never parsed as HTML.

/** h('li', {class: 'x', onclick: f, dataset: {a: 1}}, 'text', child, [children]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace `el`'s children only when `signature` differs from the last one (keeps selection and focus). */
export function renderInto(el, signature, build) {
  if (el._signature === signature) return;
  el._signature = signature;
  el.replaceChildren(...[build()].flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** "14:03:07" of a server timestamp. */
export function clock(at) {
  if (!at) return '';
  const d = new Date(String(at).replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(d.getTime()) ? String(at) : d.toLocaleTimeString([], { hour12: false });
}

/** "6 Dec, 14:03" of a server timestamp. */
export function dateTime(at) {
  if (!at) return '';
  const d = new Date(String(at).replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(d.getTime())) return String(at);
  return d.toLocaleString([], { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false });
}
