"""The numpy functions a generated manual-backprop file defines for itself.

Each is written out into the file (its source, by ``inspect``) when that file's graph
uses it, so the file runs with numpy alone. They are the textbook forms (im2col for a
convolution, the argmax for max pooling), for reading; tests hold each to torch.
Names here are the names in the generated file.
"""

from __future__ import annotations

import base64
import math

import numpy as np


def unbroadcast(g, shape):
    """Sum g down to shape: the dims that broadcasting added or stretched from 1."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def scatter(g, shape, key):
    """The gradient of x[key]: g added into zeros of x's shape where key picked."""
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, key, g)
    return out


def along(index, axis):
    """Where torch's gather and scatter_add reach: element i of index, with its own
    coordinate along axis replaced by the index's value there."""
    where = list(np.indices(index.shape, sparse=True))
    where[axis] = index
    return tuple(where)


def scatter_add(x, axis, index, src):
    """x with src[i] added at along(index, axis)[i], over index's shape (repeats add up)."""
    out = x.copy()
    np.add.at(out, along(index, axis), src[tuple(slice(0, n) for n in index.shape)])
    return out


def gather_grad(g, axis, index, shape):
    """The gradient of what gathered (or was scattered) along axis into g: g read back
    at each element's place, 0 where index did not reach."""
    out = np.zeros(shape, dtype=g.dtype)
    out[tuple(slice(0, n) for n in index.shape)] = g[along(index, axis)]
    return out


def index_add(x, axis, index, src, alpha):
    """x with alpha * src's slices along axis added at the positions index names."""
    out = x.copy()
    np.add.at(np.moveaxis(out, axis, 0), index, alpha * np.moveaxis(src, axis, 0))
    return out


def index_select_grad(g, axis, index, shape):
    """Each selected slice's gradient, added back at its position (repeats add up)."""
    return index_add(np.zeros(shape, dtype=g.dtype), axis, index, g, 1)


def erf(x):
    """The error function, elementwise (numpy has none; math.erf is exact)."""
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def gelu(x):
    return x * 0.5 * (1 + erf(x / math.sqrt(2)))


def gelu_grad(x):
    """d/dx x·Φ(x) = Φ(x) + x·φ(x)."""
    cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return cdf + x * pdf


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def safe_softmax(x, axis):
    """softmax, except that a row masked everywhere (all -inf) gives zeros, not NaN."""
    with np.errstate(invalid="ignore"):  # (-inf) - (-inf) in such a row, replaced below
        s = softmax(x, axis)
    return np.where(np.isneginf(x).all(axis=axis, keepdims=True), np.zeros_like(s), s)


def log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def nll_loss(logp, target, reduction, ignore_index):
    """-logp[i, target[i]], averaged over the targets not ignored (reduction 1), summed
    (2) or kept (0). Also returns the count the mean divides by."""
    logp2 = logp.reshape(-1, logp.shape[-1]) if logp.ndim > 1 else logp.reshape(1, -1)
    t = target.reshape(-1)
    keep = t != ignore_index
    picked = -logp2[np.arange(len(t)), np.where(keep, t, 0)] * keep
    total = np.array(keep.sum(), dtype=logp.dtype)
    if reduction == 0:
        return picked.reshape(target.shape), total
    loss = picked.sum()
    return (loss / total if reduction == 1 else loss).astype(logp.dtype), total


def nll_loss_grad(g, logp, target, reduction, ignore_index, total):
    """-1 (times the upstream, over the count for a mean) at each target class."""
    logp2 = logp.reshape(-1, logp.shape[-1]) if logp.ndim > 1 else logp.reshape(1, -1)
    t = target.reshape(-1)
    keep = t != ignore_index
    scale = g.reshape(-1) if reduction == 0 else (g / total if reduction == 1 else g)
    grad = np.zeros_like(logp2)
    grad[np.arange(len(t)), np.where(keep, t, 0)] = -scale * keep
    return grad.reshape(logp.shape)


def im2col(x, kh, kw, stride, padding):
    """Every kh×kw patch of x (N, C, H, W) as a view (N, C, OH, OW, kh, kw)."""
    x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return windows[:, :, :: stride[0], :: stride[1]]


def conv2d(x, w, b, stride, padding):
    """y[n, o, i, j] = Σ_c,u,v x[n, c, i·s+u, j·s+v] · w[o, c, u, v] + b[o]."""
    cols = im2col(x, w.shape[2], w.shape[3], stride, padding)
    y = np.einsum("ncijuv,ocuv->noij", cols, w)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv2d_grad_weight(g, x, w, stride, padding):
    """∂L/∂w[o, c, u, v] = Σ_n,i,j ∂L/∂y[n, o, i, j] · x[n, c, i·s+u, j·s+v]."""
    cols = im2col(x, w.shape[2], w.shape[3], stride, padding)
    return np.einsum("noij,ncijuv->ocuv", g, cols)


