/**
 * Small inline-SVG charts for the HTML report: no script, no external resource, readable without
 * colour (every series is also labelled). Each function returns one `<svg>` element as text.
 */

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly values: readonly number[];
}

const FONT = 'font-family="system-ui, sans-serif" font-size="11"';

export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A "nice" axis maximum and tick step for values up to `max`. */
export function niceScale(max: number, ticks = 5): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  return { max: Math.ceil(max / step) * step, step };
}

const fmt = (n: number): string =>
  Math.abs(n) >= 1000
    ? n.toLocaleString("en-GB", { maximumFractionDigits: 0 })
    : String(Math.round(n * 10) / 10);

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

function yAxis(f: Frame, max: number, step: number, label: string, side: "left" | "right" = "left"): string {
  const plotH = f.height - f.top - f.bottom;
  const out: string[] = [];
  for (let v = 0; v <= max + step / 2; v += step) {
    const y = f.top + plotH - (v / max) * plotH;
    const x = side === "left" ? f.left - 6 : f.width - f.right + 6;
    if (side === "left")
      out.push(`<line x1="${f.left}" x2="${f.width - f.right}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`);
    out.push(
      `<text x="${x}" y="${y + 4}" text-anchor="${side === "left" ? "end" : "start"}" ${FONT} fill="#555">${fmt(v)}</text>`,
    );
  }
  const lx = side === "left" ? 12 : f.width - 8;
  out.push(
    `<text transform="translate(${lx},${f.top + plotH / 2}) rotate(-90)" text-anchor="middle" ${FONT} fill="#333">${escapeXml(label)}</text>`,
  );
  return out.join("");
}

function legend(series: ReadonlyArray<{ name: string; color: string }>, x: number, y: number): string {
  let at = x;
  return series
    .map((s) => {
      const item = `<rect x="${at}" y="${y - 9}" width="10" height="10" fill="${s.color}"/><text x="${at + 14}" y="${y}" ${FONT} fill="#333">${escapeXml(s.name)}</text>`;
      at += 24 + s.name.length * 6.5;
      return item;
    })
    .join("");
}

function xLabels(f: Frame, labels: readonly string[], slot: number): string {
  const every = Math.max(1, Math.ceil(labels.length / Math.floor((f.width - f.left - f.right) / 70)));
  return labels
    .map((l, i) =>
      i % every === 0
        ? `<text x="${f.left + slot * (i + 0.5)}" y="${f.height - f.bottom + 16}" text-anchor="middle" ${FONT} fill="#555">${escapeXml(l)}</text>`
        : "",
    )
    .join("");
}

/**
 * Columns per label (stacked or side by side), with an optional line on a second axis (e.g. a
 * cumulative total).
 */
