/**
 * Tensors as people read them: short numbers, shapes, and pictures by rank —
 * a number, a strip, a heatmap on a diverging scale centred at 0, a grid of
 * feature maps, or statistics when the server sent no values.
 */
import type { Nested, Num, TensorView } from "./wire";

/** A wire number as a JS number: "nan", "inf", "-inf" become NaN and ±Infinity. */
export function toNumber(v: Num | null | undefined): number {
  if (typeof v === "number") return v;
  if (v === "inf") return Infinity;
  if (v === "-inf") return -Infinity;
  return NaN;
}

/** Four significant digits, no trailing zeros, exponent only when needed. */
export function fmtNum(v: Num | null | undefined): string {
  if (v === null || v === undefined) return "—";
  const x = toNumber(v);
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) {
    const [m, e] = x.toExponential(3).split("e");
    return `${String(parseFloat(m))}e${e.replace("+", "")}`;
  }
  return String(parseFloat(x.toPrecision(4)));
}

/** What every view says of a node whose output the program never saw (the transpose
 * `F.linear` makes inside itself): one wording for the inspector, the card and the table. */
export const UNSEEN_VALUE = "not seen by the program (made inside a library call)";

export function shapeOf(view: TensorView | null | undefined): string {
  if (!view) return "";
  return view.shape.length === 0 ? "scalar" : `[${view.shape.join(", ")}]`;
}

/** Row-major flat values (as numbers), or null when the server sent only stats. */
export function flat(view: TensorView | null | undefined): number[] | null {
  if (!view || view.values === null || view.values === undefined) return null;
  const out: number[] = [];
  const walk = (v: Nested): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else out.push(toNumber(v));
  };
  walk(view.values);
  return out;
}

/** Compact text: `6`, `[6, 6, 6]`, `[[1, 2], [3, 4]]`, `… 1024 values` past the limit. */
export function fmtTensor(view: TensorView | null | undefined, limit = 12): string {
  if (!view) return "—";
  if (view.values === null || view.values === undefined) {
    const s = view.stats;
    if (!s) return `${shapeOf(view)} ${view.dtype}`;
    const bad = s.nan || s.inf ? ` (${s.nan} nan, ${s.inf} inf)` : "";
    return `mean ${fmtNum(s.mean)} std ${fmtNum(s.std)} in [${fmtNum(s.min)}, ${fmtNum(s.max)}]${bad}`;
  }
  let count = 0;
  const text = (v: Nested): string => {
    if (!Array.isArray(v)) {
      count++;
      return count > limit ? "" : fmtNum(v);
    }
    const parts: string[] = [];
    for (const x of v) {
      if (count >= limit) {
        parts.push("…");
        break;
      }
      parts.push(text(x));
    }
    return `[${parts.join(", ")}]`;
  };
  return text(view.values);
}

/** What a graph node shows of a tensor (micrograd's draw_dot shows data and grad): the
 * number, or up to four values, or else its shape. */
export function nodeText(view: TensorView | null | undefined): string {
  if (!view) return "";
  if (view.values !== null && view.values !== undefined && view.numel <= 4
      && view.shape.length <= 1) {
    const text = fmtTensor(view, 4);
    if (text.length <= 22) return text;
  }
  return view.shape.length === 0 ? "scalar" : view.shape.join("×");
}

/** Diverging colour: blue below 0, white at 0, red above; grey for non-finite. */
export function diverging(v: number, maxAbs: number): string {
  const [r, g, b] = divergingRGB(v, maxAbs);
  return `rgb(${r}, ${g}, ${b})`;
}

/** The same colour as channels, for images written pixel by pixel. */
export function divergingRGB(v: number, maxAbs: number): [number, number, number] {
  if (!Number.isFinite(v)) return [160, 60, 200];
  const t = maxAbs > 0 ? Math.max(-1, Math.min(1, v / maxAbs)) : 0;
  const mix = (a: number, b: number): number => Math.round(a + (b - a) * Math.abs(t));
  return t >= 0 ? [mix(247, 202), mix(247, 40), mix(247, 40)] : [mix(247, 33), mix(247, 102), mix(247, 172)];
}

