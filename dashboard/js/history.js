// History: the stored calls page by page, and one call's record: its timeline, menu steps,
// transcript, what the classifier heard, every event, and its recordings (one player each).

import { api, recordingUrl } from './api.js';
import { h, clock, dateTime } from './dom.js';
import { applyStoredCall, createModel, FINAL_STATUSES, formatDuration, reasonLabel, recordingPlayers, statusLabel } from './model.js';
import { logItems, segmentsStrip, statusBadge, stepItems, timelineItems, transcriptItems } from './render.js';

export const PAGE_SIZE = 20;

export async function renderHistory(view, { offset = 0, status = '' } = {}) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset) });
  if (status) query.set('status', status);
  const filter = h(
    'select',
    {
      'aria-label': 'status',
      onchange: () => renderHistory(view, { offset: 0, status: filter.value }),
    },
    h('option', { value: '' }, 'All calls'),
    ['completed', 'failed', 'cancelled', 'on_hold', 'navigating', 'connected'].map((s) =>
      h('option', { value: s, selected: s === status }, statusLabel(s)),
    ),
  );
  const heading = h('div', { class: 'row' }, h('h2', {}, 'History'), filter);
  view.replaceChildren(heading, h('p', { class: 'loading' }, 'Loading…'));
  let calls;
  try {
    calls = await api(`/api/calls?${query}`);
  } catch (error) {
    view.replaceChildren(heading, h('p', { class: 'error' }, error.message));
    return;
  }
  const rows = calls.map((call) =>
    h(
      'li',
      { dataset: { callId: call.call_id } },
      h(
        'a',
        { href: `#call/${encodeURIComponent(call.call_id)}` },
        h('span', { class: 'when' }, dateTime(call.created_at)),
        h('span', { class: 'who' }, `${call.number}${call.company ? ` · ${call.company}` : ''}`),
        statusBadge(call.status),
        h('span', { class: 'why' }, call.reason ? reasonLabel(call.reason) : call.intent || ''),
      ),
    ),
  );
  const pager = h(
    'div',
    { class: 'pager' },
    h('button', { type: 'button', disabled: offset === 0, onclick: () => renderHistory(view, { offset: Math.max(0, offset - PAGE_SIZE), status }) }, '← Newer'),
    h('span', {}, calls.length ? `${offset + 1}–${offset + calls.length}` : ''),
    h('button', { type: 'button', disabled: calls.length < PAGE_SIZE, onclick: () => renderHistory(view, { offset: offset + PAGE_SIZE, status }) }, 'Older →'),
  );
  view.replaceChildren(heading, rows.length ? h('ol', { class: 'history' }, rows) : h('p', { class: 'empty' }, 'No call yet.'), pager);
}

function facts(record) {
  const rows = [
    ['Number', record.number],
    ['Company', record.company],
    ['Intent', record.intent],
    ['Device', record.device],
    ['Flow', record.flow_id],
    ['Outcome', record.reason ? `${statusLabel(record.status)}: ${reasonLabel(record.reason)}` : statusLabel(record.status)],
    ['Detail', record.detail],
    ['Started', dateTime(record.created_at)],
    ['Answered', clock(record.answered_at)],
    ['On hold', record.hold_seconds != null ? formatDuration(record.hold_seconds) : ''],
    ['Person', clock(record.human_detected_at)],
    ['Connected', clock(record.connected_at)],
    ['Ended', clock(record.ended_at)],
  ].filter(([, value]) => value);
  return h('dl', { class: 'facts' }, rows.map(([name, value]) => [h('dt', {}, name), h('dd', {}, value)]));
}