export function columnChart(o: {
  title: string;
  labels: readonly string[];
  series: readonly Series[];
  stacked?: boolean;
  yLabel: string;
  line?: Series & { axisLabel: string };
  width?: number;
  height?: number;
}): string {
  const f: Frame = {
    width: o.width ?? 900,
    height: o.height ?? 320,
    left: 60,
    right: o.line ? 70 : 20,
    top: 40,
    bottom: 40,
  };
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const n = Math.max(1, o.labels.length);
  const slot = plotW / n;
  const totals = o.labels.map((_, i) =>
    o.stacked
      ? o.series.reduce((s, x) => s + (x.values[i] ?? 0), 0)
      : Math.max(0, ...o.series.map((x) => x.values[i] ?? 0)),
  );
  const { max, step } = niceScale(Math.max(0, ...totals));
  const parts: string[] = [yAxis(f, max, step, o.yLabel)];
  const barW = o.stacked ? slot * 0.7 : (slot * 0.8) / Math.max(1, o.series.length);
  o.labels.forEach((label, i) => {
    let base = 0;
    o.series.forEach((s, k) => {
      const v = s.values[i] ?? 0;
      const h = (v / max) * plotH;
      const x = o.stacked ? f.left + slot * i + (slot - barW) / 2 : f.left + slot * i + slot * 0.1 + k * barW;
      const y = f.top + plotH - (o.stacked ? base + h : h);
      if (v > 0) {
        parts.push(
          `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${escapeXml(`${label} ${s.name}: ${fmt(v)}`)}</title></rect>`,
        );
      }
      if (o.stacked) base += h;
    });
  });
  if (o.line) {
    const ls = niceScale(Math.max(0, ...o.line.values));
    parts.push(yAxis(f, ls.max, ls.step, o.line.axisLabel, "right"));
    const pts = o.line.values.map(
      (v, i) =>
        `${(f.left + slot * (i + 0.5)).toFixed(1)},${(f.top + plotH - (v / ls.max) * plotH).toFixed(1)}`,
    );
    parts.push(
      `<polyline points="${pts.join(" ")}" fill="none" stroke="${o.line.color}" stroke-width="2.5"/>`,
    );
  }
  parts.push(
    `<line x1="${f.left}" x2="${f.width - f.right}" y1="${f.top + plotH}" y2="${f.top + plotH}" stroke="#888"/>`,
  );
  parts.push(xLabels(f, o.labels, slot));
  parts.push(legend([...o.series, ...(o.line ? [o.line] : [])], f.left, 24));
  return svg(f, o.title, parts);
}

/** Horizontal bars, one per label, largest first. */
export function barChart(o: {
  title: string;
  labels: readonly string[];
  values: readonly number[];
  color: string;
  unit: string;
  width?: number;
}): string {
  const rowH = 24;
  const labelW = Math.min(300, 20 + Math.max(40, ...o.labels.map((l) => l.length * 6.6)));
  const f: Frame = {
    width: o.width ?? 900,
    height: 50 + Math.max(1, o.labels.length) * rowH + 30,
    left: labelW,
    right: 60,
    top: 40,
    bottom: 30,
  };
  const plotW = f.width - f.left - f.right;
  const { max } = niceScale(Math.max(0, ...o.values));
  const parts: string[] = [];
  o.labels.forEach((l, i) => {
    const v = o.values[i] ?? 0;
    const y = f.top + i * rowH;
    const w = (v / max) * plotW;
    parts.push(
      `<text x="${f.left - 8}" y="${y + 15}" text-anchor="end" ${FONT} fill="#333">${escapeXml(l)}</text>`,
    );
    parts.push(
      `<rect x="${f.left}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${o.color}"><title>${escapeXml(`${l}: ${fmt(v)} ${o.unit}`)}</title></rect>`,
    );
    parts.push(`<text x="${(f.left + w + 6).toFixed(1)}" y="${y + 15}" ${FONT} fill="#333">${fmt(v)}</text>`);
  });
  if (o.labels.length === 0)
    parts.push(`<text x="${f.left}" y="${f.top + 16}" ${FONT} fill="#777">none in this period</text>`);
  parts.push(
    `<line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.top + Math.max(1, o.labels.length) * rowH}" stroke="#888"/>`,
  );
  return svg(f, o.title, parts);
}

/**
 * A histogram of counts per one-second bucket, one series per group, with vertical markers (the Target
 * Response Times).
 */
