"""Vector to vector: for ``y.backward(v)`` on a vector ``y``, the Jacobian of ``y`` with
respect to each leaf, the vector ``v``, and ``Jᵀv`` — what every backprop course shows
before it says "so x.grad is a vector-Jacobian product".
"""

from __future__ import annotations

import torch

from ..schema import JacobianLeafDict, PassJacobianDict
from ..tracing.recorder import PassRecord
from .formulas import verify

#: Built when the root has at most this many elements and J at most MAX_ENTRIES entries.
MAX_ROOT = 64
MAX_ENTRIES = 4096


def pass_jacobian(
    root: torch.Tensor, v: torch.Tensor, leaves: list[tuple[torch.Tensor, str]]
) -> PassJacobianDict | None:
    """One backward per element of ``root`` (retaining the graph for the real backward
    that follows), before it runs; None when too large or when it cannot be computed
    (the real backward then reports why). ``verified`` is left false: the engine checks
    each Jᵀv against what its leaf receives once the real backward has run."""
    tensors = [t for t, _ in leaves]
    n_out = root.numel()
    if (
        not tensors
        or n_out > MAX_ROOT
        or n_out * sum(t.numel() for t in tensors) > MAX_ENTRIES
        or v.shape != root.shape
    ):
        return None
    rows: list[list[torch.Tensor]] = []
    basis = torch.zeros(n_out, dtype=root.dtype, device=root.device)
    try:
        for i in range(n_out):
            basis.zero_()
            basis[i] = 1
            grads = torch.autograd.grad(
                root, tensors, basis.reshape(root.shape), retain_graph=True, allow_unused=True
            )
            rows.append(
                [
                    torch.zeros_like(t) if g is None else g.detach()
                    for g, t in zip(grads, tensors, strict=True)
                ]
            )
    except RuntimeError:
        return None
    vv = v.detach().to(torch.float64).reshape(-1).cpu()
    out: list[JacobianLeafDict] = []
    for k, (t, nid) in enumerate(leaves):
        J = torch.stack([row[k].reshape(-1) for row in rows]).to(torch.float64).cpu()
        out.append(
            {
                "node": nid,
                "jacobian": J.tolist(),
                "vjp": (J.T @ vv).reshape(t.shape).tolist(),
                "verified": False,
            }
        )
    return {"v": vv.tolist(), "leaves": out}


def received_by_leaves(p: PassRecord) -> PassJacobianDict | None:
    """The pass's J, v and Jᵀv, each Jᵀv checked against what its leaf received once the
    real backward had run."""
    if p.jacobian is None:
        return None
    received = {st.node: st.grad_outputs[0] for st in p.steps if st.grad_outputs}
    for leaf in p.jacobian["leaves"]:
        got = received.get(leaf["node"])
        leaf["verified"] = got is not None and verify(
            [torch.tensor(leaf["vjp"], dtype=torch.float64)], [got]
        )
    return p.jacobian