function recordingPlayer(callId, item, previous) {
  const audio = h('audio', { controls: true, preload: 'auto', class: 'recording' });
  const message = h('p', { class: 'recording-status' });
  const button = h('button', { type: 'button', class: 'play', 'aria-label': `Play: ${item.label}` }, '▶ Play');
  let objectUrl = null;
  button.addEventListener('click', async () => {
    message.textContent = 'Loading the recording…';
    button.disabled = true;
    try {
      if (!objectUrl) {
        objectUrl = await recordingUrl(callId, item.channel);
        previous.push(objectUrl);
        audio.src = objectUrl;
      }
      await audio.play();
      message.textContent = '';
    } catch (error) {
      message.textContent = error.name === 'NotAllowedError' ? 'Press play on the player to listen.' : `Cannot play: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  audio.addEventListener('error', () => {
    message.textContent = `The browser cannot play this recording (${audio.error ? audio.error.message || audio.error.code : 'error'})`;
  });
  return h(
    'div',
    { class: 'player', dataset: { channel: item.channel } },
    h('p', { class: 'player-head' }, h('span', { class: 'label' }, item.label), ' ', h('span', { class: 'length' }, item.length)),
    h('div', { class: 'player-controls' }, button, audio),
    message,
  );
}

/** The call's recordings, one player each; one plays at a time. Those retention deleted get a note instead. */
function recordingsSection(record, listing, previous) {
  const heading = h('h3', {}, 'Recordings');
  if (listing instanceof Error) return h('section', { class: 'recordings' }, heading, h('p', { class: 'error' }, `Cannot list the recordings: ${listing.message}`));
  const all = listing && Array.isArray(listing.recordings) ? listing.recordings : [];
  const removed = all.filter((recording) => recording && recording.removed_at);
  const players = recordingPlayers({ recordings: all.filter((recording) => !(recording && recording.removed_at)) })
    .map((item) => recordingPlayer(record.call_id, item, previous));
  const removedNote = removed.length
    ? h('p', { class: 'empty recordings-removed' }, `The recordings of this call were deleted on ${dateTime(removed[0].removed_at)}: they are kept for a set time after a call ends.`)
    : null;
  if (!players.length && removedNote) return h('section', { class: 'recordings' }, heading, removedNote);
  if (!players.length) {
    const live = !FINAL_STATUSES.has(record.status);
    return h('section', { class: 'recordings' }, heading, h('p', { class: 'empty' }, live ? 'The recordings are kept when the call ends.' : 'No recording'));
  }
  const audios = players.map((player) => player.querySelector('audio'));
  for (const audio of audios) {
    audio.addEventListener('play', () => audios.filter((other) => other !== audio).forEach((other) => other.pause()));
  }
  return h('section', { class: 'recordings' }, heading, h('div', { class: 'players' }, players), removedNote);
}

let objectUrls = [];

/** One stored call. Returns after it is shown (or its error is). */
export async function renderCall(view, callId, { onLearned } = {}) {
  for (const url of objectUrls) URL.revokeObjectURL(url);
  objectUrls = [];
  view.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  const path = `/api/calls/${encodeURIComponent(callId)}`;
  let record;
  let listing;
  try {
    [record, listing] = await Promise.all([api(path), api(`${path}/recordings`).catch((error) => error)]);
  } catch (error) {
    view.replaceChildren(h('p', {}, h('a', { href: '#history' }, '← History')), h('p', { class: 'error' }, error.message));
    return;
  }
  const call = applyStoredCall(createModel(), record);
  const live = !FINAL_STATUSES.has(record.status);
  const learnStatus = h('span', { class: 'learn-status' });
  const learn = h(
    'button',
    {
      type: 'button',
      class: 'quiet',
      disabled: live,
      onclick: async () => {
        learnStatus.textContent = '';
        try {
          const flow = await api('/api/call-flows/learn', { method: 'POST', body: { call_id: record.call_id } });
          learnStatus.replaceChildren('Learned ', h('a', { href: `#flow/${encodeURIComponent(flow.id)}` }, flow.name), ` (version ${flow.version})`);
          if (onLearned) onLearned(flow);
        } catch (error) {
          learnStatus.textContent = error.message;
        }
      },
    },
    'Learn a flow from this call',
  );
  view.replaceChildren(
    h('p', {}, h('a', { href: '#history' }, '← History')),
    h('article', { class: 'call-detail card', dataset: { callId: record.call_id, status: record.status } },
      h('header', {}, h('h2', {}, `${record.number}${record.company ? ` · ${record.company}` : ''}`), statusBadge(record.status)),
      live ? h('p', { class: 'note' }, 'This call is still going: the live view follows it.') : null,
      facts(record),
      recordingsSection(record, listing, objectUrls),
      h(
        'div',
        { class: 'columns' },
        h('section', {}, h('h3', {}, 'Timeline'), h('ol', { class: 'timeline' }, timelineItems(call, Date.now()))),
        h('section', {}, h('h3', {}, 'Menu steps'), h('ol', { class: 'steps' }, stepItems(call))),
        h('section', {}, h('h3', {}, 'Transcript'), h('ol', { class: 'transcript' }, transcriptItems(call))),
      ),
      h('section', {}, h('h3', {}, 'What the classifier heard'), segmentsStrip(record.classifications || [])),
      h('details', { class: 'events' }, h('summary', {}, `What happened (${call.log.length})`), h('ol', { class: 'log' }, logItems(call))),
      h('details', { class: 'raw-events' }, h('summary', {}, `Events as recorded (${(record.events || []).length})`),
        h('ol', {}, (record.events || []).map((e) => h('li', {}, h('code', {}, `${clock(e.at)} ${e.type} ${JSON.stringify(e.data)}`))))),
      h('p', { class: 'actions' }, learn, learnStatus),
    ),
  );
}
