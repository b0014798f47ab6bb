/**
 * Matrix products and convolutions, drilled into: each element of a downstream gradient is
 * a sum of products of the upstream gradient with a saved tensor. The card writes the
 * shapes (∂L/∂W = Xᵀ · ∂L/∂Y: [4,8]ᵀ·[4,2] → [8,2]) and, for the element under the pointer,
 * that sum with PyTorch's numbers, as CNN Explainer opens a convolution, on the user's own
 * graph. Each product is written once here, beside its shapes.
 */
import { at, exact, type NodeTensors } from "./images";
import { fmtNum } from "./tensor";
import type { GraphNode, Step } from "./wire";

/** One product of a sum: a factor of each tensor, named and indexed as the card writes it. */
export interface Term {
  left: [string, number[], number];
  right: [string, number[], number] | null;
}

/** The names the card uses for a node's inputs and output. */
export interface Names {
  inputs: string[];
  out: string;
}

type Drill = (index: number[], t: NodeTensors) => Term[] | null;

/** What one input's gradient is: its shapes line and, given the tensors, its sum for an element. */
export interface Product {
  shapes: string;
  drill: Drill;
  /** A factor every term shares (addmm's alpha). */
  scale?: (t: NodeTensors) => number;
}

const dims = (shape: number[] | undefined): string => `[${(shape ?? []).join(",")}]`;
const grad = (name: string): string => `∂L/∂${name}`;

/** ∂L/∂A = G·Bᵀ and ∂L/∂B = Aᵀ·G for Y = A·B, batched over a leading dimension when
 * ``batch``: which saved tensor is A and which B, by name. */
function matmul(names: Names, step: Step, node: GraphNode, a: string, b: string, slots: [number, number], batch: boolean, scale?: (t: NodeTensors) => number): Map<number, Product> {
  const [ia, ib] = slots;
  const A = names.inputs[ia], B = names.inputs[ib], Y = names.out;
  const g = step.grad_output?.shape;
  const sa = node.saved?.[a]?.shape ?? step.grad_inputs[ia]?.shape;
  const sb = node.saved?.[b]?.shape ?? step.grad_inputs[ib]?.shape;
  const lead = (i: number[]): number[] => (batch ? [i[0]] : []);
  const out = new Map<number, Product>();
  out.set(ia, {
    shapes: `${grad(A)} = ${grad(Y)} · ${B}ᵀ: ${dims(g)}·${dims(sb)}ᵀ → ${dims(sa)}`,
    drill: (i, t) => {
      const G = t.grad, Bt = t.saved[b];
      if (!G || !Bt) return null;
      const [r, c] = i.slice(-2);
      const m = G.shape[G.shape.length - 1];
      return Array.from({ length: m }, (_, k) => ({
        left: [grad(Y), [...lead(i), r, k], at(G, [...lead(i), r, k])],
        right: [B, [...lead(i), c, k], at(Bt, [...lead(i), c, k])],
      }));
    },
    scale,
  });
  out.set(ib, {
    shapes: `${grad(B)} = ${A}ᵀ · ${grad(Y)}: ${dims(sa)}ᵀ·${dims(g)} → ${dims(sb)}`,
    drill: (i, t) => {
      const G = t.grad, At = t.saved[a];
      if (!G || !At) return null;
      const [r, c] = i.slice(-2);
      const n = G.shape[G.shape.length - 2];
      return Array.from({ length: n }, (_, k) => ({
        left: [A, [...lead(i), k, r], at(At, [...lead(i), k, r])],
        right: [grad(Y), [...lead(i), k, c], at(G, [...lead(i), k, c])],
      }));
    },
    scale,
  });
  return out;
}

