// The parts of a call both the live view and the history show: state timeline, menu steps,
// transcript, what happened, what the classifier heard.

import { h, clock } from './dom.js';
import { formatDuration, hearingKind, parseAt, statusLabel, transcriptVerb } from './model.js';

export function statusBadge(status) {
  return h('span', { class: 'badge', dataset: { status } }, statusLabel(status));
}

/** The states a call went through, each with when it began and how long it lasted. */
export function timelineItems(call, nowMs, skewMs = 0) {
  return call.timeline.map((entry, i) => {
    const next = call.timeline[i + 1];
    const startMs = parseAt(entry.at);
    const endMs = next ? parseAt(next.at) : call.live ? nowMs - skewMs : NaN;
    const seconds = (endMs - startMs) / 1000;
    const final = !next && !call.live;
    return h(
      'li',
      { dataset: { status: entry.status } },
      h('span', { class: 'label' }, statusLabel(entry.status)),
      ' ',
      h('time', { datetime: entry.at }, clock(entry.at)),
      !final && Number.isFinite(seconds) ? h('span', { class: 'duration' }, formatDuration(seconds)) : null,
    );
  });
}

export function stepItems(call) {
  if (!call.steps.length) return [h('li', { class: 'empty' }, 'No menu step yet')];
  return call.steps.map((step) =>
    h(
      'li',
      { dataset: { step: step.stepId } },
      h('span', { class: 'step-id' }, step.stepId),
      ' ',
      h('span', { class: 'step-type' }, step.type),
      step.description ? h('span', { class: 'step-description' }, ` ${step.description}`) : null,
      step.heard && step.heard.options.length ? h('div', { class: 'heard' }, `heard: ${step.heard.options.join(', ')}`) : null,
      step.decision ? h('div', { class: 'decision' }, step.decision) : null,
      step.inputs.map((input) =>
        h(
          'div',
          { class: `input ${input.kind}` },
          input.kind === 'dtmf' ? `pressed ${input.text}` : `said “${input.text}”`,
          input.reason ? h('span', { class: 'reason' }, ` (${input.reason})`) : null,
        ),
      ),
      step.notes.map((note) => h('div', { class: 'note' }, note)),
    ),
  );
}

export function transcriptItems(call) {
  if (!call.transcript.length) return [h('li', { class: 'empty' }, 'Nothing said or pressed yet')];
  return call.transcript.map((line) =>
    h(
      'li',
      { class: `speaker-${line.speaker}` },
      h('time', { datetime: line.at }, clock(line.at)),
      ' ',
      h('span', { class: 'who' }, `${transcriptVerb(line)}:`),
      ' ',
      h('span', { class: 'text' }, line.text),
    ),
  );
}

export function logItems(call) {
  return call.log.map((entry) =>
    h('li', { dataset: { type: entry.type } }, h('time', { datetime: entry.at }, clock(entry.at)), ' ', entry.text),
  );
}

/** The latest classifier windows, one cell each, newest on the right. */
export function hearingStrip(hearing) {
  const latest = hearing[hearing.length - 1];
  return [
    h(
      'span',
      { class: 'hearing-label' },
      latest ? `Hears: ${latest.audioClass.toLowerCase().replace('_', ' ')} (${Number(latest.confidence).toFixed(2)})` : 'Hears: —',
    ),
    h(
      'div',
      { class: 'strip', role: 'img', 'aria-label': 'what the classifier heard, oldest first' },
      hearing.map((w) =>
        h('span', {
          class: `cell ${hearingKind(w.audioClass)}`,
          title: `${w.audioClass} ${Number(w.confidence).toFixed(2)} at ${Number(w.t).toFixed(1)} s`,
          style: `opacity:${0.35 + 0.65 * Math.max(0, Math.min(1, Number(w.confidence) || 0))}`,
        }),
      ),
    ),
  ];
}

/** A call's classification history as one bar. Windows overlap (each spans 3 s, one every
 * 0.5 s), so each segment is drawn from its start to the next one's start. */
export function segmentsStrip(segments) {
  if (!segments.length) return [h('p', { class: 'empty' }, 'No classification stored')];
  const sorted = [...segments].sort((a, b) => Number(a.t_start) - Number(b.t_start));
  const start = Number(sorted[0].t_start);
  const end = Math.max(...sorted.map((s) => Number(s.t_end)));
  return [
    h(
      'div',
      { class: 'segments' },
      sorted.map((s, i) => {
        const until = i + 1 < sorted.length ? Number(sorted[i + 1].t_start) : Number(s.t_end);
        return h('span', {
          class: `cell ${hearingKind(s.audio_class)}`,
          title: `${s.audio_class} ${Number(s.t_start).toFixed(1)}–${Number(s.t_end).toFixed(1)} s (${Number(s.confidence).toFixed(2)})`,
          style: `flex-grow:${Math.max(0.001, until - Number(s.t_start))}`,
        });
      }),
    ),
    h(
      'p',
      { class: 'legend' },
      ['human', 'speech', 'music', 'silence', 'tone'].map((kind) => h('span', { class: `key ${kind}` }, kind)),
      ` ${formatDuration(start)} – ${formatDuration(end)}`,
    ),
  ];
}
