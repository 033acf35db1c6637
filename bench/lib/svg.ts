// Hand-written SVG charts (no charting dependency): horizontal bars and line series on a log scale.

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS = ['#2b6cb0', '#c05621', '#2f855a', '#6b46c1', '#b7791f', '#718096'];
const FONT = 'font-family="system-ui, sans-serif" font-size="12"';

export interface Bar {
  label: string;
  value: number;
  note?: string;
}

/** Horizontal bars, one per item, value labels at the bar ends; linear scale from 0. */
export function barChart(title: string, unit: string, bars: Bar[], subtitle = ''): string {
  const width = 760;
  const left = 210;
  const right = 190;
  const rowH = 28;
  const top = subtitle ? 56 : 40;
  const height = top + bars.length * rowH + 20;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const scale = (v: number) => ((width - left - right) * v) / max;
  const rows = bars
    .map((b, i) => {
      const y = top + i * rowH;
      const w = Math.max(1, scale(b.value));
      const shown = b.value >= 100 ? Math.round(b.value).toLocaleString('en-US') : b.value.toFixed(1);
      const value = `${shown} ${unit}${b.note ? ` ${b.note}` : ''}`;
      return (
        `<text x="${left - 8}" y="${y + 17}" text-anchor="end" ${FONT}>${esc(b.label)}</text>` +
        `<rect x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${COLORS[i % COLORS.length]}"/>` +
        `<text x="${(left + w + 6).toFixed(1)}" y="${y + 17}" ${FONT}>${esc(value)}</text>`
      );
    })
    .join('\n');
  return svg(width, height, title, subtitle, rows);
}

export interface Series {
  label: string;
  points: { x: string; y: number }[];
}

/** Line series over categorical x (e.g. percentiles) with a log-scaled y axis (e.g. milliseconds). */
export function logLineChart(
  title: string,
  yUnit: string,
  series: Series[],
  subtitle = '',
  marks: { y: number; label: string }[] = [],
): string {
  const width = 760;
  const height = 380;
  const left = 64;
  const right = 150;
  const top = subtitle ? 56 : 40;
  const bottom = 40;
  const xs = series[0]?.points.map((p) => p.x) ?? [];
  const values = [...series.flatMap((s) => s.points.map((p) => p.y)), ...marks.map((m) => m.y)].filter(
    (v) => v > 0 && Number.isFinite(v),
  );
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (i: number) => left + (xs.length <= 1 ? plotW / 2 : (plotW * i) / (xs.length - 1));
  const y = (v: number) =>
    top +
    plotH -
    (plotH * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const parts: string[] = [];
  for (let d = lo; d <= hi; d *= 10) {
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(d).toFixed(1)}" y2="${y(d).toFixed(1)}" stroke="#e2e8f0"/>`,
    );
    parts.push(
      `<text x="${left - 6}" y="${(y(d) + 4).toFixed(1)}" text-anchor="end" ${FONT}>${d} ${esc(yUnit)}</text>`,
    );
  }
  xs.forEach((label, i) =>
    parts.push(
      `<text x="${x(i).toFixed(1)}" y="${height - bottom + 18}" text-anchor="middle" ${FONT}>${esc(label)}</text>`,
    ),
  );
  for (const m of marks) {
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(m.y).toFixed(1)}" y2="${y(m.y).toFixed(1)}" stroke="#e53e3e" stroke-dasharray="4 4"/>`,
    );
    parts.push(
      `<text x="${width - right + 6}" y="${(y(m.y) + 4).toFixed(1)}" fill="#e53e3e" ${FONT}>${esc(m.label)}</text>`,
    );
  }
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length] as string;
    const path = s.points
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(p.y).toFixed(1)}`)
      .join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    s.points.forEach((p, i) =>
      parts.push(
        `<circle cx="${x(i).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${s.label} ${p.x}: ${p.y} ${yUnit}`)}</title></circle>`,
      ),
    );
    parts.push(`<rect x="${width - right + 6}" y="${top + k * 20}" width="12" height="12" fill="${color}"/>`);
    parts.push(`<text x="${width - right + 24}" y="${top + k * 20 + 10}" ${FONT}>${esc(s.label)}</text>`);
  });
  return svg(width, height, title, subtitle, parts.join('\n'));
}

function svg(width: number, height: number, title: string, subtitle: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="12" y="22" font-family="system-ui, sans-serif" font-size="15" font-weight="bold">${esc(title)}</text>
${subtitle ? `<text x="12" y="40" ${FONT} fill="#4a5568">${esc(subtitle)}</text>` : ''}
${body}
</svg>
`;
}
