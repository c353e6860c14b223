// The dashboard: log in if the API wants a token, follow /ws/events into the model, render the
// view the address names (#live, #history, #call/ID, #flows, #flow/ID, #flow-new).

import { playAlertTone, unlockAudio } from './alert.js';
import { api, checkToken, eventsSocketUrl, onUnauthorized, storedToken, storeToken } from './api.js';
import { renderFlow, renderFlows } from './flows.js';
import { renderCall, renderHistory } from './history.js';
import { createLiveView, setUpCallForm } from './live.js';
import { alertActive, applyMessage, applyStoredCall, createModel, dismissAlert } from './model.js';
import { connectEvents } from './socket.js';

const TONE_REPEAT_MS = 6000;

const $ = (selector) => document.querySelector(selector);
const views = {
  live: $('#view-live'),
  history: $('#view-history'),
  call: $('#view-call'),
  flows: $('#view-flows'),
  flow: $('#view-flow'),
};

const model = createModel();
let socket = null;
let started = false;
let renderQueued = false;
let lastTone = 0;

const liveView = createLiveView($('#live-calls'), {
  transfer: (id) => api(`/api/calls/${encodeURIComponent(id)}/transfer`, { method: 'POST' }),
  hangup: (id) => api(`/api/calls/${encodeURIComponent(id)}/hangup`, { method: 'POST' }),
  provideUserData: (id, field, value) =>
    api(`/api/calls/${encodeURIComponent(id)}/user-data`, { method: 'POST', body: { field, value } }),
  remove: (id) => {
    liveView.remove(id);
    scheduleRender();
  },
});

const callForm = setUpCallForm($('#place-call'), {
  onPlaced: () => {
    location.hash = '#live';
  },
});

// ------------------------------------------------------------------ rendering

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    render();
  }, 0);
}

function render() {
  liveView.render(model, Date.now());
  renderAlert();
}

function activeAlerts() {
  return [...model.calls.values()].filter(alertActive);
}

function renderAlert() {
  const banner = $('#alert');
  const calls = activeAlerts();
  banner.hidden = calls.length === 0;
  document.title = calls.length ? '🔔 A person is on the line · Hold Slayer' : 'Hold Slayer';
  if (!calls.length) return;
  $('#alert-text').textContent = calls
    .map((call) => {
      const who = `${call.number}${call.company ? ` · ${call.company}` : ''}`;
      return call.transfer ? `${who}: your phone (${call.transfer.device}) is ringing.` : `${who}: ringing your phone…`;
    })
    .join(' ');
  if (Date.now() - lastTone > TONE_REPEAT_MS) soundAlert();
}

async function soundAlert() {
  lastTone = Date.now();
  const played = await playAlertTone();
  const banner = $('#alert');
  banner.dataset.sound = played ? 'played' : 'blocked';
  $('#alert-sound').hidden = played;
}

$('#alert-dismiss').addEventListener('click', () => {
  for (const call of activeAlerts()) dismissAlert(model, call.id);
  scheduleRender();
});
$('#alert-show').addEventListener('click', () => {
  const call = activeAlerts()[0];
  location.hash = '#live';
  if (call) document.querySelector(`.call[data-call-id="${CSS.escape(call.id)}"]`)?.scrollIntoView({ behavior: 'smooth' });
});

// ------------------------------------------------------------------ the event stream

const reading = new Set(); // calls whose record is being read
const noRecord = new Set(); // ids the API does not know: not asked again

function readRecord(id) {
  if (reading.has(id) || noRecord.has(id)) return;
  reading.add(id);
  api(`/api/calls/${encodeURIComponent(id)}`)
    .then((record) => {
      applyStoredCall(model, record);
      scheduleRender();
    })
    .catch((error) => {
      if (error.status === 404) noRecord.add(id);
    })
    .finally(() => reading.delete(id));
}