export function maxAbsOf(values: number[]): number {
  let m = 0;
  for (const v of values) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

/** How a tensor should be drawn, decided from its rank and whether values came. */
export function pictureKind(view: TensorView): "number" | "strip" | "heatmap" | "maps" | "stats" {
  if (view.values === null || view.values === undefined) return "stats";
  const rank = view.shape.length;
  if (rank === 0 || view.numel === 1) return "number";
  if (rank === 1) return "strip";
  if (rank === 2) return "heatmap";
  return "maps";
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function cell(v: number, scale: number, showText: boolean): HTMLElement {
  const c = el("span", "cell", showText ? fmtNum(v) : "");
  c.style.background = diverging(v, scale);
  c.title = fmtNum(v);
  return c;
}

/** A picture of a tensor for the chain-rule card and the inspector. */
export function renderTensor(view: TensorView | null | undefined, scale?: number): HTMLElement {
  const box = el("div", "tensor");
  if (!view) {
    box.append(el("span", "pending", "not computed yet"));
    return box;
  }
  const values = flat(view);
  const m = scale ?? maxAbsOf(values ?? []);
  const kind = pictureKind(view);
  box.dataset.kind = kind;
  box.setAttribute("aria-label", `${shapeOf(view)}: ${fmtTensor(view, 64)}`);
  if (kind === "number") {
    box.append(el("span", "number", fmtNum(values![0])));
  } else if (kind === "strip") {
    const strip = el("div", "strip");
    values!.forEach((v) => strip.append(cell(v, m, values!.length <= 16)));
    box.append(strip);
  } else if (kind === "heatmap") {
    const [rows, cols] = view.shape;
    const grid = el("div", "heatmap");
    grid.style.gridTemplateColumns = `repeat(${cols}, auto)`;
    values!.forEach((v) => grid.append(cell(v, m, rows * cols <= 36)));
    box.append(grid);
  } else if (kind === "maps") {
    box.append(featureMaps(view, values!, m));
  } else {
    box.append(statsBlock(view));
  }
  return box;
}

/** Feature maps: the last two dimensions are an image, the ones before index the grid. */
function featureMaps(view: TensorView, values: number[], m: number): HTMLElement {
  const h = view.shape[view.shape.length - 2];
  const w = view.shape[view.shape.length - 1];
  const count = values.length / (h * w);
  const grid = el("div", "maps");
  const px = Math.max(4, Math.min(16, Math.floor(64 / Math.max(h, w))));
  for (let k = 0; k < count; k++) {
    const canvas = el("canvas", "map");
    canvas.width = w;
    canvas.height = h;
    canvas.style.width = `${w * px}px`;
    canvas.style.height = `${h * px}px`;
    const ctx = canvas.getContext("2d");
    if (ctx) {
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          ctx.fillStyle = diverging(values[k * h * w + i * w + j], m);
          ctx.fillRect(j, i, 1, 1);
        }
      }
    }
    canvas.title = `map ${k}`;
    grid.append(canvas);
  }
  return grid;
}

function statsBlock(view: TensorView): HTMLElement {
  const s = view.stats;
  const dl = el("dl", "stats");
  const add = (k: string, v: string): void => {
    dl.append(el("dt", undefined, k), el("dd", undefined, v));
  };
  add("shape", shapeOf(view));
  if (s) {
    add("min", fmtNum(s.min));
    add("max", fmtNum(s.max));
    add("mean", fmtNum(s.mean));
    add("std", fmtNum(s.std));
    add("norm", fmtNum(s.norm));
    if (s.nan || s.inf) add("non-finite", `${s.nan} nan, ${s.inf} inf`);
  }
  const wrap = el("div", "stats-wrap");
  if (s?.hist && s.hist.length) wrap.append(histogram(s.hist, toNumber(s.min), toNumber(s.max)));
  else if (s && s.min !== null && s.max !== null) wrap.append(rangeBar(s.min, s.mean, s.max));
  wrap.append(dl);
  return wrap;
}

/** Bars over equal bins from lo to hi; the bin holding 0 is marked. */
export function histogram(counts: number[], lo: number, hi: number): HTMLElement {
  const box = el("div", "hist");
  const peak = Math.max(...counts, 1);
  const zeroBin = hi > lo && lo <= 0 && hi >= 0 ? Math.min(counts.length - 1, Math.floor(((0 - lo) / (hi - lo)) * counts.length)) : -1;
  counts.forEach((c, i) => {
    const bar = el("span", i === zeroBin ? "bar zero" : "bar");
    bar.style.height = `${Math.max(c > 0 ? 2 : 0, (c / peak) * 100)}%`;
    const a = lo + ((hi - lo) * i) / counts.length;
    const b = lo + ((hi - lo) * (i + 1)) / counts.length;
    bar.title = `[${fmtNum(a)}, ${fmtNum(b)}): ${c}`;
    box.append(bar);
  });
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", `histogram from ${fmtNum(lo)} to ${fmtNum(hi)}`);
  return box;
}

/** min, mean and max on a bar that places 0, so a sign at a glance. */
function rangeBar(lo: Num, mean: Num | null, hi: Num): HTMLElement {
  const a = toNumber(lo);
  const b = toNumber(hi);
  const bar = el("div", "range");
  const left = Math.min(a, 0);
  const right = Math.max(b, 0);
  const span = right - left || 1;
  const mark = (v: number, cls: string, title: string): void => {
    const m = el("span", cls);
    m.style.left = `${((v - left) / span) * 100}%`;
    m.title = title;
    bar.append(m);
  };
  const fill = el("span", "range-fill");
  fill.style.left = `${((a - left) / span) * 100}%`;
  fill.style.width = `${((b - a) / span) * 100}%`;
  bar.append(fill);
  mark(0, "range-zero", "0");
  if (mean !== null) mark(toNumber(mean), "range-mean", `mean ${fmtNum(mean)}`);
  return bar;
}
