/** Small graphs in the wire format, built the way the engine numbers and labels them. */
import type { GraphNode, TensorView } from "../src/wire";

export function view(shape: number[], values: unknown = null): TensorView {
  const numel = shape.reduce((a, b) => a * b, 1);
  return { shape, dtype: "float32", device: "cpu", numel, values: values as TensorView["values"], stats: null };
}

let counter = 0;
export function node(partial: Partial<GraphNode> & { inputs?: (string | null)[] }): GraphNode {
  counter++;
  return {
    id: partial.id ?? `n${counter}`,
    kind: partial.kind ?? "op",
    grad_fn: partial.grad_fn ?? (partial.kind === "leaf" ? "AccumulateGrad" : "MulBackward0"),
    op: partial.op ?? (partial.kind === "leaf" ? null : "mul"),
    label: partial.label ?? "mul",
    names: partial.names ?? [],
    line: partial.line ?? 1,
    module: partial.module ?? null,
    inputs: partial.inputs ?? [],
    value: partial.value ?? view([3]),
    grad: null,
    call: partial.call ?? null,
  };
}

/** An RNN unrolled `steps` times through module "cell": shared W and b, one call per step
 * (`x[t]` is a constant, so consecutive calls touch: only `call` tells them apart). */
export function rnn(steps: number): GraphNode[] {
  const nodes: GraphNode[] = [
    node({ id: "h0", kind: "leaf", label: "h0", names: ["h"] }),
    node({ id: "W", kind: "leaf", label: "cell.weight", names: ["cell.weight"], module: "cell", call: 1 }),
    node({ id: "b", kind: "leaf", label: "cell.bias", names: ["cell.bias"], module: "cell", call: 1 }),
  ];
  let h = "h0";
  for (let t = 0; t < steps; t++) {
    nodes.push(node({ id: `mm${t}`, label: "Linear", module: "cell", call: t + 1, inputs: ["b", h, "W", null] }));
    nodes.push(node({ id: `tanh${t}`, label: "tanh", module: "cell", call: t + 1, inputs: [`mm${t}`] }));
    h = `tanh${t}`;
  }
  nodes.push(node({ id: "loss", label: "sum", names: ["loss"], inputs: [h], value: view([]) }));
  return nodes;
}
