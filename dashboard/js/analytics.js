// What GET /api/analytics says (app/analytics.py), in words and numbers to show: plain data, no
// DOM, no I/O. Every summary there is {calls, succeeded, success_rate, hold_median_seconds,
// hold_p90_seconds, time_to_person_median_seconds}, with null where there is nothing to measure.

export const NONE = '—';

/** The figures of a summary, in the order they are shown; `key` names the column. */
export const FIGURES = [
  { key: 'calls', label: 'Calls', hint: 'finished calls' },
  { key: 'success', label: 'Success', hint: 'calls that got you through to a person' },
  { key: 'hold_median', label: 'Hold, median', hint: 'half the holds were shorter than this' },
  { key: 'hold_p90', label: 'Hold, p90', hint: '9 holds in 10 were no longer than this' },
  { key: 'to_person', label: 'Time to a person', hint: 'median hold of the calls a person answered' },
];

/** 0.667 -> "67%"; never "0%" or "100%" unless it is exactly that; "—" for no value. */
export function formatPercent(rate) {
  const r = Number(rate);
  if (rate === null || rate === undefined || rate === '' || !Number.isFinite(r)) return NONE;
  if (r <= 0) return '0%';
  if (r >= 1) return '100%';
  const percent = Math.round(r * 100);
  if (percent === 0) return '<1%';
  if (percent === 100) return '>99%';
  return `${percent}%`;
}

/** A span of time in words: "42 s", "3 min 20 s", "12 min", "1 h 05 min", "2 h"; "—" for none. */
export function formatSpan(seconds) {
  const value = Number(seconds);
  if (seconds === null || seconds === undefined || seconds === '' || !Number.isFinite(value) || value < 0) return NONE;
  const s = Math.round(value);
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    // Minutes and seconds up to ten minutes; past that whole minutes say enough.
    const m = s >= 600 ? Math.round(s / 60) : Math.floor(s / 60);
    const rest = s >= 600 ? 0 : s % 60;
    if (m >= 60) return '1 h';
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  const minutes = Math.round(s / 60);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${String(m).padStart(2, '0')} min` : `${h} h`;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/**
 * An hour of the day in UTC as shown: {utc: "14:00 UTC", local: "16:00" or null when the
 * browser's time is UTC}. `tzOffsetMinutes` is Date#getTimezoneOffset() (UTC minus local).
 */
export function hourLabel(hourUtc, tzOffsetMinutes = 0) {
  const hour = ((Math.floor(Number(hourUtc)) % 24) + 24) % 24;
  const offset = Number(tzOffsetMinutes) || 0;
  const localMinutes = (((hour * 60 - offset) % 1440) + 1440) % 1440;
  return {
    utc: `${pad(hour)}:00 UTC`,
    local: offset ? `${pad(Math.floor(localMinutes / 60))}:${pad(localMinutes % 60)}` : null,
  };
}

/** A summary's figures as text: {calls, success, hold_median, hold_p90, to_person}, and the
 * success as "2 of 3" in `success_of`. */
export function summaryFigures(summary) {
  const s = summary || {};
  const calls = Number(s.calls) || 0;
  return {
    calls: String(calls),
    success: calls ? formatPercent(s.success_rate) : NONE,
    success_of: calls ? `${Number(s.succeeded) || 0} of ${calls}` : '',
    hold_median: formatSpan(s.hold_median_seconds),
    hold_p90: formatSpan(s.hold_p90_seconds),
    to_person: formatSpan(s.time_to_person_median_seconds),
  };
}

/** Per company, as the API orders them (most calls first): [{name, figures}]. */
export function companyRows(analytics) {
  const rows = (analytics && Array.isArray(analytics.by_company) && analytics.by_company) || [];
  return rows.map((row) => ({ name: String(row.company ?? ''), figures: summaryFigures(row) }));
}

/** Per hour of the day with calls, earliest first: [{hour, utc, local, figures}]. */
export function hourRows(analytics, tzOffsetMinutes = 0) {
  const rows = (analytics && Array.isArray(analytics.by_hour_utc) && analytics.by_hour_utc) || [];
  return [...rows]
    .sort((a, b) => Number(a.hour) - Number(b.hour))
    .map((row) => ({ hour: Number(row.hour), ...hourLabel(row.hour, tzOffsetMinutes), figures: summaryFigures(row) }));
}

/**
 * The 24 hours of the day (UTC) as bars of the median hold: [{hour, calls, holdSeconds,
 * share}], `share` the hold over the longest one (0..1), null for an hour without calls or
 * without a hold measured.
 */
export function hourBars(analytics) {
  const byHour = new Map();
  for (const row of (analytics && analytics.by_hour_utc) || []) byHour.set(Number(row.hour), row);
  const holds = [...byHour.values()].map((row) => Number(row.hold_median_seconds)).filter((s) => Number.isFinite(s) && s >= 0);
  const longest = Math.max(0, ...holds);
  return Array.from({ length: 24 }, (_, hour) => {
    const row = byHour.get(hour);
    const hold = row && row.hold_median_seconds !== null && row.hold_median_seconds !== undefined ? Number(row.hold_median_seconds) : NaN;
    const measured = Number.isFinite(hold) && hold >= 0;
    return {
      hour,
      calls: row ? Number(row.calls) || 0 : 0,
      holdSeconds: measured ? hold : null,
      share: measured ? (longest > 0 ? hold / longest : 0) : null,
    };
  });
}
