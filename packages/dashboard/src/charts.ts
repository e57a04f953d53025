import { h, svg } from './dom.js';
import { number } from './format.js';

interface Series {
  label: string;
  values: readonly (number | null)[];
}

const WIDTH = 600;
const HEIGHT = 120;
const PAD = 24;

/**
 * A small line chart over time (up to two series) as inline SVG. The picture is decorative for
 * assistive technology: the figure's caption states the latest values in words.
 */
export function lineChart(title: string, unit: string, first: Series, second?: Series): HTMLElement {
  const all = [...first.values, ...(second?.values ?? [])].filter((v): v is number => v !== null);
  const max = Math.max(1, ...all) * 1.1;
  const n = Math.max(first.values.length, 2);
  const x = (i: number): number => PAD + (i * (WIDTH - PAD - 4)) / (n - 1);
  const y = (v: number): number => HEIGHT - PAD + 4 - (v / max) * (HEIGHT - PAD - 4);
  const path = (values: readonly (number | null)[]): string => {
    let d = '';
    values.forEach((v, i) => {
      if (v === null) return;
      d += `${d === '' || values[i - 1] === null ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
    });
    return d.trim();
  };
  const latest = (s: Series): string => {
    const v = [...s.values].reverse().find((value) => value !== null);
    return `${s.label} ${v === undefined || v === null ? 'no data' : `${number(v, 1)} ${unit}`}`;
  };
  const caption = `${title}: ${latest(first)}${second ? `, ${latest(second)}` : ''}`;
  return h(
    'figure',
    { class: 'box chart' },
    h('figcaption', {}, h('h3', {}, title), h('span', { class: 'visually-hidden' }, caption)),
    svg(
      'svg',
      { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, 'aria-hidden': 'true', preserveAspectRatio: 'none' },
      svg('line', { class: 'axis', x1: PAD, y1: HEIGHT - PAD + 4, x2: WIDTH, y2: HEIGHT - PAD + 4 }),
      svg('text', { x: 0, y: 12 }, number(max, 1)),
      svg('text', { x: 0, y: HEIGHT - PAD + 4 }, '0'),
      svg('path', { class: 'line1', d: path(first.values) }),
      second ? svg('path', { class: 'line2', d: path(second.values) }) : null,
    ),
    h(
      'ul',
      { class: 'legend', 'aria-hidden': 'true' },
      h('li', { class: 'k1' }, latest(first)),
      second ? h('li', { class: 'k2' }, latest(second)) : null,
    ),
  );
}