def conv2d_grad_input(g, x, w, stride, padding):
    """∂L/∂x: each output's gradient times the weights, added back onto the patch it read."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2], w.shape[3]
    patches = np.einsum("noij,ocuv->ncijuv", g, w)
    grad = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]), dtype=g.dtype)
    for u in range(kh):
        for v in range(kw):
            grad[
                :,
                :,
                u : u + stride[0] * g.shape[2] : stride[0],
                v : v + stride[1] * g.shape[3] : stride[1],
            ] += patches[..., u, v]
    return grad[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + wd]


def max_pool2d(x, kernel, stride, padding):
    """The max of each window, and where in the window it was (the first, on ties)."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=-np.inf)
    cols = im2col(xp, kernel[0], kernel[1], stride, (0, 0))
    flat = cols.reshape(cols.shape[:4] + (-1,))
    return flat.max(axis=-1), flat.argmax(axis=-1)


def max_pool2d_grad(g, x, argmax, kernel, stride, padding):
    """Each window's gradient goes to its winner alone."""
    n, c, oh, ow = g.shape
    grad = np.zeros((n, c, x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]), dtype=g.dtype)
    u, v = np.divmod(argmax, kernel[1])
    rows = np.arange(oh).reshape(1, 1, -1, 1) * stride[0] + u
    cols = np.arange(ow).reshape(1, 1, 1, -1) * stride[1] + v
    ni, ci = np.indices((n, c, oh, ow))[:2]
    np.add.at(grad, (ni, ci, rows, cols), g)
    return grad[:, :, padding[0] : padding[0] + x.shape[2], padding[1] : padding[1] + x.shape[3]]


def avg_pool2d(x, kernel, stride):
    return im2col(x, kernel[0], kernel[1], stride, (0, 0)).mean(axis=(-2, -1))


def avg_pool2d_grad(g, x, kernel, stride):
    """Each window's gradient, split evenly over its kernel[0]·kernel[1] inputs."""
    grad = np.zeros_like(x)
    share = g / (kernel[0] * kernel[1])
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            grad[
                :,
                :,
                u : u + stride[0] * g.shape[2] : stride[0],
                v : v + stride[1] * g.shape[3] : stride[1],
            ] += share
    return grad


def nearest_index(n_in, n_out, scale):
    """The input row each output row of nearest upsampling copies, computed as ATen does
    (in float32): floor(i * s), with s = 1/scale when the call gave a scale, else
    n_in/n_out."""
    if n_in == n_out:
        return np.arange(n_out)
    s = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * s).astype(np.int64), n_in - 1)


def upsample_nearest2d(x, size, scales):
    rows = nearest_index(x.shape[2], size[0], scales[0])
    cols = nearest_index(x.shape[3], size[1], scales[1])
    return x[:, :, rows][:, :, :, cols]


def upsample_nearest2d_grad(g, shape, size, scales):
    """Each input's gradient: the sum of the outputs that copied it."""
    rows = nearest_index(shape[2], size[0], scales[0])
    cols = nearest_index(shape[3], size[1], scales[1])
    grad = np.zeros(shape, dtype=g.dtype)
    np.add.at(grad, (slice(None), slice(None), rows[:, None], cols[None, :]), g)
    return grad


