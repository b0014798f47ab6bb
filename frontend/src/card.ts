/**
 * The chain-rule card: for the active step, the forward op, the upstream gradient
 * (as the sum of each consumer's contribution when there are several), the local
 * derivative (the step's verified formula when the server sends one) and the
 * downstream gradient for each input, typeset with KaTeX and drawn by rank.
 */
import katex from "katex";
import { at, type NodeTensors, offset, renderImages } from "./images";
import { named, texText } from "./letters";
import { describeSum, type Product, productsOf } from "./products";
import type { PassIndex } from "./steps";
import { fmtNum, flat, maxAbsOf, renderTensor, shapeOf, UNSEEN_VALUE } from "./tensor";
import type { ElementLine, GraphNode, Num, Pass, RunError, Step, TensorView } from "./wire";


function tex(src: string, display = false): HTMLElement {
  const span = document.createElement(display ? "div" : "span");
  span.className = "tex";
  katex.render(src, span, { throwOnError: false, displayMode: display, output: "htmlAndMathml" });
  return span;
}

function section(title: string): HTMLElement {
  const s = document.createElement("section");
  const h = document.createElement("h3");
  h.textContent = title;
  s.append(h);
  return s;
}

/** The name a user would use for a node: their variable, else the op's label. */
export function nameOf(node: GraphNode | undefined, fallback: string): string {
  if (!node) return fallback;
  return node.names[node.names.length - 1] ?? node.label ?? fallback;
}

function scalarOf(view: TensorView | null | undefined): number | null {
  if (!view || view.numel !== 1) return null;
  return flat(view)?.[0] ?? null;
}

/** A sum of more consumers' contributions than this is written folded. */
const FOLD_TERMS = 6;

export interface CardContext {
  node: GraphNode;
  step: Step;
  stepIndex: number;
  stepCount: number;
  index: PassIndex;
  byId: Map<string, GraphNode>;
  pass: Pass;
  /** How many passes the run has: the title names the pass (counted from 1) when several. */
  passCount: number;
  /** The program's variable a constant input is (X in X @ W, which needs no gradient
   * and so has no node), or null. */
  constName: (node: GraphNode, input: number) => string | null;
  /** The step's tensors in full (the program runs again), for drilling into a sum of
   * products; null when they are not to be fetched (no stored run, or playing). */
  tensors: (() => Promise<NodeTensors>) | null;
}

/** Why there is no step to show when the program stopped: its error, and how far
 * backward got (a pass that began, and how many of its steps ran). */
export interface Stopped {
  error: RunError;
  pass: Pass | null;
}