function onMessage(message) {
  const effects = applyMessage(model, message, Date.now());
  effects.refresh.forEach(readRecord);
  if (effects.alerts.length) lastTone = 0; // a new person: sound at once
  scheduleRender();
}

function setConnection(state, retryMs) {
  const el = $('#connection');
  el.dataset.state = state;
  el.textContent = state === 'live' ? 'live' : state === 'retrying' ? `reconnecting in ${Math.round(retryMs / 1000) || 1} s` : 'connecting…';
}

function startSocket() {
  socket = connectEvents({
    url: () => eventsSocketUrl(),
    onMessage,
    onStatus: setConnection,
    onRejected: async () => {
      if ((await checkToken(storedToken())) === 'unauthorized') {
        requireLogin();
        return false;
      }
      return true;
    },
  });
}

// ------------------------------------------------------------------ views

function route() {
  if (!started) return;
  const [name, ...rest] = (location.hash.slice(1) || 'live').split('/');
  const arg = decodeURIComponent(rest.join('/'));
  const shown = { live: 'live', history: 'history', call: 'call', flows: 'flows', flow: 'flow', 'flow-new': 'flow' }[name] || 'live';
  for (const [key, view] of Object.entries(views)) view.hidden = key !== shown;
  for (const link of document.querySelectorAll('nav a')) {
    const section = link.getAttribute('href').slice(1);
    link.classList.toggle('active', section === shown || (section === 'history' && shown === 'call') || (section === 'flows' && shown === 'flow'));
  }
  const flowCallbacks = {
    onSaved: (flow) => {
      const target = `#flow/${encodeURIComponent(flow.id)}`;
      if (location.hash !== target) history.replaceState(null, '', target);
      renderFlow(views.flow, flow.id, { ...flowCallbacks, notice: `Saved: version ${flow.version}` });
      callForm.refreshChoices();
    },
    onDeleted: () => {
      location.hash = '#flows';
      callForm.refreshChoices();
    },
  };
  if (name === 'history') renderHistory(views.history);
  else if (name === 'call') renderCall(views.call, arg, { onLearned: () => callForm.refreshChoices() });
  else if (name === 'flows') renderFlows(views.flows);
  else if (name === 'flow') renderFlow(views.flow, arg, flowCallbacks);
  else if (name === 'flow-new') renderFlow(views.flow, null, flowCallbacks);
  else render();
}

window.addEventListener('hashchange', route);

// ------------------------------------------------------------------ logging in

function start() {
  if (started) return;
  started = true;
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#logout').hidden = !storedToken();
  startSocket();
  callForm.refreshChoices();
  route();
}

function requireLogin(message = '') {
  if (socket) socket.close();
  socket = null;
  started = false;
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = message;
  $('#login-token').value = '';
  $('#login-token').focus();
}

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = $('#login-token').value.trim();
  const error = $('#login-error');
  error.textContent = '';
  const result = await checkToken(token);
  if (result === 'unauthorized') {
    error.textContent = 'That token is not accepted. It is HOLDSLAYER_API_TOKEN of the server.';
    $('#login-token').select();
    return;
  }
  if (result !== 'ok') {
    error.textContent = `Cannot log in: ${result}`;
    return;
  }
  storeToken(token);
  start();
});

$('#logout').addEventListener('click', () => {
  storeToken('');
  requireLogin();
  // An open API (loopback, no token) needs no login: straight back in.
  checkToken('').then((result) => result === 'ok' && start());
});

onUnauthorized(() => requireLogin('Your token is no longer accepted: log in again.'));

// Browsers let a page sound only after a gesture: every click or key unlocks the alert tone.
for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, unlockAudio, { passive: true });

setInterval(() => started && scheduleRender(), 1000); // the hold timers and the running state

(async function boot() {
  const result = await checkToken(storedToken());
  if (result === 'unauthorized') requireLogin(storedToken() ? 'Your token is no longer accepted: log in again.' : '');
  else start(); // 'ok', or the server is down: the stream retries until it is back
})();
