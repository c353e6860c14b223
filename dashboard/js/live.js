// The live view: the place-a-call form and one card per call this page follows (from the
// WebSocket model), with its state, hold timer, hearing strip, menu steps and transcript.

import { api, ApiError } from './api.js';
import { h, renderInto } from './dom.js';
import { alertActive, callsNewestFirst, formatDuration, holdSeconds, reasonLabel, statusLabel } from './model.js';
import { hearingStrip, logItems, stepItems, timelineItems, transcriptItems } from './render.js';

// Where POST /api/calls/{id}/transfer is taken: answered, before a person was found.
const TRANSFERABLE = new Set(['navigating', 'on_hold']);

// ------------------------------------------------------------------ the form

/** Show 422 reasons next to the fields they name; the rest above the button. */
export function showFormErrors(form, error) {
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  if (!error) return;
  const byField = error instanceof ApiError ? error.fieldErrors() : { '': error.message };
  for (const [field, message] of Object.entries(byField)) {
    const slot = form.querySelector(`.field-error[data-for="${CSS.escape(field)}"]`) || form.querySelector('.field-error[data-for=""]');
    slot.textContent = slot.textContent ? `${slot.textContent}\n${message}` : message;
  }
}

/** The device chooser: the list from GET /api/devices when the server has one, else free text. */
async function deviceControl() {
  try {
    const body = await api('/api/devices');
    const { names, preferred } = deviceNames(body);
    if (names.length) {
      return h(
        'select',
        { name: 'device', id: 'call-device' },
        h('option', { value: '' }, preferred ? `Default (${preferred})` : 'Default device'),
        names.map((name) => h('option', { value: name }, name)),
      );
    }
  } catch {
    // No device list on this server: type the name (empty = the default device).
  }
  return h('input', { name: 'device', id: 'call-device', placeholder: 'default device', autocomplete: 'off' });
}

/** Device names from the shapes a device list may take: names, objects with a name, or a mapping. */
export function deviceNames(body) {
  let list = body;
  let preferred = null;
  if (body && !Array.isArray(body) && typeof body === 'object') {
    preferred = body.default || body.default_device || null;
    list = Array.isArray(body.devices) ? body.devices : body.devices && typeof body.devices === 'object' ? body.devices : body;
  }
  let names = [];
  if (Array.isArray(list)) {
    for (const item of list) {
      if (typeof item === 'string') names.push(item);
      else if (item && typeof item === 'object') {
        const name = item.name ?? item.id;
        if (name) names.push(String(name));
        if (name && (item.default || item.is_default)) preferred = String(name);
      }
    }
  } else if (list && typeof list === 'object') {
    names = Object.keys(list).filter((k) => !['default', 'default_device'].includes(k));
  }
  return { names, preferred };
}

async function flowOptions(select) {
  try {
    const flows = await api('/api/call-flows');
    const chosen = select.value;
    select.replaceChildren(
      h('option', { value: '' }, "Automatic (the number's stored flow)"),
      ...flows.map((flow) => h('option', { value: flow.id, selected: flow.id === chosen }, `${flow.name} (${flow.phone_number})`)),
    );
  } catch {
    // The list stays as it was; the call can still go with the number's own flow.
  }
}

export function setUpCallForm(form, { onPlaced }) {
  const deviceSlot = form.querySelector('[data-slot="device"]');
  const flowSelect = form.querySelector('select[name="flow_id"]');
  const status = form.querySelector('.form-status');

  async function refreshChoices() {
    const current = form.elements.device ? form.elements.device.value : '';
    const control = await deviceControl();
    const offered = control.tagName !== 'SELECT' || [...control.options].some((o) => o.value === current);
    if (current && offered) control.value = current;
    deviceSlot.replaceChildren(control);
    await flowOptions(flowSelect);
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showFormErrors(form, null);
    const data = new FormData(form);
    const body = { number: String(data.get('number') || '').trim(), intent: String(data.get('intent') || '').trim() };
    const device = String(data.get('device') || '').trim();
    const flowId = String(data.get('flow_id') || '');
    if (device) body.device = device;
    if (flowId) body.flow_id = flowId;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    status.textContent = 'Placing the call…';
    try {
      const created = await api('/api/calls', { method: 'POST', body });
      status.textContent = `Call ${created.call_id} placed.`;
      onPlaced(created.call_id);
    } catch (error) {
      status.textContent = '';
      showFormErrors(form, error);
    } finally {
      button.disabled = false;
    }
  });
  return { refreshChoices };
}

// ------------------------------------------------------------------ the calls