/** A 2-D convolution's three gradients: its input's, its kernels' and its bias's. */
function conv2d(names: Names, step: Step, node: GraphNode): Map<number, Product> {
  const X = names.inputs[0], W = names.inputs[1], Y = names.out;
  const g = step.grad_output?.shape;
  const sx = node.saved?.input?.shape, sw = node.saved?.weight?.shape;
  const pairs = (t: NodeTensors, key: string): number[] => (t.attrs[key] as number[] | undefined) ?? [1, 1];
  const out = new Map<number, Product>();
  out.set(0, {
    shapes: `${grad(X)} = ${grad(Y)} ∗ ${W} (full, kernels turned 180°): ${dims(g)} ∗ ${dims(sw)} → ${dims(sx)}`,
    drill: ([n, c, h, w], t) => {
      const G = t.grad, K = t.saved.weight;
      if (!G || !K) return null;
      const [s0, s1] = pairs(t, "stride"), [d0, d1] = pairs(t, "dilation");
      const [p0, p1] = (t.attrs.padding as number[] | undefined) ?? [0, 0];
      const groups = (t.attrs.groups as number | undefined) ?? 1;
      const [cout, cinG, kh, kw] = K.shape;
      const group = Math.floor(c / cinG);
      const perGroup = cout / groups;
      const terms: Term[] = [];
      for (let co = group * perGroup; co < (group + 1) * perGroup; co++) {
        for (let a = 0; a < kh; a++) {
          const yy = h + p0 - a * d0;
          if (yy % s0 !== 0 || yy < 0 || yy / s0 >= G.shape[2]) continue;
          for (let b = 0; b < kw; b++) {
            const xx = w + p1 - b * d1;
            if (xx % s1 !== 0 || xx < 0 || xx / s1 >= G.shape[3]) continue;
            const gi = [n, co, yy / s0, xx / s1], ki = [co, c - group * cinG, a, b];
            terms.push({ left: [grad(Y), gi, at(G, gi)], right: [W, ki, at(K, ki)] });
          }
        }
      }
      return terms;
    },
  });
  out.set(1, {
    shapes: `${grad(W)} = ${X} ⋆ ${grad(Y)} (correlation, summed over the batch): ${dims(sx)} ⋆ ${dims(g)} → ${dims(sw)}`,
    drill: ([co, ci, a, b], t) => {
      const G = t.grad, I = t.saved.input;
      if (!G || !I) return null;
      const [s0, s1] = pairs(t, "stride"), [d0, d1] = pairs(t, "dilation");
      const [p0, p1] = (t.attrs.padding as number[] | undefined) ?? [0, 0];
      const groups = (t.attrs.groups as number | undefined) ?? 1;
      const cinG = I.shape[1] / groups;
      const c = Math.floor(co / (G.shape[1] / groups)) * cinG + ci;
      const terms: Term[] = [];
      for (let n = 0; n < G.shape[0]; n++) {
        for (let y = 0; y < G.shape[2]; y++) {
          const h = y * s0 + a * d0 - p0;
          if (h < 0 || h >= I.shape[2]) continue;
          for (let x = 0; x < G.shape[3]; x++) {
            const w = x * s1 + b * d1 - p1;
            if (w < 0 || w >= I.shape[3]) continue;
            const gi = [n, co, y, x], xi = [n, c, h, w];
            terms.push({ left: [X, xi, at(I, xi)], right: [grad(Y), gi, at(G, gi)] });
          }
        }
      }
      return terms;
    },
  });
  out.set(2, {
    shapes: `${grad(names.inputs[2])} = Σ over batch and positions of ${grad(Y)}: ${dims(g)} → [${g?.[1] ?? "?"}]`,
    drill: ([co], t) => {
      const G = t.grad;
      if (!G) return null;
      const terms: Term[] = [];
      for (let n = 0; n < G.shape[0]; n++) {
        for (let y = 0; y < G.shape[2]; y++) {
          for (let x = 0; x < G.shape[3]; x++) terms.push({ left: [grad(Y), [n, co, y, x], at(G, [n, co, y, x])], right: null });
        }
      }
      return terms;
    },
  });
  return out;
}

/** Y = β·b + α·X·W (a Linear layer: W is the weight's transpose). */
function addmm(names: Names, step: Step, node: GraphNode): Map<number, Product> {
  const alpha = (t: NodeTensors): number => (t.attrs.alpha as number | undefined) ?? 1;
  const out = matmul(names, step, node, "mat1", "mat2", [1, 2], false, alpha);
  const G = step.grad_output?.shape;
  const bias = step.grad_inputs[0]?.shape;
  if (G && bias && bias.length === 1) {  // the bias broadcast over the rows
    out.set(0, {
      shapes: `${grad(names.inputs[0])} = Σ over rows of ${grad(names.out)}: ${dims(G)} → ${dims(bias)}`,
      drill: ([j], t) => (t.grad ? Array.from({ length: t.grad.shape[0] }, (_, r) => ({
        left: [grad(names.out), [r, j], at(t.grad!, [r, j])] as [string, number[], number], right: null,
      })) : null),
      scale: (t) => (t.attrs.beta as number | undefined) ?? 1,
    });
  }
  return out;
}

/** The index in ``shape`` that a broadcast operation read for output index ``o``. */
function readAt(o: number[], shape: number[]): number[] {
  const lead = o.length - shape.length;
  return shape.map((s, d) => (s === 1 ? 0 : o[lead + d]));
}