def linear_source(n_in, n_out, align_corners, scale):
    """For each output position of bilinear upsampling (as ATen computes it): the two input
    positions it blends, and their weights."""
    i = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = i * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        s = 1.0 / scale if scale else n_in / n_out
        src = np.maximum((i + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    far = src - i0
    return i0, i1, 1.0 - far, far


def upsample_bilinear2d(x, size, align_corners, scales):
    h0, h1, a0, a1 = linear_source(x.shape[2], size[0], align_corners, scales[0])
    w0, w1, b0, b1 = linear_source(x.shape[3], size[1], align_corners, scales[1])
    t = x.dtype.type
    rows = x[:, :, h0] * a0[:, None].astype(t) + x[:, :, h1] * a1[:, None].astype(t)
    return rows[..., w0] * b0.astype(t) + rows[..., w1] * b1.astype(t)


def upsample_bilinear2d_grad(g, shape, size, align_corners, scales):
    """Each output's gradient, shared by the four inputs it blended, by their weights:
    columns first, then rows."""
    h0, h1, a0, a1 = linear_source(shape[2], size[0], align_corners, scales[0])
    w0, w1, b0, b1 = linear_source(shape[3], size[1], align_corners, scales[1])
    t = g.dtype.type
    by_cols = np.zeros((shape[0], shape[1], size[0], shape[3]), dtype=g.dtype)
    every = slice(None)
    np.add.at(by_cols, (every, every, every, w0), g * b0.astype(t))
    np.add.at(by_cols, (every, every, every, w1), g * b1.astype(t))
    grad = np.zeros(shape, dtype=g.dtype)
    np.add.at(grad, (every, every, h0), by_cols * a0[:, None].astype(t))
    np.add.at(grad, (every, every, h1), by_cols * a1[:, None].astype(t))
    return grad


def batch_norm(x, weight, bias, eps):
    """Training-mode batch norm over every dim but the channels (dim 1): the output,
    the batch mean and 1/sqrt(var + eps) (the biased variance, as in training)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = [1, -1] + [1] * (x.ndim - 2)
    mean = x.mean(axis=axes)
    invstd = 1 / np.sqrt(x.var(axis=axes) + eps)
    y = (x - mean.reshape(shape)) * invstd.reshape(shape)
    if weight is not None:
        y = y * weight.reshape(shape) + bias.reshape(shape)
    return y, (mean, invstd)


def batch_norm_grad_input(g, x, weight, stats):
    """∂L/∂x = γ·invstd/m · (m·ĝ − Σĝ − x̂·Σ(ĝ·x̂)), m the values per channel."""
    mean, invstd = stats
    axes = (0,) + tuple(range(2, x.ndim))
    shape = [1, -1] + [1] * (x.ndim - 2)
    m = x.size // x.shape[1]
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    gamma = weight.reshape(shape) if weight is not None else 1
    return (
        gamma
        * invstd.reshape(shape)
        / m
        * (
            m * g
            - g.sum(axis=axes, keepdims=True)
            - xhat * (g * xhat).sum(axis=axes, keepdims=True)
        )
    )


def batch_norm_xhat(x, stats):
    mean, invstd = stats
    shape = [1, -1] + [1] * (x.ndim - 2)
    return (x - mean.reshape(shape)) * invstd.reshape(shape)


def layer_norm(x, n, weight, bias, eps):
    """Normalise over the last n dims: the output, the mean and 1/sqrt(var + eps)."""
    axes = tuple(range(x.ndim - n, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    y = (x - mean) * rstd
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y, (mean, rstd)


def layer_norm_grad_input(g, x, n, weight, stats):
    """As batch norm's, over the normalised dims of each row."""
    mean, rstd = stats
    axes = tuple(range(x.ndim - n, x.ndim))
    m = math.prod(x.shape[x.ndim - n :])
    xhat = (x - mean) * rstd
    gh = g * weight if weight is not None else g
    return (
        rstd
        / m
        * (
            m * gh
            - gh.sum(axis=axes, keepdims=True)
            - xhat * (gh * xhat).sum(axis=axes, keepdims=True)
        )
    )


def layer_norm_xhat(x, stats):
    mean, rstd = stats
    return (x - mean) * rstd


def embedding_grad(g, indices, num_weights, padding_idx):
    """Each looked-up row's gradient added into that row (twice, if looked up twice)."""
    grad = np.zeros((num_weights, g.shape[-1]), dtype=g.dtype)
    np.add.at(grad, indices.reshape(-1), g.reshape(-1, g.shape[-1]))
    if padding_idx >= 0:
        grad[padding_idx] = 0
    return grad


def max_along(x, axis, keepdims):
    """x.max(dim): the values and the index of the first maximum."""
    idx = np.expand_dims(x.argmax(axis=axis), axis)
    values = np.take_along_axis(x, idx, axis=axis)
    return (values if keepdims else values.squeeze(axis)), idx


def min_along(x, axis, keepdims):
    idx = np.expand_dims(x.argmin(axis=axis), axis)
    values = np.take_along_axis(x, idx, axis=axis)
    return (values if keepdims else values.squeeze(axis)), idx


def along_grad(g, x, idx, axis, keepdims):
    """The gradient of a max/min along an axis: to the chosen index alone."""
    grad = np.zeros_like(x)
    np.put_along_axis(grad, idx, g if keepdims else np.expand_dims(g, axis), axis=axis)
    return grad


def unpack(data, shape, dtype):
    """An array written into this file as base64 bytes (exact, and shorter than digits)."""
    return np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(shape).copy()


def untile(g, shape, repeats):
    """The gradient of np.tile(x, repeats): every copy's gradient summed onto x."""
    shape = (1,) * (len(repeats) - len(shape)) + tuple(shape)
    g = g.reshape([n for pair in zip(repeats, shape, strict=False) for n in pair])
    return g.sum(axis=tuple(range(0, g.ndim, 2))).reshape(shape[len(repeats) - len(shape) :])


def prod_others(x):
    """For each element, the product of all the others (no division: zeros are fine)."""
    flat = x.reshape(-1)
    left = np.concatenate([np.ones(1, x.dtype), np.cumprod(flat[:-1])])
    right = np.concatenate([np.cumprod(flat[::-1][:-1])[::-1], np.ones(1, x.dtype)])
    return (left * right).reshape(x.shape)