export function renderCard(root: HTMLElement, ctx: CardContext | null, stopped: Stopped | null = null): void {
  root.replaceChildren();
  if (!ctx && stopped) {
    const head = document.createElement("header");
    const title = document.createElement("strong");
    title.className = "stopped";
    const { error, pass } = stopped;
    title.textContent = pass
      ? `backward() on line ${pass.line ?? "?"} stopped after ${pass.steps.length} of its steps`
      : `The program stopped before any backward step${error.line ? ` (line ${error.line})` : ""}`;
    head.append(title);
    const why = document.createElement("p");
    why.textContent = `${"type" in error && error.type ? error.type : error.code}: ${error.message}`;
    const hint = document.createElement("p");
    hint.className = "muted";
    hint.textContent = "The node it is about is red in the graph; the diagnostics say how to fix it.";
    root.append(head, why, hint);
    return;
  }
  if (!ctx) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "Run a program with a backward call, then step through it.";
    root.append(p);
    return;
  }
  const { node, step, byId } = ctx;
  const out = nameOf(node, "out");
  const inputs = node.inputs.map((id, i) => (id ? nameOf(byId.get(id), `in_${i}`) : ctx.constName(node, i) ?? "const"));

  const head = document.createElement("header");
  const title = document.createElement("strong");
  title.textContent = `${ctx.passCount > 1 ? `Pass ${ctx.pass.index + 1}, step` : "Step"} ${ctx.stepIndex + 1} of ${ctx.stepCount}: ${node.grad_fn}`;
  const where = document.createElement("span");
  where.className = "muted";
  where.textContent = node.line ? ` line ${node.line}` : "";
  head.append(title, where);
  root.append(head);

  const fwd = section("Forward");
  if (node.kind === "leaf") {
    fwd.append(tex(`${texText(out)}\\ \\text{is a leaf: }${texText(out)}\\texttt{.grad} \\mathrel{+}= \\frac{\\partial L}{\\partial ${texText(out)}}`));
  } else {
    fwd.append(tex(`${texText(out)} = ${texText(node.op ?? node.label)}(${inputs.map(texText).join(",\\ ")})`));
  }
  fwd.append(shapeLine("value", ctx.index.valueOf(node)));
  root.append(fwd);

  const up = section("Upstream ∂L/∂out");
  const contributions = ctx.index.contributions.get(node.id) ?? [];
  if (contributions.length > 1) {
    const n = contributions.length;
    // a weight an RNN uses 250 times: the first and last terms, and how many there are
    const terms = n <= FOLD_TERMS ? contributions.map((_, i) => `g_{${i + 1}}`).join(" + ")
      : `g_{1} + g_{2} + \\dots + g_{${n}}\\ \\text{(${n} terms)}`;
    up.append(tex(`\\frac{\\partial L}{\\partial ${texText(out)}} = ${terms}`));
    const list = document.createElement("ol");
    list.className = "contributions";
    const shown = n <= FOLD_TERMS ? contributions : [...contributions.slice(0, 2), ...contributions.slice(-1)];
    shown.forEach((c) => {
      const li = document.createElement("li");
      li.value = contributions.indexOf(c) + 1;
      li.append(`from ${nameOf(byId.get(c.from), c.from)} (step ${c.step + 1}): `, renderTensor(c.grad));
      list.append(li);
      if (n > FOLD_TERMS && c === contributions[1]) {
        const more = document.createElement("li");
        more.className = "muted";
        more.textContent = `… ${n - 3} more terms`;
        list.append(more);
      }
    });
    up.append(list, document.createTextNode("sum: "));
  } else if (contributions.length === 0 && node.kind !== "leaf") {
    up.append(tex(`\\frac{\\partial L}{\\partial ${texText(out)}}\\ \\text{is the gradient backward started from}`));
  }
  up.append(renderTensor(step.grad_output));
  root.append(up);

  if (ctx.stepIndex === 0 && ctx.pass.jacobian) root.append(vectorToVector(ctx.pass, byId));

  const local = section("Local derivative");
  if (step.formula) {
    const f = step.formula;
    const badge = document.createElement("span");
    badge.className = f.verified ? "badge ok" : "badge warn";
    badge.textContent = f.verified ? "✓ verified against the engine's numbers" : "not verified";
    const role = (r: number | string): string | null => (r === "out" ? out : typeof r === "number" ? inputs[r] ?? null : null);
    local.append(tex(named(f.latex, f.letters, role), true));
    if (f.kind === "rule") {
      for (const line of f.steps ?? []) local.append(tex(named(line, f.letters, role), true));
      if (f.elements?.length) local.append(arithmetic(f.elements, inputs, step, ctx.tensors));
    }
    if (f.kind === "custom") {
      if (f.code) {
        const pre = document.createElement("pre");
        pre.className = "code";
        pre.textContent = f.code;
        local.append(pre);
      }
      if (f.check) {
        const p = document.createElement("p");
        p.className = "check";
        p.textContent = `your backward: ${JSON.stringify(f.check.analytic)} · finite differences: ${JSON.stringify(f.check.numeric)}`;
        local.append(p);
      }
    }
    if (f.note) {
      const p = document.createElement("p");
      p.textContent = f.note;
      local.append(p);
    }
    local.append(badge);
  } else {
    local.append(fallbackLocal(node, step, out, inputs));
  }
  root.append(local);

  const down = section("Downstream ∂L/∂in");
  const products = productsOf(node, step, { inputs, out });
  node.inputs.forEach((id, i) => {
    const g = step.grad_inputs[i] ?? null;
    const row = document.createElement("div");
    row.className = "downstream";
    if (id === null) {
      row.append(tex(`${texText(inputs[i])}:\\ \\text{no gradient (does not require grad)}`));
    } else {
      row.append(tex(`\\frac{\\partial L}{\\partial ${texText(inputs[i])}}`), renderTensor(g, g ? maxAbsOf(flat(g) ?? []) : undefined));
      const src = byId.get(id);
      const value = src ? ctx.index.valueOf(src) : null;
      if (g && value) {
        const same = g.shape.join(",") === value.shape.join(",");
        row.append(dimCheck(g, value, same));
      }
      const product = products.get(i);
      if (product && g) row.append(drillDown(product, i, `∂L/∂${inputs[i]}`, ctx.tensors));
    }
    down.append(row);
  });
  if (node.kind === "leaf") down.append(tex(`${texText(out)}\\texttt{.grad}\\ \\text{receives the upstream gradient}`));
  root.append(down);
}

