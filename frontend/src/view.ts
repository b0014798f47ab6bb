/**
 * The graph on a canvas: only what is on screen is drawn, text only when it is
 * legible, so 10,000 nodes pan at frame rate. Pan with drag, wheel or Shift+arrows;
 * zoom with Ctrl+wheel, pinch, + and -; 0 fits the graph to the screen.
 */
import type { DisplayGraph, Edge, Item } from "./graph";
import type { LayoutResult } from "./layered";
import { SvgContext, SvgPath } from "./svg";

export type Status = "done" | "active" | "ahead" | "out" | "none";

export interface ViewHooks {
  statusOf(node: string): Status;
  /** What a diagnostic says of a node (drawn red with a "!"), or null. */
  flagOf(node: string): string | null;
  /** The node's gradient once the step shown has computed it (drawn under it), or null. */
  gradOf(node: string): string | null;
  /** The gradient the step shown sends back along the edge from ``src`` into ``dst``
   * (the active node), written on the edge; null on every other edge. */
  edgeGrad(src: string, dst: string): string | null;
  active(): string | null;
  selected(): string | null;
  onSelect(item: Item): void;
  /** The pointer rests on a node: what a click would need can be fetched now. */
  onHover(node: string): void;
  onToggleGroup(group: string): void;
  onPaint(drawn: number): void;
}

interface Palette {
  bg: string; text: string; muted: string; edge: string; accent: string; down: string; warn: string;
  op: string; leaf: string; param: string; output: string; const: string; group: string; cut: string;
  stroke: string; box: string;
}

/** An initial view never starts below this zoom; labels are drawn down to LABELS_FROM. */
const MIN_READABLE = 0.8;
const LABELS_FROM = 0.45;
/** Graphs up to this many items keep what each node's paint wrote (drawnText). */
const TEXT_KEPT = 400;
const FONT = "12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
const SMALL = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

function palette(): Palette {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string): string => css.getPropertyValue(name).trim() || "#888";
  return {
    bg: v("--graph-bg"), text: v("--fg"), muted: v("--muted"), edge: v("--edge"), accent: v("--accent"),
    down: v("--down"), op: v("--node-op"), leaf: v("--node-leaf"), param: v("--node-param"),
    output: v("--node-output"), const: v("--node-const"), group: v("--node-group"), cut: v("--node-const"),
    stroke: v("--node-stroke"), box: v("--box"), warn: v("--warn"),
  };
}

export class GraphView {
  private ctx: CanvasRenderingContext2D;
  private graph: DisplayGraph | null = null;
  private pos: Record<string, [number, number]> = {};
  private boxes: Record<string, [number, number, number, number]> = {};
  private itemById = new Map<string, Item>();
  /** Per item x, y, w, h and per edge x0, y0, x1, y1: a frame loops over flat arrays. */
  private rects = new Float64Array(0);
  private segs = new Float64Array(0);
  private k = 1;
  private tx = 0;
  private ty = 0;
  private frame = 0;
  private colors: Palette;
  private drag: { x: number; y: number; moved: boolean } | null = null;
  readonly tooltip: HTMLDivElement;