function callCard(call, actions) {
  const parts = {
    title: h('span', { class: 'title' }),
    badge: h('span', { class: 'badge status' }),
    intent: h('p', { class: 'intent' }),
    hold: h('p', { class: 'hold' }),
    hearing: h('div', { class: 'hearing' }),
    error: h('p', { class: 'error action-error', role: 'alert' }),
    outcome: h('p', { class: 'outcome' }),
    userData: h('div', { class: 'user-data' }),
    timeline: h('ol', { class: 'timeline' }),
    steps: h('ol', { class: 'steps' }),
    transcript: h('ol', { class: 'transcript' }),
    log: h('ol', { class: 'log' }),
  };
  const act = (name, run) => async () => {
    parts.error.textContent = '';
    try {
      await run(call.id);
    } catch (error) {
      parts.error.textContent = error.message;
    }
  };
  parts.transfer = h('button', { type: 'button', class: 'transfer', onclick: act('transfer', actions.transfer) }, 'Transfer now');
  parts.hangup = h('button', { type: 'button', class: 'hangup danger', onclick: act('hangup', actions.hangup) }, 'Hang up');
  parts.details = h('a', { class: 'details button', href: `#call/${encodeURIComponent(call.id)}` }, 'Details & recording');
  parts.remove = h('button', { type: 'button', class: 'remove quiet', onclick: () => actions.remove(call.id) }, 'Remove');
  const card = h(
    'article',
    { class: 'call card', dataset: { callId: call.id } },
    h('header', {}, parts.title, parts.badge),
    parts.intent,
    h('div', { class: 'vitals' }, parts.hold, parts.hearing),
    parts.userData,
    h('div', { class: 'actions' }, parts.transfer, parts.hangup, parts.details, parts.remove),
    parts.error,
    parts.outcome,
    h(
      'div',
      { class: 'columns' },
      h('section', {}, h('h3', {}, 'Timeline'), parts.timeline),
      h('section', {}, h('h3', {}, 'Menu steps'), parts.steps),
      h('section', {}, h('h3', {}, 'Transcript'), parts.transcript),
    ),
    h('details', { class: 'events' }, h('summary', {}, 'What happened'), parts.log),
  );
  card._parts = parts;
  return card;
}

function userDataForm(call, request, actions) {
  const input = h('input', { name: 'value', autocomplete: 'off', required: true, 'aria-label': request.field });
  const error = h('span', { class: 'error' });
  return h(
    'form',
    {
      class: 'user-data-request',
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = '';
        try {
          await actions.provideUserData(call.id, request.field, input.value);
          input.value = '';
        } catch (e) {
          error.textContent = e.message;
        }
      },
    },
    h('label', {}, `The menu asks for ${request.field}: “${request.question}” `, input),
    h('button', {}, 'Send'),
    error,
  );
}

function updateCard(card, call, nowMs, skewMs, actions) {
  const p = card._parts;
  card.dataset.status = call.status;
  card.classList.toggle('ended', !call.live);
  card.classList.toggle('person', alertActive(call));
  p.title.textContent = `${call.number}${call.company ? ` · ${call.company}` : ''}`;
  p.badge.dataset.status = call.status;
  p.badge.textContent = statusLabel(call.status);
  p.intent.textContent = call.intent ? `“${call.intent}”` : '';
  p.intent.hidden = !call.intent;
  const onHold = call.hold.sinceMs !== null || call.hold.accumulatedMs > 0 || call.hold.reported > 0;
  p.hold.hidden = !onHold;
  p.hold.replaceChildren('Hold ', h('span', { class: 'hold-timer' }, formatDuration(holdSeconds(call, nowMs, skewMs))));
  p.hearing.hidden = !call.hearing.length || !call.live;
  renderInto(p.hearing, `${call.hearing.length}:${call.lastSeq}`, () => hearingStrip(call.hearing));
  p.transfer.disabled = !call.live || !TRANSFERABLE.has(call.status) || Boolean(call.transfer);
  p.hangup.disabled = !call.live;
  p.hangup.hidden = !call.live;
  p.transfer.hidden = !call.live;
  p.details.hidden = call.live;
  p.remove.hidden = call.live;
  p.outcome.hidden = !call.outcome;
  if (call.outcome) {
    p.outcome.textContent = `${statusLabel(call.outcome.status)}: ${reasonLabel(call.outcome.reason)}${call.outcome.detail ? ` (${call.outcome.detail})` : ''}`;
  }
  const pending = call.live ? call.userData.filter((r) => !r.answered) : [];
  renderInto(p.userData, pending.map((r) => r.requestId).join(','), () => pending.map((r) => userDataForm(call, r, actions)));
  const running = call.live ? Math.floor((nowMs - skewMs) / 1000) : 'ended';
  renderInto(p.timeline, `${call.timeline.length}:${running}`, () => timelineItems(call, nowMs, skewMs));
  renderInto(p.steps, `${call.lastSeq}:${call.steps.length}`, () => stepItems(call));
  renderInto(p.transcript, call.transcript.length, () => transcriptItems(call));
  renderInto(p.log, call.log.length, () => logItems(call));
}

/** Keeps one card per call in `list`, newest first, updating the cards in place. */
export function createLiveView(list, actions) {
  const cards = new Map();
  const removed = new Set();
  const empty = h('p', { class: 'empty' }, 'No call yet: place one above.');

  function render(model, nowMs) {
    const calls = callsNewestFirst(model).filter((call) => !removed.has(call.id));
    const wanted = [];
    for (const call of calls) {
      let card = cards.get(call.id);
      if (!card) {
        card = callCard(call, actions);
        cards.set(call.id, card);
      }
      updateCard(card, call, nowMs, model.skewMs, actions);
      wanted.push(card);
    }
    for (const [id, card] of cards) if (!wanted.includes(card)) cards.delete(id);
    if (!wanted.length) wanted.push(empty);
    // Move only what is out of place, so that a focused input keeps its focus.
    wanted.forEach((card, i) => {
      if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
    });
    while (list.children.length > wanted.length) list.lastElementChild.remove();
  }

  return {
    render,
    remove(callId) {
      removed.add(callId);
    },
  };
}
