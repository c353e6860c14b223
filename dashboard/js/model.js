// What the dashboard knows about calls, folded from the event stream: plain data, no DOM, no I/O.
//
// The WebSocket sends {"type": "state", "calls": [...]} first (the live calls with their events
// so far), then every event ({"type", "call_id", "data", "at", "seq"}, docs/events.schema.json)
// and {"type": "heartbeat"} when idle. An event may come both in the state and after it (same
// seq): a call keeps the highest seq it has folded and skips what it has seen.
// `nowMs` is the browser's clock (Date.now()); server times (`at`) are mapped onto it through the
// offset measured on the latest message, so the hold timer runs on between hold events.

export const FINAL_STATUSES = new Set(['completed', 'failed', 'cancelled']);

const STATUS_LABELS = {
  pending: 'Starting',
  dialing: 'Dialling',
  ringing: 'Ringing',
  navigating: 'In the menu',
  on_hold: 'On hold',
  human_detected: 'Person detected',
  transferring: 'Ringing your phone',
  connected: 'Connected',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

const REASON_LABELS = {
  bridged: 'you were connected to a person',
  busy: 'the line was busy',
  no_answer: 'nobody answered',
  not_in_service: 'the number is not in service',
  congestion: 'the network was busy',
  company_hangup: 'the company hung up',
  user_no_answer: 'your phone did not answer',
  max_hold_time: 'gave up after the longest hold allowed',
  cancelled: 'hung up from here',
  flow_failed: 'the call flow failed',
  error: 'an error',
  pbx_lost: 'the phone system (PBX) went away',
  app_restarted: 'Hold Slayer stopped during the call',
  worker_lost: 'the Hold Slayer worker running the call stopped',
  shutdown: 'Hold Slayer was stopped',
};

// The evidence rule of a HUMAN_DETECTED that "transfer now" made (app/calls/steps.py USER_ASKED).
export const USER_ASKED = 'the user asked';
export const HEARING_WINDOWS_KEPT = 60; // AUDIO_CLASSIFIED comes every 0.5 s: the last 30 s
const LOG_KEPT = 300;

export function statusLabel(status) {
  return STATUS_LABELS[status] || status || '';
}

export function reasonLabel(reason) {
  return REASON_LABELS[reason] || reason || '';
}

/** Milliseconds since the epoch of a server timestamp (ISO 8601, microseconds allowed). */
export function parseAt(at) {
  if (!at) return NaN;
  // Keep milliseconds only: not every engine reads six fraction digits.
  return Date.parse(String(at).replace(/(\.\d{3})\d+/, '$1'));
}

export function createModel() {
  return { calls: new Map(), skewMs: 0, lastMessageAt: null };
}

export function newCall(callId) {
  return {
    id: callId,
    number: '',
    intent: '',
    device: null,
    company: null,
    flowId: null,
    status: 'pending',
    live: true,
    outcome: null, // {status, reason, detail} once CALL_ENDED
    createdAt: null,
    timeline: [], // [{status, at}]: every status the call went through, in order
    log: [], // [{at, type, text}]: what happened, in words
    steps: [], // [{stepId, type, description, at, decision, heard, inputs: [{kind, text, reason}], notes: []}]
    transcript: [], // [{at, speaker: company|us, kind, text, stepId}] (app/calls/transcript.py)
    hearing: [], // [{audioClass, confidence, t}]: the latest classifier windows
    hold: { accumulatedMs: 0, sinceMs: null, reported: 0 }, // sinceMs: server ms it went on hold
    human: null, // {confidence, holdSeconds, at}
    suspected: false,
    alert: { raised: false, dismissed: false, announced: false },
    transfer: null, // {device, complete}
    userData: [], // [{requestId, field, question, answered}]
    recordingSeconds: null,
    lastSeq: 0,
    needsRefresh: false,
  };
}

/** A call whose person is on the line and whose user has not been bridged nor dismissed it. */
export function alertActive(call) {
  return (
    call.alert.raised &&
    !call.alert.dismissed &&
    !call.outcome &&
    call.status !== 'connected' &&
    !(call.transfer && call.transfer.complete)
  );
}

export function dismissAlert(model, callId) {
  const call = model.calls.get(callId);
  if (call) call.alert.dismissed = true;
}

/** Seconds on hold so far (running while the call is on hold). */
export function holdSeconds(call, nowMs, skewMs = 0) {
  let ms = call.hold.accumulatedMs;
  if (call.hold.sinceMs !== null) ms += Math.max(0, nowMs - skewMs - call.hold.sinceMs);
  const seconds = ms / 1000;
  return seconds > 0 ? seconds : call.hold.reported;
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

// The recordings a call keeps (GET /api/calls/{id}/recordings), in the order they are shown.
const RECORDING_LABELS = {
  far_end: 'The company',
  app: 'What Hold Slayer said',
  mixed: 'Both sides',
  bridged: 'You and the person',
};

export function recordingLabel(channel) {
  return RECORDING_LABELS[channel] || channel || '';
}

/** A recording's length as a player shows it ("00:42"): whole seconds, never 0 for some sound. */
export function formatLength(seconds) {
  const s = Number(seconds);
  if (seconds === null || seconds === undefined || !Number.isFinite(s) || s < 0) return '';
  return formatDuration(s > 0 ? Math.max(1, Math.round(s)) : 0);
}

/**
 * One player per recording the listing names: {channel, label, seconds, length}, the known
 * channels in their order (far end, app, mixed, bridged), any other after them; a channel
 * listed twice once. Nothing for a channel the call does not have.
 */
export function recordingPlayers(listing) {
  const recordings = listing && Array.isArray(listing.recordings) ? listing.recordings : [];
  const order = Object.keys(RECORDING_LABELS);
  const rank = (channel) => (order.includes(channel) ? order.indexOf(channel) : order.length);
  const seen = new Set();
  const players = [];
  for (const recording of recordings) {
    const channel = recording && recording.channel ? String(recording.channel) : '';
    if (!channel || seen.has(channel)) continue;
    seen.add(channel);
    const seconds = Number(recording.seconds);
    players.push({
      channel,
      label: recordingLabel(channel),
      seconds: Number.isFinite(seconds) ? seconds : null,
      length: formatLength(recording.seconds),
    });
  }
  return players.sort((a, b) => rank(a.channel) - rank(b.channel));
}

/** The calls newest first. */
export function callsNewestFirst(model) {
  return [...model.calls.values()].sort((a, b) => (parseAt(b.createdAt) || 0) - (parseAt(a.createdAt) || 0));
}

/**
 * Fold one WebSocket message into the model. Returns what the page should act on:
 * {changed: [callId], alerts: [callId] (a person is newly on the line), refresh: [callId] (read
 * the call's record: one this page followed is gone from the live state, or an event came for
 * a call it never saw begin)}.
 */
export function applyMessage(model, message, nowMs) {
  const effects = { changed: [], alerts: [], refresh: [] };
  if (!message || typeof message !== 'object') return effects;
  const serverMs = parseAt(message.at);
  if (!Number.isNaN(serverMs)) {
    model.skewMs = nowMs - serverMs;
    model.lastMessageAt = message.at;
  }
  if (message.type === 'heartbeat') return effects;
  if (message.type === 'state') {
    const listed = new Set();
    for (const state of message.calls || []) {
      listed.add(state.call_id);
      const call = callFor(model, state.call_id);
      call.number = state.number || call.number;
      call.intent = state.intent ?? call.intent;
      for (const event of state.events || []) applyEvent(call, event);
      if (state.status) call.status = state.status;
      call.live = state.live !== false && !call.outcome;
      call.needsRefresh = false;
      effects.changed.push(call.id);
    }
    for (const call of model.calls.values()) {
      if (!listed.has(call.id) && !call.outcome) {
        call.needsRefresh = true;
        effects.refresh.push(call.id);
      }
    }
  } else if (message.call_id) {
    if (!model.calls.has(message.call_id) && message.type !== 'CALL_CREATED') {
      // A call this page never saw begin: its record has the beginning.
      effects.refresh.push(message.call_id);
      return effects;
    }
    const call = callFor(model, message.call_id);
    if (applyEvent(call, message)) effects.changed.push(call.id);
  }
  collectAlerts(model, effects);
  return effects;
}

/** Fold a stored call (GET /api/calls/{id}) into the model: its journal and its final status. */
export function applyStoredCall(model, record) {
  const call = callFor(model, record.call_id);
  call.number = record.number || call.number;
  call.intent = record.intent ?? call.intent;
  call.device = record.device ?? call.device;
  call.company = record.company ?? call.company;
  call.flowId = record.flow_id ?? call.flowId;
  call.createdAt = call.createdAt || record.created_at;
  for (const event of record.events || []) applyEvent(call, event);
  call.status = record.status || call.status;
  if (FINAL_STATUSES.has(record.status)) {
    call.live = false;
    if (!call.outcome) call.outcome = { status: record.status, reason: record.reason, detail: record.detail || '' };
    closeHold(call, parseAt(record.ended_at));
  }
  call.needsRefresh = false;
  return call;
}

function callFor(model, callId) {
  let call = model.calls.get(callId);
  if (!call) {
    call = newCall(callId);
    model.calls.set(callId, call);
  }
  return call;
}

function collectAlerts(model, effects) {
  for (const id of effects.changed) {
    const call = model.calls.get(id);
    if (alertActive(call) && !call.alert.announced) {
      call.alert.announced = true;
      effects.alerts.push(id);
    }
  }
}

function addLog(call, at, type, text) {
  call.log.push({ at, type, text });
  if (call.log.length > LOG_KEPT) call.log.splice(0, call.log.length - LOG_KEPT);
}

function stepFor(call, stepId) {
  for (let i = call.steps.length - 1; i >= 0; i--) if (call.steps[i].stepId === stepId) return call.steps[i];
  return null;
}

function closeHold(call, atMs) {
  if (call.hold.sinceMs === null) return;
  if (!Number.isNaN(atMs)) call.hold.accumulatedMs += Math.max(0, atMs - call.hold.sinceMs);
  call.hold.sinceMs = null;
}

function enterStatus(call, status, at) {
  const last = call.timeline[call.timeline.length - 1];
  if (!last || last.status !== status) call.timeline.push({ status, at });
  const atMs = parseAt(at);
  if (status === 'on_hold') {
    if (call.hold.sinceMs === null && !Number.isNaN(atMs)) call.hold.sinceMs = atMs;
  } else {
    closeHold(call, atMs);
  }
  call.status = status;
}

/** Fold one event into one call; false when it was seen already. */
export function applyEvent(call, event) {
  const seq = Number(event.seq || 0);
  if (seq && seq <= call.lastSeq) return false;
  if (seq) call.lastSeq = seq;
  const d = event.data || {};
  const at = event.at;
  switch (event.type) {
    case 'CALL_CREATED':
      Object.assign(call, {
        number: d.number || call.number,
        intent: d.intent ?? call.intent,
        device: d.device ?? null,
        flowId: d.flow_id ?? null,
        company: d.company ?? null,
        createdAt: at,
      });
      enterStatus(call, 'pending', at);
      addLog(call, at, event.type, `Call to ${d.number}${d.company ? ` (${d.company})` : ''} created`);
      break;
    case 'CALL_STATUS':
      enterStatus(call, d.status, at);
      break;
    case 'CALL_DIALING':
      addLog(call, at, event.type, `Dialling ${d.number}`);
      break;
    case 'CALL_RINGING':
      addLog(call, at, event.type, 'Ringing');
      break;
    case 'CALL_ANSWERED':
      addLog(call, at, event.type, 'Answered');
      break;
    case 'IVR_STEP':
      if (!d.step_type) {
        const step = stepFor(call, d.step_id);
        if (step && d.note) step.notes.push(d.note);
        addLog(call, at, event.type, `Step ${d.step_id}: ${d.note || d.decision || ''}`);
      } else {
        call.steps.push({
          stepId: d.step_id,
          type: d.step_type,
          description: d.description || '',
          at,
          decision: d.decision || null,
          heard: null,
          inputs: [],
          notes: d.note ? [d.note] : [],
        });
        addLog(call, at, event.type, `Step ${d.step_id} (${d.step_type})${d.description ? `: ${d.description}` : ''}`);
      }
      break;
    case 'IVR_MENU_DETECTED': {
      const step = stepFor(call, d.step_id);
      const heard = {
        transcript: d.transcript || '',
        options: (d.options || []).map((o) => (o.key ? `${o.key}: ${o.label}` : o.label)),
        seconds: d.heard_seconds,
      };
      if (step) step.heard = heard;
      if (heard.transcript.trim()) {
        call.transcript.push({ at, speaker: 'company', kind: 'menu', text: heard.transcript.trim(), stepId: d.step_id });
      }
      addLog(call, at, event.type, heard.transcript ? `Menu: “${heard.transcript}”` : `Menu heard (${Number(d.heard_seconds || 0).toFixed(1)} s)`);
      break;
    }
    case 'IVR_DTMF_SENT':
    case 'IVR_SPEECH_SENT': {
      const dtmf = event.type === 'IVR_DTMF_SENT';
      const text = dtmf ? String(d.digits ?? '') : String(d.text ?? '');
      const input = { kind: dtmf ? 'dtmf' : 'speech', text, reason: d.reason || null, purpose: d.purpose || null };
      const step = stepFor(call, d.step_id);
      if (step) step.inputs.push(input);
      call.transcript.push({ at, speaker: 'us', kind: input.kind, text, stepId: d.step_id });
      addLog(call, at, event.type, dtmf ? `Pressed ${text}` : `Said “${text}”`);
      break;
    }
    case 'IVR_STUCK': {
      const step = stepFor(call, d.step_id);
      if (step) step.notes.push(`${d.problem}: ${d.recovery}`);
      addLog(call, at, event.type, `Stuck (${d.problem}): ${d.recovery}`);
      break;
    }
    case 'USER_DATA_REQUESTED':
      call.userData.push({ requestId: d.request_id, field: d.field, question: d.question, answered: false });
      addLog(call, at, event.type, `The menu asks for ${d.field}: “${d.question}”`);
      break;
    case 'USER_DATA_RECEIVED':
      for (const request of call.userData) if (request.field === d.field) request.answered = true;
      addLog(call, at, event.type, `${d.field} given`);
      break;
    case 'FLOW_MISMATCH':
      addLog(call, at, event.type, `The flow no longer matches (${d.reason}): exploring`);
      break;
    case 'FLOW_LEARNED':
      addLog(call, at, event.type, `Flow ${d.flow_id} learned (version ${d.version})`);
      break;
    case 'AUDIO_CLASSIFIED':
      call.hearing.push({ audioClass: d.audio_class, confidence: d.confidence, t: d.t_end });
      if (call.hearing.length > HEARING_WINDOWS_KEPT) call.hearing.splice(0, call.hearing.length - HEARING_WINDOWS_KEPT);
      break;
    case 'HOLD_DETECTED':
      addLog(call, at, event.type, 'Hold music heard');
      break;
    case 'HOLD_PROGRESS':
      call.hold.reported = Number(d.hold_seconds || 0);
      break;
    case 'HUMAN_SUSPECTED':
      call.suspected = true;
      addLog(call, at, event.type, 'Maybe a person: greeting them');
      break;
    case 'HUMAN_RETRACTED':
      call.suspected = false;
      addLog(call, at, event.type, 'Not a person after all: still on hold');
      break;
    case 'HUMAN_PROBE':
      call.transcript.push({ at, speaker: 'us', kind: 'probe', text: d.text || '' });
      addLog(call, at, event.type, `Asked “${d.text}”`);
      break;
    case 'HUMAN_DETECTED': {
      // "Transfer now" goes on as if a person had been found: no alarm for what the user asked.
      const byHand = (d.evidence || {}).rule === USER_ASKED;
      call.human = { confidence: d.confidence, holdSeconds: d.hold_seconds, at, byHand };
      call.hold.reported = Number(d.hold_seconds || call.hold.reported);
      if (!byHand) call.alert.raised = true;
      addLog(
        call,
        at,
        event.type,
        byHand ? 'Putting you through, as you asked' : `A person is on the line (after ${formatDuration(d.hold_seconds)} on hold)`,
      );
      break;
    }
    case 'TONE_DETECTED':
      if (d.kind && !['ringback', 'dtmf'].includes(String(d.kind).toLowerCase())) {
        addLog(call, at, event.type, `Tone: ${d.kind}`);
      }
      break;
    case 'AGENT_GREETED':
      call.transcript.push({ at, speaker: 'us', kind: 'greeting', text: d.text || '' });
      addLog(call, at, event.type, `Said to the person: “${d.text}”`);
      break;
    case 'TRANSFER_STARTED':
      call.transfer = { device: d.device, complete: false };
      addLog(call, at, event.type, `Ringing your phone (${d.device})`);
      break;
    case 'TRANSFER_COMPLETE':
      call.transfer = { device: d.device, complete: true };
      addLog(call, at, event.type, 'You are connected');
      break;
    case 'RECORDING_SAVED':
      call.recordingSeconds = d.seconds;
      addLog(call, at, event.type, `Recording saved (${formatDuration(d.seconds)})`);
      break;
    case 'ARI_RECONNECTED':
      addLog(call, at, event.type, 'Reconnected to the phone system');
      break;
    case 'CALL_ENDED':
      call.outcome = { status: d.status, reason: d.reason, detail: d.detail || '' };
      call.live = false;
      enterStatus(call, d.status, at);
      addLog(call, at, event.type, `Ended: ${statusLabel(d.status)} (${reasonLabel(d.reason)})`);
      break;
    default:
      addLog(call, at, event.type, event.type);
  }
  return true;
}

const SAID = { menu: 'said', dtmf: 'pressed', speech: 'said', greeting: 'said to the person', probe: 'asked' };

/** "company said" / "we pressed": the verb of a transcript line (as app/calls/transcript.py). */
export function transcriptVerb(line) {
  return `${line.speaker === 'company' ? 'company' : 'we'} ${SAID[line.kind] || 'said'}`;
}

/** The audio classes by colour family, for the hearing strip. */
export function hearingKind(audioClass) {
  switch (audioClass) {
    case 'LIVE_HUMAN':
      return 'human';
    case 'SPEECH':
    case 'IVR_PROMPT':
      return 'speech';
    case 'MUSIC':
      return 'music';
    case 'SILENCE':
      return 'silence';
    default:
      return 'tone';
  }
}
