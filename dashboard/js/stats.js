// Stats: what the finished calls add up to (GET /api/analytics): overall, per company and by
// hour of the day, to see which companies keep you waiting and when to call them.

import { api } from './api.js';
import { h } from './dom.js';
import { companyRows, FIGURES, formatSpan, hourBars, hourLabel, hourRows, summaryFigures } from './analytics.js';

let shown = 0; // the latest render: an older answer arriving late is not drawn over it

function figureCells(figures) {
  return FIGURES.map(({ key, label }) =>
    h('td', { dataset: { figure: key, label }, title: key === 'success' ? figures.success_of : null }, figures[key]),
  );
}

function table(kind, firstColumn, rows) {
  return h(
    'table',
    { class: `stats ${kind}` },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, firstColumn), FIGURES.map(({ label, hint }) => h('th', { scope: 'col', title: hint }, label)))),
    h('tbody', {}, rows),
  );
}

function overall(figures) {
  return h(
    'dl',
    { class: 'figures' },
    FIGURES.map(({ key, label, hint }) =>
      h('div', { dataset: { figure: key }, title: hint }, h('dt', {}, label), h('dd', {}, figures[key], key === 'success' && figures.success_of ? h('small', {}, ` (${figures.success_of})`) : null)),
    ),
  );
}

function bars(analytics) {
  return h(
    'div',
    { class: 'hour-bars', role: 'img', 'aria-label': 'median hold by hour of the day, UTC' },
    hourBars(analytics).map((bar) =>
      h(
        'span',
        {
          class: bar.share === null ? 'bar none' : 'bar',
          dataset: { hour: bar.hour },
          title: `${hourLabel(bar.hour).utc}: ${bar.calls ? `${bar.calls} call${bar.calls === 1 ? '' : 's'}, median hold ${formatSpan(bar.holdSeconds)}` : 'no call'}`,
        },
        h('span', { class: 'fill', style: `height:${bar.share === null ? 0 : Math.max(4, Math.round(bar.share * 100))}%` }),
      ),
    ),
    [0, 6, 12, 18].map((hour) => h('span', { class: 'tick', style: `grid-column:${hour + 1} / span 4` }, String(hour).padStart(2, '0'))),
  );
}

/** The Stats view. Keeps what it shows until the new figures are in (no flash on a refresh). */
export async function renderStats(view) {
  const mine = ++shown;
  const heading = h('div', { class: 'row' }, h('h2', {}, 'Stats'), h('button', { type: 'button', class: 'quiet refresh', onclick: () => renderStats(view) }, 'Refresh'));
  if (!view.querySelector('.stats-body')) view.replaceChildren(heading, h('p', { class: 'loading' }, 'Loading…'));
  let analytics;
  try {
    analytics = await api('/api/analytics');
  } catch (error) {
    if (mine === shown) view.replaceChildren(heading, h('p', { class: 'error' }, error.message));
    return;
  }
  if (mine !== shown) return;
  const total = summaryFigures(analytics.overall);
  if (total.calls === '0') {
    view.replaceChildren(heading, h('div', { class: 'stats-body' }, h('p', { class: 'empty' }, 'No finished call yet: the figures come once a call has ended.')));
    return;
  }
  const offset = new Date().getTimezoneOffset();
  const companies = companyRows(analytics).map((row) =>
    h('tr', { dataset: { company: row.name } }, h('th', { scope: 'row', dataset: { label: 'Company' } }, row.name), figureCells(row.figures)),
  );
  const hours = hourRows(analytics, offset).map((row) =>
    h(
      'tr',
      { dataset: { hour: row.hour } },
      h('th', { scope: 'row', dataset: { label: 'Hour' } }, row.utc, row.local ? h('small', { class: 'local' }, ` ${row.local} your time`) : null),
      figureCells(row.figures),
    ),
  );
  view.replaceChildren(
    heading,
    h(
      'div',
      { class: 'stats-body' },
      h('p', { class: 'note' }, 'Finished calls. A success is a call that got you through to a person.'),
      overall(total),
      h('section', {}, h('h3', {}, 'By company'), table('by-company', 'Company', companies)),
      h('section', {}, h('h3', {}, 'By hour of the day (UTC): the median hold'), bars(analytics), table('by-hour', 'Hour', hours)),
    ),
  );
}