export function histogram(o: {
  title: string;
  buckets: readonly number[];
  series: readonly Series[];
  markers: ReadonlyArray<{ at: number; label: string; color: string }>;
  xLabel: string;
  width?: number;
  height?: number;
}): string {
  const f: Frame = {
    width: o.width ?? 900,
    height: o.height ?? 320,
    left: 60,
    right: 20,
    top: 40,
    bottom: 44,
  };
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const last = Math.max(1, ...o.buckets, ...o.markers.map((m) => m.at)) + 1;
  const slot = plotW / last;
  const { max, step } = niceScale(Math.max(0, ...o.series.flatMap((s) => [...s.values])));
  const parts: string[] = [yAxis(f, max, step, "responses")];
  o.series.forEach((s) => {
    const pts = [`${f.left},${f.top + plotH}`];
    o.buckets.forEach((b, i) => {
      const y = f.top + plotH - ((s.values[i] ?? 0) / max) * plotH;
      pts.push(
        `${(f.left + b * slot).toFixed(1)},${y.toFixed(1)}`,
        `${(f.left + (b + 1) * slot).toFixed(1)},${y.toFixed(1)}`,
      );
    });
    pts.push(`${(f.left + last * slot).toFixed(1)},${f.top + plotH}`);
    parts.push(
      `<polygon points="${pts.join(" ")}" fill="${s.color}" fill-opacity="0.45" stroke="${s.color}" stroke-width="1.5"/>`,
    );
  });
  for (const m of o.markers) {
    const x = (f.left + m.at * slot).toFixed(1);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${f.top}" y2="${f.top + plotH}" stroke="${m.color}" stroke-width="2" stroke-dasharray="6 4"/>`,
    );
    parts.push(
      `<text x="${Number(x) + 4}" y="${f.top + 12}" ${FONT} fill="${m.color}">${escapeXml(m.label)}</text>`,
    );
  }
  for (let s = 0; s <= last; s += 5) {
    parts.push(
      `<text x="${(f.left + s * slot).toFixed(1)}" y="${f.height - f.bottom + 16}" text-anchor="middle" ${FONT} fill="#555">${s}</text>`,
    );
  }
  parts.push(
    `<text x="${f.left + plotW / 2}" y="${f.height - 6}" text-anchor="middle" ${FONT} fill="#333">${escapeXml(o.xLabel)}</text>`,
  );
  parts.push(
    `<line x1="${f.left}" x2="${f.width - f.right}" y1="${f.top + plotH}" y2="${f.top + plotH}" stroke="#888"/>`,
  );
  parts.push(legend(o.series, f.left, 24));
  return svg(f, o.title, parts);
}

/** Lines over labels (e.g. per cent within target per day), y from 0 to yMax. */
export function lineChart(o: {
  title: string;
  labels: readonly string[];
  series: readonly Series[];
  yLabel: string;
  yMax?: number;
  width?: number;
  height?: number;
}): string {
  const f: Frame = {
    width: o.width ?? 900,
    height: o.height ?? 280,
    left: 60,
    right: 20,
    top: 40,
    bottom: 40,
  };
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const slot = plotW / Math.max(1, o.labels.length);
  const scale =
    o.yMax !== undefined
      ? { max: o.yMax, step: o.yMax / 5 }
      : niceScale(Math.max(0, ...o.series.flatMap((s) => [...s.values])));
  const parts: string[] = [yAxis(f, scale.max, scale.step, o.yLabel)];
  for (const s of o.series) {
    const pts = s.values.map(
      (v, i) =>
        `${(f.left + slot * (i + 0.5)).toFixed(1)},${(f.top + plotH - (v / scale.max) * plotH).toFixed(1)}`,
    );
    parts.push(`<polyline points="${pts.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2.5"/>`);
    s.values.forEach((v, i) =>
      parts.push(
        `<circle cx="${(f.left + slot * (i + 0.5)).toFixed(1)}" cy="${(f.top + plotH - (v / scale.max) * plotH).toFixed(1)}" r="3" fill="${s.color}"><title>${escapeXml(`${o.labels[i] ?? ""} ${s.name}: ${fmt(v)}`)}</title></circle>`,
      ),
    );
  }
  parts.push(
    `<line x1="${f.left}" x2="${f.width - f.right}" y1="${f.top + plotH}" y2="${f.top + plotH}" stroke="#888"/>`,
  );
  parts.push(xLabels(f, o.labels, slot));
  parts.push(legend(o.series, f.left, 24));
  return svg(f, o.title, parts);
}

function svg(f: Frame, title: string, parts: readonly string[]): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeXml(title)}" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}">` +
    `<rect width="100%" height="100%" fill="#fff"/>${parts.join("")}</svg>`
  );
}
