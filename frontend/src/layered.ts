/**
 * A plain layered (Sugiyama-style) layout for graphs too large for ELK to lay out
 * in time: longest-path layers, sources pulled next to their first consumer, two
 * barycenter sweeps, layers stacked left to right. Linear in nodes and edges per
 * sweep; 10,000 items take well under a second.
 */

export interface LayoutItem {
  id: string;
  w: number;
  h: number;
  parent: string | null;
}

export interface LayoutEdge {
  from: string;
  to: string;
}

export interface LayoutBox {
  id: string;
  parent: string | null;
  label: string;
}

export interface LayoutResult {
  /** Top-left corner of each item. */
  pos: Record<string, [number, number]>;
  /** Expanded group boxes: x, y, w, h. */
  boxes: Record<string, [number, number, number, number]>;
  engine: "elk" | "layered";
  ms: number;
}

export const LAYER_GAP = 48;
export const NODE_GAP = 14;
export const BOX_PAD = 12;
export const BOX_HEAD = 22;

export function layered(items: LayoutItem[], edges: LayoutEdge[], boxes: LayoutBox[]): LayoutResult {
  const t0 = performance.now();
  const n = items.length;
  const index = new Map(items.map((it, i) => [it.id, i]));
  const succ: number[][] = items.map(() => []);
  const pred: number[][] = items.map(() => []);
  for (const e of edges) {
    const a = index.get(e.from);
    const b = index.get(e.to);
    if (a === undefined || b === undefined || a === b) continue;
    succ[a].push(b);
    pred[b].push(a);
  }

  // Longest-path layering in topological order (Kahn); nodes left on a cycle go last.
  const layer = new Int32Array(n);
  const indeg = Int32Array.from(pred, (p) => p.length);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) queue.push(i);
  const order: number[] = [];
  for (let q = 0; q < queue.length; q++) {
    const u = queue[q];
    order.push(u);
    for (const v of succ[u]) {
      if (layer[v] < layer[u] + 1) layer[v] = layer[u] + 1;
      if (--indeg[v] === 0) queue.push(v);
    }
  }
  if (order.length < n) {
    const placed = new Set(order);
    let top = order.reduce((m, u) => Math.max(m, layer[u]), 0);
    for (let i = 0; i < n; i++) if (!placed.has(i)) layer[i] = ++top;
  }
  // A source sits one layer before its first consumer, not at the far left.
  for (let i = 0; i < n; i++) {
    if (pred[i].length === 0 && succ[i].length > 0) {
      let m = Infinity;
      for (const v of succ[i]) m = Math.min(m, layer[v]);
      layer[i] = Math.max(0, m - 1);
    }
  }

  let layers = 0;
  for (let i = 0; i < n; i++) layers = Math.max(layers, layer[i] + 1);
  const rows: number[][] = Array.from({ length: layers }, () => []);
  for (let i = 0; i < n; i++) rows[layer[i]].push(i);
  const rank = new Float64Array(n);
  const renumber = (row: number[]): void => row.forEach((v, k) => { rank[v] = k; });
  rows.forEach(renumber);

  const key = new Float64Array(n);
  const sweep = (range: number[], neighbours: number[][]): void => {
    for (const l of range) {
      const row = rows[l];
      for (const v of row) {
        const nb = neighbours[v];
        if (nb.length === 0) { key[v] = rank[v]; continue; }
        let s = 0;
        for (const u of nb) s += rank[u];
        key[v] = s / nb.length;
      }
      row.sort((a, b) => key[a] - key[b] || a - b);
      renumber(row);
    }
  };
  const down = rows.map((_, l) => l).slice(1);
  const up = rows.map((_, l) => l).reverse().slice(1);
  sweep(down, pred);
  sweep(up, succ);
  sweep(down, pred);

  const pos: Record<string, [number, number]> = {};
  let x = 0;
  for (const row of rows) {
    let width = 0;
    let height = -NODE_GAP;
    for (const v of row) {
      width = Math.max(width, items[v].w);
      height += items[v].h + NODE_GAP;
    }
    let y = -height / 2;
    for (const v of row) {
      pos[items[v].id] = [x + (width - items[v].w) / 2, y];
      y += items[v].h + NODE_GAP;
    }
    x += width + LAYER_GAP;
  }
  return { pos, boxes: boxesAround(items, boxes, pos), engine: "layered", ms: performance.now() - t0 };
}

/** Group boxes drawn around their members, innermost first so parents enclose children. */
export function boxesAround(
  items: LayoutItem[],
  boxes: LayoutBox[],
  pos: Record<string, [number, number]>,
): Record<string, [number, number, number, number]> {
  const bounds = new Map<string, [number, number, number, number]>();
  const grow = (id: string, x0: number, y0: number, x1: number, y1: number): void => {
    const b = bounds.get(id);
    bounds.set(id, b ? [Math.min(b[0], x0), Math.min(b[1], y0), Math.max(b[2], x1), Math.max(b[3], y1)]
      : [x0, y0, x1, y1]);
  };
  const parentOf = new Map(boxes.map((b) => [b.id, b.parent]));
  for (const it of items) {
    const p = pos[it.id];
    if (!p) continue;
    for (let g = it.parent; g; g = parentOf.get(g) ?? null) grow(g, p[0], p[1], p[0] + it.w, p[1] + it.h);
  }
  const depth = (id: string): number => {
    let d = 0;
    for (let g = parentOf.get(id) ?? null; g; g = parentOf.get(g) ?? null) d++;
    return d;
  };
  const out: Record<string, [number, number, number, number]> = {};
  for (const b of [...boxes].sort((a, c) => depth(c.id) - depth(a.id))) {
    const r = bounds.get(b.id);
    if (!r) continue;
    const pad = BOX_PAD;
    const x0 = r[0] - pad;
    const y0 = r[1] - pad - BOX_HEAD;
    const x1 = r[2] + pad;
    const y1 = r[3] + pad;
    out[b.id] = [x0, y0, x1 - x0, y1 - y0];
    const parent = parentOf.get(b.id);
    if (parent) grow(parent, x0, y0, x1, y1);
  }
  return out;
}