  constructor(readonly canvas: HTMLCanvasElement, private hooks: ViewHooks) {
    this.ctx = canvas.getContext("2d")!;
    this.colors = palette();
    this.tooltip = document.createElement("div");
    this.tooltip.className = "graph-tooltip";
    this.tooltip.hidden = true;
    canvas.parentElement!.appendChild(this.tooltip);
    new ResizeObserver(() => this.invalidate()).observe(canvas);
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      this.colors = palette();
      this.invalidate();
    });
    this.bindInput();
  }

  get hasGraph(): boolean {
    return this.graph !== null && this.graph.items.length > 0;
  }

  /**
   * Shows a new graph with its layout; keeps the camera unless asked to fit. A graph
   * too long to fit legibly is shown at a readable zoom around `focus` instead (the
   * node backward starts from), and the Fit button still shows it whole.
   */
  show(graph: DisplayGraph, layout: LayoutResult, fit: boolean, focus: string | null = null): void {
    this.graph = graph;
    this.pos = layout.pos;
    this.boxes = layout.boxes;
    this.itemById = new Map(graph.items.map((it) => [it.id, it]));
    this.rects = new Float64Array(graph.items.length * 4).fill(NaN);
    graph.items.forEach((it, i) => {
      const p = this.pos[it.id];
      if (p) this.rects.set([p[0], p[1], it.w, it.h], i * 4);
    });
    this.segs = new Float64Array(graph.edges.length * 4).fill(NaN);
    graph.edges.forEach((e, i) => {
      const p = this.edgePath(e);
      if (p) this.segs.set(p, i * 4);
    });
    if (fit) {
      this.fit();
      if (this.k < MIN_READABLE) this.centreOn(focus, MIN_READABLE);
    }
    this.invalidate();
  }

  get zoomLevel(): number {
    return this.k;
  }

  /** Centres an item (or, without one, the right end where the loss is) at zoom k. */
  centreOn(itemId: string | null, k: number): void {
    const { width, height } = this.canvas.getBoundingClientRect();
    const it = itemId ? this.itemById.get(itemId) : undefined;
    const p = itemId ? this.pos[itemId] : undefined;
    const b = this.bounds();
    if (!b) return;
    const [cx, cy] = it && p ? [p[0] + it.w / 2, p[1] + it.h / 2] : [b[2] - width / (2 * k), (b[1] + b[3]) / 2];
    this.k = k;
    this.tx = width / 2 - cx * k;
    this.ty = height / 2 - cy * k;
    this.invalidate();
  }

  clear(): void {
    this.graph = null;
    this.pos = {};
    this.boxes = {};
    this.itemById.clear();
    this.rects = new Float64Array(0);
    this.segs = new Float64Array(0);
    this.invalidate();
  }

  invalidate(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /** Draws now (the benchmark and tests time this). */
  drawNow(): number {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    return this.draw();
  }

  private bounds(): [number, number, number, number] | null {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const it of this.graph?.items ?? []) {
      const p = this.pos[it.id];
      if (!p) continue;
      x0 = Math.min(x0, p[0]); y0 = Math.min(y0, p[1]);
      x1 = Math.max(x1, p[0] + it.w); y1 = Math.max(y1, p[1] + it.h);
    }
    for (const b of Object.values(this.boxes)) {
      x0 = Math.min(x0, b[0]); y0 = Math.min(y0, b[1]);
      x1 = Math.max(x1, b[0] + b[2]); y1 = Math.max(y1, b[1] + b[3]);
    }
    return x0 === Infinity ? null : [x0, y0, x1, y1];
  }

  fit(): void {
    const b = this.bounds();
    const { width, height } = this.canvas.getBoundingClientRect();
    if (!b || width === 0) return;
    const pad = 24;
    this.k = Math.min(1.6, (width - 2 * pad) / Math.max(1, b[2] - b[0]), (height - 2 * pad) / Math.max(1, b[3] - b[1]));
    this.k = Math.max(this.k, 0.02);
    this.tx = (width - (b[2] - b[0]) * this.k) / 2 - b[0] * this.k;
    this.ty = (height - (b[3] - b[1]) * this.k) / 2 - b[1] * this.k;
    this.invalidate();
  }

  /** Centres an item or a group's box, zoomed to fit it, but never so far out that its
   * labels are not drawn (a call opened among 500 is shown to be read). */
  focusOn(id: string): void {
    const it = this.itemById.get(id);
    const r = it && this.pos[id] ? [...this.pos[id], it.w, it.h] : this.boxes[id];
    const { width, height } = this.canvas.getBoundingClientRect();
    if (!r || width === 0) return;
    const pad = 24;
    this.k = Math.max(LABELS_FROM, Math.min(1.6, (width - 2 * pad) / r[2], (height - 2 * pad) / r[3]));
    this.tx = width / 2 - (r[0] + r[2] / 2) * this.k;
    this.ty = height / 2 - (r[1] + r[3] / 2) * this.k;
    this.invalidate();
  }

  zoom(factor: number, cx?: number, cy?: number): void {
    const { width, height } = this.canvas.getBoundingClientRect();
    const x = cx ?? width / 2;
    const y = cy ?? height / 2;
    const k = Math.min(4, Math.max(0.01, this.k * factor));
    this.tx = x - ((x - this.tx) * k) / this.k;
    this.ty = y - ((y - this.ty) * k) / this.k;
    this.k = k;
    this.invalidate();
  }

  pan(dx: number, dy: number): void {
    this.tx += dx;
    this.ty += dy;
    this.invalidate();
  }

  /** Brings an item (or an expanded group's box) into view (when stepping reaches a node
   * off screen, or a call is opened). */
  reveal(itemId: string): void {
    const it = this.itemById.get(itemId);
    const rect = it && this.pos[itemId] ? [...this.pos[itemId], it.w, it.h] : this.boxes[itemId];
    if (!rect) return;
    const { width, height } = this.canvas.getBoundingClientRect();
    const sx = rect[0] * this.k + this.tx;
    const sy = rect[1] * this.k + this.ty;
    // Pan only when the node is (partly) off screen, and only as far as it takes: the rest
    // of the graph, the loss included, stays where the reader left it.
    const margin = 8;
    const w = Math.min(rect[2] * this.k, width - 2 * margin), h = Math.min(rect[3] * this.k, height - 2 * margin);
    const dx = sx < margin ? margin - sx : sx + w > width - margin ? width - margin - (sx + w) : 0;
    const dy = sy < margin ? margin - sy : sy + h > height - margin ? height - margin - (sy + h) : 0;
    if (dx !== 0 || dy !== 0) {
      this.tx += dx;
      this.ty += dy;
      this.invalidate();
    }
  }

  /** The item under a point in CSS pixels of the canvas, if any. */
  itemAt(px: number, py: number): Item | null {
    const x = (px - this.tx) / this.k;
    const y = (py - this.ty) / this.k;
    for (const it of this.graph?.items ?? []) {
      const p = this.pos[it.id];
      if (p && x >= p[0] && x <= p[0] + it.w && y >= p[1] && y <= p[1] + it.h) return it;
    }
    return null;
  }

  /** An expanded group whose title bar is under the point. */
  boxHeaderAt(px: number, py: number): string | null {
    const x = (px - this.tx) / this.k;
    const y = (py - this.ty) / this.k;
    for (const [id, b] of Object.entries(this.boxes)) {
      if (x >= b[0] && x <= b[0] + b[2] && y >= b[1] && y <= b[1] + 24) return id;
    }
    return null;
  }

  /** Screen position of an item's centre, for tests and keyboard focus. */
  screenOf(itemId: string): [number, number] | null {
    const it = this.itemById.get(itemId);
    const p = this.pos[itemId] ?? (this.boxes[itemId] ? [this.boxes[itemId][0], this.boxes[itemId][1]] as [number, number] : null);
    if (!p) return null;
    const w = it ? it.w : 40;
    const h = it ? it.h : 24;
    return [p[0] * this.k + this.tx + (w * this.k) / 2, p[1] * this.k + this.ty + (it ? (h * this.k) / 2 : 12 * this.k)];
  }

  private bindInput(): void {
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => {
      this.drag = { x: e.clientX, y: e.clientY, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      const r = c.getBoundingClientRect();
      if (this.drag) {
        const dx = e.clientX - this.drag.x;
        const dy = e.clientY - this.drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) this.drag.moved = true;
        if (this.drag.moved) {
          this.pan(dx, dy);
          this.drag.x = e.clientX;
          this.drag.y = e.clientY;
        }
        return;
      }
      this.hover(e.clientX - r.left, e.clientY - r.top);
    });
    c.addEventListener("pointerup", (e) => {
      const drag = this.drag;
      this.drag = null;
      if (!drag || drag.moved) return;
      const r = c.getBoundingClientRect();
      const x = e.clientX - r.left;
      const y = e.clientY - r.top;
      const it = this.itemAt(x, y);
      if (it?.kind === "group") this.hooks.onToggleGroup(it.id);
      else if (it) this.hooks.onSelect(it);
      else {
        const box = this.boxHeaderAt(x, y);
        if (box) this.hooks.onToggleGroup(box);
      }
    });
    c.addEventListener("pointerleave", () => { this.tooltip.hidden = true; });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      if (e.ctrlKey || e.metaKey || (e.deltaX === 0 && e.deltaMode === 1) || (e.deltaX === 0 && Math.abs(e.deltaY) >= 50)) {
        this.zoom(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.002)), e.clientX - r.left, e.clientY - r.top);
      } else {
        this.pan(-e.deltaX, -e.deltaY);
      }
    }, { passive: false });
    c.addEventListener("keydown", (e) => {
      const step = 60;
      const keys: Record<string, () => void> = {
        "+": () => this.zoom(1.25), "=": () => this.zoom(1.25), "-": () => this.zoom(0.8),
        "0": () => this.fit(), f: () => this.fit(),
      };
      if (e.shiftKey && e.key.startsWith("Arrow")) {
        const d: Record<string, [number, number]> = {
          ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step],
        };
        this.pan(...d[e.key]);
        e.preventDefault();
        e.stopPropagation();
      } else if (keys[e.key] && !e.ctrlKey && !e.metaKey) {
        keys[e.key]();
        e.preventDefault();
      }
    });
  }

  private hover(x: number, y: number): void {
    const it = this.itemAt(x, y);
    if (!it) {
      this.tooltip.hidden = true;
      this.canvas.style.cursor = this.boxHeaderAt(x, y) ? "pointer" : "grab";
      return;
    }
    this.canvas.style.cursor = "pointer";
    if (it.node) this.hooks.onHover(it.node);
    this.tooltip.hidden = false;
    this.tooltip.textContent = this.describe(it);
    this.tooltip.style.left = `${x + 14}px`;
    this.tooltip.style.top = `${y + 14}px`;
  }

  /** Hover text: what the item is, including its grad_fn, set by the page. */
  describe: (it: Item) => string = (it) => it.label;
  /** The flagged nodes the last paint drew (what a test can read of the red marks). */
  flaggedDrawn = new Set<string>();
  /** What the last paint wrote on each node: label, value, gradient (graphs up to
   * TEXT_KEPT items; what a test reads of the canvas). */
  drawnText = new Map<string, string[]>();
  /** What the last paint wrote on edges: "src->dst" to the gradient flowing back along it. */
  drawnEdgeText = new Map<string, string>();

  private draw(): number {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const { width, height } = c.getBoundingClientRect();
    if (c.width !== Math.round(width * dpr) || c.height !== Math.round(height * dpr)) {
      c.width = Math.round(width * dpr);
      c.height = Math.round(height * dpr);
    }
    return this.paint(width, height, dpr);
  }

  /** The whole graph as SVG: drawn once more, at full detail, through `SvgContext`. */
  toSvg(): string {
    const b = this.bounds();
    const pad = 16;
    const [x0, y0, x1, y1] = b ?? [0, 0, 0, 0];
    const width = x1 - x0 + 2 * pad, height = y1 - y0 + 2 * pad;
    const canvas = this.ctx;  // (measures text while the view draws into the SVG)
    const svg = new SvgContext((text, font) => {
      canvas.font = font;
      return canvas.measureText(text).width;
    });
    const kept = { ctx: this.ctx, k: this.k, tx: this.tx, ty: this.ty, newPath: this.newPath };
    Object.assign(this, { ctx: svg, k: 1, tx: pad - x0, ty: pad - y0, newPath: () => new SvgPath() });
    try {
      this.paint(width, height, 1);
    } finally {
      Object.assign(this, kept);
      this.invalidate();
    }
    return svg.document(width, height);
  }

  /** A new path for the edges (an `SvgPath` while drawing as SVG). */
  private newPath: () => Path2D | SvgPath = () => new Path2D();

  private paint(width: number, height: number, dpr: number): number {
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = this.colors.bg;
    ctx.fillRect(0, 0, width, height);
    this.flaggedDrawn = new Set();
    this.drawnText = new Map();
    this.drawnEdgeText = new Map();
    if (!this.graph) {
      this.hooks.onPaint(0);
      return 0;
    }
    ctx.setTransform(dpr * this.k, 0, 0, dpr * this.k, dpr * this.tx, dpr * this.ty);
    const vx0 = -this.tx / this.k;
    const vy0 = -this.ty / this.k;
    const vx1 = (width - this.tx) / this.k;
    const vy1 = (height - this.ty) / this.k;
    const visible = (x0: number, y0: number, x1: number, y1: number): boolean =>
      x1 >= vx0 && x0 <= vx1 && y1 >= vy0 && y0 <= vy1;
    const detail = this.k >= LABELS_FROM;

    this.drawBoxes(visible, detail);
    const labels = this.drawEdges(visible);
    let drawn = 0;
    ctx.lineWidth = 1.2;
    const r = this.rects;
    const items = this.graph.items;
    for (let i = 0, j = 0; i < items.length; i++, j += 4) {
      const x = r[j], y = r[j + 1];
      if (!(x + r[j + 2] >= vx0 && x <= vx1 && y + r[j + 3] >= vy0 && y <= vy1)) continue;
      this.drawItem(items[i], x, y, detail);
      drawn++;
    }
    ctx.globalAlpha = 1;
    if (detail) this.drawEdgeLabels(labels);
    this.hooks.onPaint(drawn);
    return drawn;
  }

  private drawBoxes(visible: (a: number, b: number, c: number, d: number) => boolean, detail: boolean): void {
    const ctx = this.ctx;
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1;
    for (const [id, b] of Object.entries(this.boxes)) {
      if (!visible(b[0], b[1], b[0] + b[2], b[1] + b[3])) continue;
      ctx.fillStyle = this.colors.box;
      ctx.strokeStyle = this.colors.muted;
      ctx.beginPath();
      ctx.roundRect(b[0], b[1], b[2], b[3], 8);
      ctx.fill();
      ctx.stroke();
      if (detail) {
        ctx.fillStyle = this.colors.muted;
        ctx.font = SMALL;
        ctx.textAlign = "left";
        ctx.textBaseline = "middle";
        const g = this.graph!.groups.get(id);
        ctx.fillText(`▾ ${g?.label ?? id}`, b[0] + 8, b[1] + 12);
      }
    }
    ctx.setLineDash([]);
  }

  private edgePath(e: Edge): [number, number, number, number] | null {
    const a = this.pos[e.from];
    const b = this.pos[e.to];
    const fa = this.itemById.get(e.from);
    const fb = this.itemById.get(e.to);
    if (!a || !b || !fa || !fb) return null;
    return [a[0] + fa.w, a[1] + fa.h / 2, b[0], b[1] + fb.h / 2];
  }

  /** Draws the edges; answers the gradients to write on the active node's input edges,
   * with where (the curve's middle). Gradients flow back: those edges have their
   * arrowhead at the input's end. */
  private drawEdges(visible: (a: number, b: number, c: number, d: number) => boolean): [string, string, number, number][] {
    const ctx = this.ctx;
    const active = this.hooks.active();
    const plain = this.newPath() as Path2D;
    const dashed = this.newPath() as Path2D;
    const down = this.newPath() as Path2D;
    const up = this.newPath() as Path2D;
    const edges = this.graph!.edges;
    const sg = this.segs;
    const labels: [string, string, number, number][] = [];
    for (let i = 0, j = 0; i < edges.length; i++, j += 4) {
      const x0 = sg[j], y0 = sg[j + 1], x1 = sg[j + 2], y1 = sg[j + 3];
      if (!visible(Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1))) continue;
      const e = edges[i];
      const back = active !== null && e.dst === active;
      const path = back ? down : active && e.src === active ? up : e.dashed ? dashed : plain;
      const mx = (x0 + x1) / 2;
      path.moveTo(x0, y0);
      if (x1 > x0) path.bezierCurveTo(mx, y0, mx, y1, x1, y1);
      else path.bezierCurveTo(x0 + 40, y0, x1 - 40, y1, x1, y1);
      if (back) {  // the gradient arrives at the input: the arrowhead points back at it
        path.moveTo(x0, y0);
        path.lineTo(x0 + 7, y0 - 4);
        path.moveTo(x0, y0);
        path.lineTo(x0 + 7, y0 + 4);
        const text = this.hooks.edgeGrad(e.src, active);
        if (text !== null) labels.push([`${e.src}->${active}`, text, mx, (y0 + y1) / 2]);
      } else {
        path.moveTo(x1, y1);
        path.lineTo(x1 - 5, y1 - 3);
        path.moveTo(x1, y1);
        path.lineTo(x1 - 5, y1 + 3);
      }
    }
    ctx.lineWidth = 1;
    ctx.strokeStyle = this.colors.edge;
    ctx.stroke(plain);
    ctx.setLineDash([4, 4]);
    ctx.stroke(dashed);
    ctx.setLineDash([]);
    ctx.lineWidth = 3;
    ctx.strokeStyle = this.colors.accent;
    ctx.stroke(down);
    ctx.strokeStyle = this.colors.down;
    ctx.stroke(up);
    return labels;
  }

  private drawEdgeLabels(labels: [string, string, number, number][]): void {
    const ctx = this.ctx;
    ctx.font = SMALL;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const [key, text, x, y] of labels) {
      const label = `∇ ${text}`;
      const w = ctx.measureText(label).width + 8;
      ctx.fillStyle = this.colors.bg;
      ctx.fillRect(x - w / 2, y - 8, w, 16);
      ctx.fillStyle = this.colors.accent;
      ctx.fillText(label, x, y);
      this.drawnEdgeText.set(key, label);
    }
  }

  private shape(it: Item, x: number, y: number): void {
    const ctx = this.ctx;
    const { w, h } = it;
    ctx.beginPath();
    switch (it.kind) {
      case "leaf":
        ctx.roundRect(x, y, w, h, h / 2);
        break;
      case "param": {
        const c = 9;
        ctx.moveTo(x + c, y); ctx.lineTo(x + w - c, y); ctx.lineTo(x + w, y + h / 2);
        ctx.lineTo(x + w - c, y + h); ctx.lineTo(x + c, y + h); ctx.lineTo(x, y + h / 2);
        ctx.closePath();
        break;
      }
      case "const":
        ctx.ellipse(x + w / 2, y + h / 2, w / 2, h / 2, 0, 0, Math.PI * 2);
        break;
      case "cut":
        ctx.moveTo(x + 8, y); ctx.lineTo(x + w, y); ctx.lineTo(x + w - 8, y + h); ctx.lineTo(x, y + h);
        ctx.closePath();
        break;
      case "group":
        ctx.moveTo(x, y + 6); ctx.lineTo(x, y + h); ctx.lineTo(x + w, y + h); ctx.lineTo(x + w, y + 6);
        ctx.lineTo(x + 34, y + 6); ctx.lineTo(x + 28, y); ctx.lineTo(x + 4, y); ctx.closePath();
        break;
      default:
        ctx.roundRect(x, y, w, h, 4);
    }
  }

  private drawItem(it: Item, x: number, y: number, detail: boolean): void {
    const ctx = this.ctx;
    const c = this.colors;
    const status: Status = it.node ? this.hooks.statusOf(it.node) : "none";
    const selected = this.hooks.selected();
    ctx.globalAlpha = status === "ahead" || status === "out" ? 0.42 : 1;
    const fill: Record<string, string> = {
      op: c.op, output: c.output, leaf: c.leaf, param: c.param, const: c.const, group: c.group, cut: c.cut,
    };
    ctx.fillStyle = fill[it.kind];
    this.shape(it, x, y);
    ctx.fill();
    const emphasis = status === "active" || (selected !== null && selected === it.id);
    const flag = it.node ? this.hooks.flagOf(it.node) : null;
    if (flag !== null) {
      ctx.globalAlpha = 1;  // a mistake is never faded out
      this.flaggedDrawn.add(it.node!);
    }
    ctx.lineWidth = status === "active" ? 3 : emphasis || flag !== null ? 2.5 : it.kind === "group" ? 1.8 : 1.2;
    ctx.strokeStyle = status === "active" ? c.accent : flag !== null ? c.warn : emphasis ? c.down : c.stroke;
    if (it.kind === "cut") ctx.setLineDash([3, 3]);
    ctx.stroke();
    ctx.setLineDash([]);
    if (it.kind === "output" && detail) {
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.roundRect(x + 3, y + 3, it.w - 6, it.h - 6, 3);
      ctx.stroke();
    }
    if (!detail) return;
    ctx.fillStyle = c.text;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    if (it.kind === "const" || it.kind === "cut") {
      ctx.font = SMALL;
      ctx.fillText(it.label, x + it.w / 2, y + it.h / 2);
    } else {
      ctx.font = FONT;
      ctx.fillText(it.label, x + it.w / 2, y + (it.sub ? it.h / 2 - 7 : it.h / 2));
      if (it.sub) {
        ctx.font = SMALL;
        ctx.fillStyle = c.muted;
        ctx.fillText(it.sub, x + it.w / 2, y + it.h / 2 + 8);
      }
    }
    if (status === "done") {
      ctx.fillStyle = c.accent;
      ctx.font = SMALL;
      ctx.textAlign = "right";
      ctx.fillText("✓", x + it.w - 4, y + 8);
    }
    const grad = it.node && it.kind !== "group" ? this.hooks.gradOf(it.node) : null;
    if (grad !== null) {  // the gradient flowing back, under the node
      ctx.fillStyle = c.down;
      ctx.font = SMALL;
      ctx.textAlign = "center";
      ctx.fillText(`∇ ${grad}`, x + it.w / 2, y + it.h + 9);
    }
    if (this.graph && this.graph.items.length <= TEXT_KEPT) {
      this.drawnText.set(it.id, [it.label, it.sub, grad === null ? "" : `∇ ${grad}`]);
    }
    if (flag !== null) {
      ctx.fillStyle = c.warn;
      ctx.beginPath();
      ctx.arc(x + 6, y + 6, 7, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#fff";
      ctx.font = SMALL;
      ctx.textAlign = "center";
      ctx.fillText("!", x + 6, y + 6);
    }
  }
}