/** Every output index that read input index ``i`` of ``shape`` (broadcast to ``out``). */
function readers(i: number[], shape: number[], out: number[]): number[][] {
  const lead = out.length - shape.length;
  let all: number[][] = [[]];
  out.forEach((size, d) => {
    const fixed = d >= lead && shape[d - lead] !== 1 ? [i[d - lead]] : Array.from({ length: size }, (_, k) => k);
    all = all.flatMap((p) => fixed.map((k) => [...p, k]));
  });
  return all;
}

/** An operand broadcast forward is summed backward: ∂L/∂b[j] adds up the upstream (times
 * the local derivative) at every position that read b[j]. For add, sub and mul. */
function broadcast(names: Names, step: Step, node: GraphNode): Map<number, Product> {
  const out = new Map<number, Product>();
  const G = step.grad_output?.shape;
  if (!G) return out;
  const sub = node.grad_fn === "SubBackward0";
  const mul = node.grad_fn === "MulBackward0";
  step.grad_inputs.forEach((g, i) => {
    if (!g || g.shape.join(",") === G.join(",")) return;
    const lead = G.length - g.shape.length;
    const summed = G.map((_, d) => d).filter((d) => d < lead || (g.shape[d - lead] === 1 && G[d] !== 1));
    const partner = mul ? (i === 0 ? "other" : "self") : null;
    const partnerName = mul ? names.inputs[1 - i] : "";
    out.set(i, {
      shapes: `${grad(names.inputs[i])} = Σ over dimension${summed.length > 1 ? "s" : ""} ${summed.join(", ")} of ${grad(names.out)}${mul ? ` · ${partnerName}` : ""}: ${dims(G)} → ${dims(g.shape)} (${names.inputs[i]} was copied along ${summed.length > 1 ? "them" : "it"} forward)`,
      drill: (index, t) => {
        const U = t.grad;
        const P = partner ? t.saved[partner] : null;
        if (!U || (partner && !P)) return null;
        return readers(index, g.shape, U.shape).map((o) => ({
          left: [grad(names.out), o, at(U, o)] as [string, number[], number],
          right: P ? [partnerName, readAt(o, P.shape), at(P, readAt(o, P.shape))] as [string, number[], number] : null,
        }));
      },
      scale: (t) => (mul ? 1 : (i === 1 ? ((t.attrs.alpha as number | undefined) ?? 1) * (sub ? -1 : 1) : 1)),
    });
  });
  return out;
}

/** The products a node's step is made of, by input position; empty for other ops. */
export function productsOf(node: GraphNode, step: Step, names: Names): Map<number, Product> {
  switch (node.grad_fn) {
    case "MmBackward0": return matmul(names, step, node, "self", "mat2", [0, 1], false);
    case "BmmBackward0": return matmul(names, step, node, "self", "mat2", [0, 1], true);
    case "AddmmBackward0": return addmm(names, step, node);
    case "ConvolutionBackward0":  // a 2-D one (a transposed one has no rule: its kind is not "rule")
      return step.grad_output?.shape.length === 4 && step.formula?.kind === "rule" ? conv2d(names, step, node) : new Map();
    case "AddBackward0": case "SubBackward0": case "MulBackward0": return broadcast(names, step, node);
    default: return new Map();
  }
}

/** Terms written out before the sum is folded (the rest are counted). */
const TERMS_SHOWN = 4;

/** ``name[index] = Σ …`` for one element: the first products with their numbers, how many
 * there are, their sum, and PyTorch's own value for the element. */
export function describeSum(name: string, index: number[], terms: Term[], scale: number, pytorch: number, dtype: string): string[] {
  const factor = (f: [string, number[], number]): string => `${f[0]}[${f[1].join(",")}]`;
  const term = (t: Term): string => (t.right ? `${factor(t.left)}·${factor(t.right)}` : factor(t.left));
  const value = (t: Term): string => (t.right ? `(${fmtNum(t.left[2])})(${fmtNum(t.right[2])})` : fmtNum(t.left[2]));
  const shown = terms.slice(0, TERMS_SHOWN);
  const more = terms.length > TERMS_SHOWN ? ` + … (${terms.length} terms)` : "";
  const pre = scale === 1 ? "" : `${fmtNum(scale)} · `;
  let sum = 0;
  for (const t of terms) sum += t.left[2] * (t.right ? t.right[2] : 1);
  return [
    `${name}[${index.join(", ")}] = ${pre}${terms.length ? shown.map(term).join(" + ") + more : "0 (no term)"}`,
    `= ${pre}${terms.length ? shown.map(value).join(" + ") + more : "0"}`,
    `= ${fmtNum(scale * sum)} · PyTorch: ${exact(pytorch, dtype)}`,
  ];
}