/** A matrix product's or convolution's gradient for one input: its shapes, then (once the
 * tensors are fetched) the gradient as an image whose element under the pointer is written
 * out as its sum of products with PyTorch's numbers; the first element until then. */
function drillDown(product: Product, input: number, name: string, tensors: CardContext["tensors"]): HTMLElement {
  const box = document.createElement("div");
  box.className = "drill";
  const shapes = document.createElement("p");
  shapes.className = "shapes-line";
  shapes.textContent = product.shapes;
  box.append(shapes);
  if (!tensors) return box;
  const sum = document.createElement("ol");
  sum.className = "sum";
  sum.setAttribute("aria-label", `${name}, element by element, as a sum of products`);
  whenShown(box, tensors).then((t) => {
    const g = t.grad_inputs[input];
    if (!g) return;
    const show = (index: number[]): void => {
      const terms = product.drill(index, t);
      if (!terms) return;
      const lines = describeSum(name, index, terms, product.scale?.(t) ?? 1, at(g, index), g.dtype);
      sum.replaceChildren(...lines.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    };
    show(g.shape.map(() => 0));
    box.append(renderImages(g, name, show), sum);
  }, () => undefined);
  return box;
}

/** How long a step stays on screen before its tensors are fetched. */
const DRILL_AFTER_MS = 250;

/** The step's tensors, fetched once ``box`` has been on screen a moment: stepping quickly
 * through 500 RNN steps (or playing them) must not ask the server to run the program 500
 * times. */
function whenShown(box: HTMLElement, tensors: () => Promise<NodeTensors>): Promise<NodeTensors> {
  return new Promise<NodeTensors>((resolve, reject) => setTimeout(() => {
    if (box.isConnected) tensors().then(resolve, reject);
    else reject(new Error("not shown any more"));
  }, DRILL_AFTER_MS));
}

/** One element's chain rule: ``∂L/∂y[0]: 1 × 6 = 6``. */
function elementLine(name: string, index: number[], up: Num, local: Num, down: Num): string {
  const where = index.length ? `[${index.join(", ")}]` : "";
  return `∂L/∂${name}${where}: ${fmtNum(up)} × ${fmtNum(local)} = ${fmtNum(down)}`;
}

/** upstream × local = downstream, element by element, with the numbers: the chain rule
 * as a course writes it for a vector, one line per element (the first few of each input);
 * past those, the input's gradient as an image whose element under the pointer is
 * written the same way (its tensors fetched in full). */
function arithmetic(elements: ElementLine[], inputs: string[], step: Step, tensors: CardContext["tensors"]): HTMLElement {
  const box = document.createElement("div");
  const list = document.createElement("ol");
  list.className = "arith";
  list.setAttribute("aria-label", "upstream × local = downstream, element by element");
  box.append(list);
  for (const e of elements) {
    const li = document.createElement("li");
    li.textContent = elementLine(inputs[e.input] ?? `in_${e.input}`, e.index, e.upstream, e.local, e.downstream);
    list.append(li);
  }
  const shown = new Set(elements.map((e) => e.input));
  for (const i of shown) {
    const total = step.grad_inputs[i]?.numel ?? 0;
    const count = elements.filter((e) => e.input === i).length;
    if (total > count) {
      const name = inputs[i] ?? `in_${i}`;
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = `… and ${total - count} more elements of ∂L/∂${name}, each the same product`;
      list.append(li);
      if (tensors) box.append(pointedElements(box, i, name, tensors));
    }
  }
  return box;
}

/** An input's gradient as an image; the element under the pointer is written as
 * upstream × local = downstream with PyTorch's upstream and downstream and the rule's
 * local derivative. */
function pointedElements(box: HTMLElement, input: number, name: string, tensors: () => Promise<NodeTensors>): HTMLElement {
  const wrap = document.createElement("div");
  const line = document.createElement("output");
  line.className = "pointed";
  line.setAttribute("aria-label", `∂L/∂${name} under the pointer`);
  whenShown(box, tensors).then((t) => {
    const g = t.grad_inputs[input], local = t.local[input], spread = t.spread;
    if (!g || !local || !spread) return;
    wrap.append(renderImages(g, `∂L/∂${name}`, (index) => {
      const k = offset(g.shape, index);
      line.textContent = elementLine(name, index, spread.values[k], local.values[k], g.values[k]);
    }), line);
  }, () => undefined);
  return wrap;
}

function shapeLine(what: string, view: TensorView | null): HTMLElement {
  const p = document.createElement("p");
  p.className = "shape";
  p.textContent = view ? `${what}: ${shapeOf(view)} ${view.dtype}` : `${what}: ${UNSEEN_VALUE}`;
  return p;
}

function dimCheck(g: TensorView, v: TensorView, same: boolean): HTMLElement {
  const s = document.createElement("span");
  s.className = same ? "dimcheck ok" : "dimcheck warn";
  s.textContent = same ? `shape ${shapeOf(g)} = input's ${shapeOf(v)} ✓` : `shape ${shapeOf(g)} vs input ${shapeOf(v)}`;
  return s;
}

/** Without a formula: the op, the shapes, and for scalars the local derivative the numbers imply. */
function fallbackLocal(node: GraphNode, step: Step, out: string, inputs: string[]): HTMLElement {
  const wrap = document.createElement("div");
  const upv = scalarOf(step.grad_output);
  node.inputs.forEach((id, i) => {
    if (id === null) return;
    const g = step.grad_inputs[i];
    const dv = scalarOf(g);
    const partial = `\\frac{\\partial ${texText(out)}}{\\partial ${texText(inputs[i])}}`;
    if (upv !== null && dv !== null && upv !== 0 && Number.isFinite(upv) && Number.isFinite(dv)) {
      wrap.append(tex(`\\frac{\\partial L}{\\partial ${texText(out)}} \\cdot ${partial} = ${fmtNum(upv)} \\cdot ${fmtNum(dv / upv)} = ${fmtNum(dv)}`, true));
    } else {
      wrap.append(tex(`\\underbrace{\\frac{\\partial L}{\\partial ${texText(inputs[i])}}}_{${shapeOf(g) || "?"}} = \\underbrace{\\frac{\\partial L}{\\partial ${texText(out)}}}_{${shapeOf(step.grad_output)}} \\cdot ${partial}`, true));
    }
  });
  return wrap;
}

const numTex = (v: unknown): string => (typeof v === "number" ? fmtNum(v) : String(v));

function bmatrix(rows: unknown[][]): string {
  return `\\begin{bmatrix}${rows.map((r) => r.map(numTex).join(" & ")).join(" \\\\ ")}\\end{bmatrix}`;
}

/** y.backward(v) on a vector y: J, v and Jᵀv for each leaf, and whether Jᵀv is what it got. */
function vectorToVector(pass: Pass, byId: Map<string, GraphNode>): HTMLElement {
  const s = section("Vector to vector: x.grad = Jᵀv");
  const jac = pass.jacobian!;
  const column = (xs: unknown[]): string => bmatrix(xs.map((x) => [x]));
  for (const leaf of jac.leaves) {
    const name = texText(nameOf(byId.get(leaf.node), leaf.node));
    const flatVjp = (Array.isArray(leaf.vjp) ? (leaf.vjp as unknown[]).flat(8) : [leaf.vjp]) as unknown[];
    const J = leaf.jacobian;
    const shown = J.length <= 8 && (J[0]?.length ?? 0) <= 8
      ? bmatrix(J) : `J \\in \\mathbb{R}^{${J.length}\\times${J[0]?.length ?? 0}}`;
    s.append(tex(`J_{${name}} = \\frac{\\partial y}{\\partial ${name}} = ${shown},\\quad v = ${column(jac.v.length <= 8 ? jac.v : jac.v.slice(0, 8))},\\quad J^{\\top}v = ${column(flatVjp.slice(0, 8))}`, true));
    const badge = document.createElement("span");
    badge.className = leaf.verified ? "badge ok" : "badge warn";
    badge.textContent = leaf.verified ? `✓ Jᵀv is exactly what ${nameOf(byId.get(leaf.node), leaf.node)} received` : "Jᵀv differs from what the leaf received";
    s.append(badge);
  }
  return s;
}
