// The endpoint's attempts over time: one stacked bar per bucket, successes (green) under
// failures (red), drawn as inline SVG from the timeline API's buckets.

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// A round number ≥ n for the top of the axis.
function niceMax(n) {
  if (n <= 4) return Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

function labelFor(date, bucket, withDate) {
  if (bucket === "day") return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (!withDate) return time;
  return `${date.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${time}`;
}

// buckets: [{start, success, fail}], oldest first. bucket: "minute" | "hour" | "day".
export function timelineChart(buckets, bucket) {
  const W = 920;
  const H = 200;
  const m = { left: 44, right: 12, top: 12, bottom: 34 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.success + b.fail)));
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": "Successful and failed attempts over time",
  });
  const y = (v) => m.top + plotH - (v / max) * plotH;

  // Horizontal grid lines and their labels.
  const ticks = max <= 4 ? [...Array(max + 1).keys()] : [0, max / 4, max / 2, (3 * max) / 4, max];
  for (const t of ticks) {
    svg.append(s("line", { x1: m.left, x2: W - m.right, y1: y(t), y2: y(t), class: "grid" }));
    svg.append(s("text", { x: m.left - 6, y: y(t) + 4, class: "axis", "text-anchor": "end" }, String(t)));
  }

  const n = Math.max(1, buckets.length);
  const slot = plotW / n;
  const barW = Math.max(1, slot * 0.72);
  buckets.forEach((b, i) => {
    const x = m.left + i * slot + (slot - barW) / 2;
    const g = s("g", { class: "bar" });
    const start = new Date(b.start);
    g.append(s("title", {}, `${start.toLocaleString()}: ${b.success} succeeded, ${b.fail} failed`));
    // An invisible full-height target so the tooltip shows on empty buckets too.
    g.append(s("rect", { x: m.left + i * slot, y: m.top, width: slot, height: plotH, class: "hit" }));
    if (b.success > 0) {
      g.append(s("rect", { x, y: y(b.success), width: barW, height: y(0) - y(b.success), class: "bar-success" }));
    }
    if (b.fail > 0) {
      const top = b.success + b.fail;
      g.append(s("rect", { x, y: y(top), width: barW, height: y(b.success) - y(top), class: "bar-fail" }));
    }
    svg.append(g);
  });

  // About six time labels along the bottom; the first one and day changes carry the date.
  svg.append(s("line", { x1: m.left, x2: W - m.right, y1: y(0), y2: y(0), class: "baseline" }));
  const every = Math.max(1, Math.ceil(n / 6));
  let lastDay = "";
  for (let i = 0; i < buckets.length; i += every) {
    const d = new Date(buckets[i].start);
    const day = d.toDateString();
    const text = labelFor(d, bucket, day !== lastDay);
    lastDay = day;
    const x = m.left + i * slot + slot / 2;
    svg.append(s("line", { x1: x, x2: x, y1: y(0), y2: y(0) + 4, class: "baseline" }));
    svg.append(s("text", { x, y: H - m.bottom + 18, class: "axis", "text-anchor": "middle" }, text));
  }
  return svg;
}
