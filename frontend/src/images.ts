/**
 * Images for images: a tensor with spatial dimensions (an input, a feature map, a bank
 * of kernels) drawn one image per channel, a weight matrix as a heatmap, each pixel's
 * exact value read under the pointer, as CNN Explainer shows a layer. The Run keeps
 * values to 64 elements; the rest come from GET /runs/{id}/tensors/{node} (the program
 * runs again, ~15 ms for a LeNet pass), once per node and pass.
 */
import { divergingRGB, toNumber } from "./tensor";
import type { Num, TensorView } from "./wire";

/** A tensor in full, as the server gives it (NodeTensors' value, grad and saved). */
export interface FullTensor {
  shape: number[];
  dtype: string;
  values: Num[];
}

export interface NodeTensors {
  node: string;
  pass: number;
  value: FullTensor | null;
  grad: FullTensor | null;
  saved: Record<string, FullTensor>;
  /** What the step sent back to each input, in full. */
  grad_inputs: (FullTensor | null)[];
  /** For an op that acts element by element: each input's local derivative, and the
   * upstream as it reaches each input element. */
  local: (FullTensor | null)[];
  spread: FullTensor | null;
  /** What the node saved besides tensors (a convolution's stride and padding). */
  attrs: Record<string, unknown>;
}

/** The server gives tensors up to this many elements (its max_fetched_elements). */
const FETCH_MAX = 262_144;

/** A tensor the Run summarised without its values, which the server gives in full. */
export function fetchable(view: TensorView | null | undefined): boolean {
  return !!view && view.values == null && view.shape.length > 0 && view.numel <= FETCH_MAX;
}

/** The position of ``index`` in a row-major tensor of ``shape``. */
export function offset(shape: number[], index: number[]): number {
  let k = 0;
  for (let d = 0; d < shape.length; d++) k = k * shape[d] + index[d];
  return k;
}

/** Element ``index`` of a tensor given in full, as a number. */
export function at(t: FullTensor, index: number[]): number {
  return toNumber(t.values[offset(t.shape, index)]);
}
/** Images drawn per tensor at most: a batch of 64 inputs, or 16×16 kernels. */
const MAX_IMAGES = 256;
/** An image is drawn this many CSS pixels wide at most (a 28×28 map: 4 px per value). */
const IMAGE_PX = 120;

const cache = new Map<string, Promise<NodeTensors>>();

/** The node's tensors in one pass, fetched once (a failed fetch is not kept). */
export function fetchTensors(runId: string, node: string, pass: number): Promise<NodeTensors> {
  const key = `${runId}/${node}/${pass}`;
  let hit = cache.get(key);
  if (!hit) {
    hit = fetch(`/api/v1/runs/${encodeURIComponent(runId)}/tensors/${encodeURIComponent(node)}?pass=${pass}`)
      .then(async (r) => {
        const body = await r.json();
        if (!r.ok) throw new Error(body?.error?.message ?? `HTTP ${r.status}`);
        return body as NodeTensors;
      });
    hit.catch(() => cache.delete(key));
    cache.set(key, hit);
  }
  return hit;
}

/** A value as written to be read exactly: a float32 with the fewest digits that are that
 * float32 and no other (0.1, not 0.10000000149011612), anything else in full. */
export function exact(v: number, dtype: string): string {
  if (!Number.isFinite(v)) return String(v).replace("Infinity", "inf").replace("NaN", "nan");
  if (dtype !== "float32" && dtype !== "float16" && dtype !== "bfloat16") return String(v);
  for (let p = 1; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(v);
}

/** How a shape is cut into images: rows × columns of h × w pictures. */
export function tiling(shape: number[]): { rows: number; cols: number; h: number; w: number } {
  const r = shape.length;
  if (r === 0) return { rows: 1, cols: 1, h: 1, w: 1 };
  if (r === 1) return { rows: 1, cols: 1, h: 1, w: shape[0] };
  const h = shape[r - 2], w = shape[r - 1];
  const lead = shape.slice(0, -2);
  const cols = lead.length ? lead[lead.length - 1] : 1;
  const rows = lead.length > 1 ? lead.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
  return { rows, cols, h, w };
}

/** The index of flat position ``k`` in ``shape``. */
function unravel(k: number, shape: number[]): number[] {
  const out = new Array(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = k % shape[d];
    k = Math.floor(k / shape[d]);
  }
  return out;
}

/**
 * The tensor as images, with a readout line that names the element under the pointer
 * and its exact value (``name[0, 2, 13, 7] = 0.4187``); the colour is blue below 0, red
 * above, on one scale for the whole tensor.
 */
export function renderImages(t: FullTensor, name: string, onPoint?: (index: number[]) => void): HTMLElement {
  const box = document.createElement("div");
  box.className = "images";
  const values = Float64Array.from(t.values, (v) => toNumber(v));
  let m = 0;
  for (const v of values) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  const { rows, cols, h, w } = tiling(t.shape);
  const px = Math.max(1, Math.min(16, Math.floor(IMAGE_PX / Math.max(h, w))));
  const readout = document.createElement("output");
  readout.className = "readout";
  readout.textContent = `${t.shape.join("×")}: point at a pixel to read its value`;
  const grid = document.createElement("div");
  // one row (or one column) of channels wraps; a bank of kernels keeps its rows
  const wrap = rows === 1 || cols === 1;
  grid.className = wrap ? "image-row" : "image-grid";
  if (!wrap) grid.style.gridTemplateColumns = `repeat(${cols}, auto)`;
  const count = Math.min(rows * cols, MAX_IMAGES);
  for (let k = 0; k < count; k++) {
    const canvas = document.createElement("canvas");
    canvas.className = "map";
    canvas.width = w;
    canvas.height = h;
    canvas.style.width = `${w * px}px`;
    canvas.style.height = `${h * px}px`;
    const base = k * h * w;
    const where = unravel(base, t.shape).slice(0, Math.max(0, t.shape.length - 2));
    canvas.dataset.index = where.join(",");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `${name}[${[...where, ":", ":"].slice(0, t.shape.length).join(", ")}]: ${h}×${w}`);
    const ctx = canvas.getContext("2d");
    if (ctx) {
      const img = ctx.createImageData(w, h);
      for (let i = 0; i < h * w; i++) {
        const [r, g, b] = divergingRGB(values[base + i], m);
        img.data[i * 4] = r;
        img.data[i * 4 + 1] = g;
        img.data[i * 4 + 2] = b;
        img.data[i * 4 + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
    }
    canvas.addEventListener("mousemove", (e) => {
      const rect = canvas.getBoundingClientRect();
      const j = Math.min(w - 1, Math.floor(((e.clientX - rect.left) / rect.width) * w));
      const i = Math.min(h - 1, Math.floor(((e.clientY - rect.top) / rect.height) * h));
      const flatAt = base + i * w + j;
      const index = unravel(flatAt, t.shape);
      readout.textContent = `${name}[${index.join(", ")}] = ${exact(values[flatAt], t.dtype)}`;
      onPoint?.(index);
    });
    grid.append(canvas);
  }
  box.append(grid, readout);
  if (count < rows * cols) {
    const more = document.createElement("p");
    more.className = "muted";
    more.textContent = `the first ${count} of ${rows * cols} images`;
    box.append(more);
  }
  return box;
}
