// Call flows: the list, one flow's steps, and an editor of its JSON (the API validates it and
// names the field at fault: those messages are shown as they come).

import { api, ApiError, describeDetail } from './api.js';
import { h, dateTime } from './dom.js';

const EDITABLE = ['id', 'name', 'company', 'phone_number', 'description', 'tags', 'steps'];

const NEW_FLOW = {
  id: 'my-company',
  name: 'My company',
  company: 'My company',
  phone_number: '5551234',
  description: '',
  tags: [],
  steps: [
    { id: 'main_menu', type: 'LISTEN', description: 'Let the main menu play, then press 0', dtmf: '0', timeout: 30, conditions: { on_hold: 'hold', on_human: 'transfer' } },
    { id: 'hold', type: 'HOLD', description: 'Wait on hold for a live person', conditions: { on_human: 'transfer' } },
    { id: 'transfer', type: 'TRANSFER', description: "Greet the agent and bridge the user's phone" },
  ],
};

/** The fields a person edits, without empty ones (a step's null dtmf, {} conditions ...). */
export function editableFlow(flow) {
  const out = {};
  for (const key of EDITABLE) if (key in flow) out[key] = key === 'steps' ? flow.steps.map(compact) : flow[key];
  return out;
}

function compact(step) {
  const out = {};
  for (const [key, value] of Object.entries(step)) {
    if (value === null || value === '' || (typeof value === 'object' && !Array.isArray(value) && !Object.keys(value).length)) continue;
    out[key] = value;
  }
  return out;
}

export async function renderFlows(view) {
  view.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  let flows;
  try {
    flows = await api('/api/call-flows');
  } catch (error) {
    view.replaceChildren(h('h2', {}, 'Call flows'), h('p', { class: 'error' }, error.message));
    return;
  }
  view.replaceChildren(
    h('div', { class: 'row' }, h('h2', {}, 'Call flows'), h('a', { class: 'button', href: '#flow-new' }, 'New flow')),
    flows.length
      ? h(
          'ol',
          { class: 'flows' },
          flows.map((flow) =>
            h(
              'li',
              { dataset: { flowId: flow.id } },
              h(
                'a',
                { href: `#flow/${encodeURIComponent(flow.id)}` },
                h('span', { class: 'name' }, flow.name),
                h('span', { class: 'who' }, `${flow.company ? `${flow.company} · ` : ''}${flow.phone_number}`),
                h('span', { class: 'meta' }, `v${flow.version} · ${flow.steps.length} steps · ${flow.success_count}✓ ${flow.fail_count}✗`),
              ),
            ),
          ),
        )
      : h('p', { class: 'empty' }, 'No call flow stored.'),
  );
}

function stepView(step, index) {
  const conditions = Object.entries(step.conditions || {}).map(([k, v]) => `${k} → ${v}`);
  return h(
    'li',
    { dataset: { step: step.id } },
    h('span', { class: 'step-id' }, step.id),
    ' ',
    h('span', { class: 'step-type' }, step.type),
    step.description ? h('span', { class: 'step-description' }, ` ${step.description}`) : null,
    h(
      'div',
      { class: 'step-facts' },
      [
        step.dtmf ? `press ${step.dtmf}` : null,
        step.timeout ? `timeout ${step.timeout} s` : null,
        step.next_step ? `next ${step.next_step}` : null,
        ...conditions,
        step.metadata && Object.keys(step.metadata).length ? `metadata ${JSON.stringify(step.metadata)}` : null,
      ]
        .filter(Boolean)
        .join(' · '),
    ),
  );
}

/** One flow: its steps, and the editor. `flowId` null: a new flow. */
export async function renderFlow(view, flowId, { onSaved, onDeleted, notice = '' }) {
  let flow = null;
  if (flowId) {
    view.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
    try {
      flow = await api(`/api/call-flows/${encodeURIComponent(flowId)}`);
    } catch (error) {
      view.replaceChildren(h('p', {}, h('a', { href: '#flows' }, '← Flows')), h('p', { class: 'error' }, error.message));
      return;
    }
  }
  const editor = h('textarea', {
    class: 'flow-json',
    spellcheck: 'false',
    rows: 22,
    'aria-label': 'flow as JSON',
  });
  editor.value = JSON.stringify(editableFlow(flow || NEW_FLOW), null, 2);
  const errors = h('pre', { class: 'error flow-errors', role: 'alert' });
  const saved = h('p', { class: 'flow-saved', role: 'status' }, notice);
  const editing = h(
    'form',
    {
      class: 'flow-editor',
      hidden: Boolean(flow),
      onsubmit: async (event) => {
        event.preventDefault();
        errors.textContent = '';
        saved.textContent = '';
        let body;
        try {
          body = JSON.parse(editor.value);
        } catch (error) {
          errors.textContent = `Not valid JSON: ${error.message}`;
          return;
        }
        try {
          const result = flow
            ? await api(`/api/call-flows/${encodeURIComponent(flow.id)}`, { method: 'PUT', body })
            : await api('/api/call-flows', { method: 'POST', body });
          saved.textContent = `Saved: version ${result.version}`;
          onSaved(result);
        } catch (error) {
          errors.textContent = error instanceof ApiError ? describeDetail(error.detail) : error.message;
        }
      },
    },
    h('label', { for: 'flow-json' }, 'The flow as JSON (format: flows/README.md)'),
    editor,
    errors,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, flow ? 'Save as a new version' : 'Create'), flow ? h('button', { type: 'button', class: 'quiet', onclick: () => showViewer() }, 'Cancel') : null),
  );
  editor.id = 'flow-json';
  const deleteButton = h('button', { type: 'button', class: 'danger delete' }, 'Delete');
  const deleteError = h('span', { class: 'error' });
  deleteButton.addEventListener('click', async () => {
    if (deleteButton.dataset.confirm !== 'yes') {
      deleteButton.dataset.confirm = 'yes';
      deleteButton.textContent = 'Really delete?';
      return;
    }
    try {
      await api(`/api/call-flows/${encodeURIComponent(flow.id)}`, { method: 'DELETE' });
      onDeleted(flow);
    } catch (error) {
      deleteError.textContent = error.message;
    }
  });
  const viewer = flow
    ? h(
        'div',
        { class: 'flow-viewer' },
        h('p', { class: 'meta' }, `${flow.company ? `${flow.company} · ` : ''}${flow.phone_number} · version ${flow.version} · updated ${dateTime(flow.updated_at)} · ${flow.success_count} succeeded, ${flow.fail_count} failed`),
        flow.description ? h('p', {}, flow.description) : null,
        flow.tags && flow.tags.length ? h('p', { class: 'tags' }, flow.tags.map((t) => h('span', { class: 'tag' }, t))) : null,
        h('ol', { class: 'flow-steps' }, flow.steps.map(stepView)),
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'edit', onclick: () => showEditor() }, 'Edit'), deleteButton, deleteError),
      )
    : null;
  function showEditor() {
    editing.hidden = false;
    if (viewer) viewer.hidden = true;
    editor.focus();
  }
  function showViewer() {
    editing.hidden = true;
    if (viewer) viewer.hidden = false;
  }
  view.replaceChildren(
    h('p', {}, h('a', { href: '#flows' }, '← Flows')),
    h('article', { class: 'card flow', dataset: { flowId: flow ? flow.id : '' } }, h('h2', {}, flow ? flow.name : 'New call flow'), viewer, editing, saved),
  );
}
