"""What a program may reach: exact names, never patterns.

Deny-lists fail here: in torch 2.13 ``torch.os``, ``torch.sys``, ``F.importlib``
and dozens of such paths are plain attributes, so only names written out below
are reachable. Anything starting with ``_`` is refused before a lookup happens.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

from .datasets import data_namespace
from .stdlib import STDLIB_NAMES


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


TORCH = _names("""
    tensor as_tensor from_numpy zeros ones empty full zeros_like ones_like full_like empty_like
    rand randn randint rand_like randn_like randint_like randperm arange linspace logspace eye
    manual_seed seed no_grad enable_grad inference_mode set_grad_enabled is_grad_enabled
    cat concat stack hstack vstack split chunk unbind squeeze unsqueeze reshape flatten
    transpose permute t narrow flip roll movedim
    matmul mm bmm mv dot outer kron einsum cartesian_prod addmm
    sum mean prod max min argmax argmin amax amin std var norm median mode
    abs exp exp2 log log2 log10 log1p expm1 sqrt rsqrt sin cos tan tanh sigmoid relu
    asin acos atan atan2 sinh cosh erf erfc lgamma
    softmax log_softmax logsumexp clamp clip clamp_min clamp_max where maximum minimum fmax fmin
    pow square sign floor ceil round trunc frac neg reciprocal mul add sub div true_divide
    remainder fmod lerp addcmul addcdiv
    allclose isclose equal eq ne gt lt ge le isnan isinf isfinite all any nonzero count_nonzero
    cumsum cumprod diag diagonal tril triu trace masked_fill gather scatter scatter_add
    inverse det
    index_add index_select meshgrid
    masked_select take sort argsort topk numel is_tensor is_floating_point broadcast_tensors
    broadcast_to broadcast_shapes nan_to_num dist cdist sigmoid_ heaviside logical_and logical_or
    logical_not logical_xor bernoulli multinomial normal tile repeat_interleave unique
    float16 float32 float64 bfloat16 half float double int8 int16 int32 int64 uint8 long int bool
    complex64 cfloat
    pi e inf nan
    Tensor Size device dtype Generator
    FloatTensor DoubleTensor LongTensor IntTensor BoolTensor ByteTensor
    set_printoptions set_default_dtype get_default_dtype set_default_device get_default_device
    histogram histc bincount
    nn autograd optim linalg cuda utils backends
""")
#: ``torch.backends``: read-only questions tutorials ask before choosing a device.
BACKENDS = _names("mps cudnn cuda")
BACKENDS_MPS = _names("is_available is_built")
BACKENDS_CUDNN = _names("is_available version")
BACKENDS_CUDA = _names("is_built")
#: ``from torch.autograd.function import once_differentiable``.
AUTOGRAD_FUNCTION = _names("Function once_differentiable")

#: ``gradcheck``: what the custom-Function tutorials say to run on every backward;
#: ``detect_anomaly``: what a NaN hunt turns on; ``Variable``: what older tutorials wrap
#: tensors in (it returns a tensor).
AUTOGRAD = _names("""
    grad backward Function functional gradcheck gradgradcheck
    detect_anomaly set_detect_anomaly Variable function
""")
AUTOGRAD_FUNCTIONAL = _names("jacobian vjp jvp hessian vhp hvp")
LINALG = _names("norm vector_norm matrix_norm inv det solve svd qr eigh cross")
CUDA = _names("is_available device_count manual_seed manual_seed_all synchronize")

NN = _names("""
    Module Parameter Linear Bilinear Conv1d Conv2d ConvTranspose2d MaxPool1d MaxPool2d AvgPool1d
    AvgPool2d AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveMaxPool2d BatchNorm1d BatchNorm2d
    LayerNorm GroupNorm Dropout Dropout2d Embedding Flatten Unflatten Identity
    ReLU ReLU6 LeakyReLU PReLU ELU SELU SiLU Mish Tanh Sigmoid GELU Softplus Softmax LogSoftmax
    Hardtanh Threshold LogSigmoid
    Sequential ModuleList ModuleDict ParameterList
    RNNCell LSTMCell GRUCell RNN LSTM GRU
    MultiheadAttention TransformerEncoderLayer TransformerEncoder Upsample
    MSELoss L1Loss SmoothL1Loss HuberLoss CrossEntropyLoss NLLLoss BCELoss BCEWithLogitsLoss
    KLDivLoss CosineSimilarity
    functional init utils
""")

#: Gradient clipping, the remedy for exploding gradients (RNN tutorials), and the
#: parameters as one vector (second-order and evolutionary methods).
NN_UTILS = _names("clip_grad_norm_ clip_grad_value_ parameters_to_vector vector_to_parameters")

#: ``torch.utils``: only its datasets and loader (``datasets.py``: a loader in-process).
UTILS = _names("data")
DATA = _names("Dataset TensorDataset DataLoader random_split Subset")

NN_INIT = _names("""
    xavier_uniform_ xavier_normal_ kaiming_uniform_ kaiming_normal_ zeros_ ones_ normal_
    uniform_ constant_ eye_ orthogonal_ calculate_gain
""")

FUNCTIONAL = _names("""
    relu relu6 leaky_relu gelu sigmoid tanh softmax log_softmax softplus elu selu silu mish
    hardtanh logsigmoid threshold linear bilinear conv1d conv2d conv_transpose2d max_pool1d
    max_pool2d avg_pool1d avg_pool2d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_max_pool2d
    dropout batch_norm layer_norm group_norm embedding one_hot pad mse_loss l1_loss
    smooth_l1_loss huber_loss cross_entropy nll_loss binary_cross_entropy
    binary_cross_entropy_with_logits kl_div cosine_similarity normalize pairwise_distance
    scaled_dot_product_attention interpolate
""")

OPTIM = _names("SGD Adam AdamW RMSprop Adagrad Adadelta Adamax lr_scheduler Optimizer")
LR_SCHEDULER = _names("""
    StepLR ExponentialLR MultiStepLR CosineAnnealingLR LambdaLR MultiplicativeLR LinearLR
    ConstantLR PolynomialLR OneCycleLR CosineAnnealingWarmRestarts SequentialLR ReduceLROnPlateau
""")

NUMPY = _names("""
    array asarray zeros ones empty full arange linspace eye zeros_like ones_like
    exp log sqrt tanh sin cos abs maximum minimum dot matmul outer sum mean std var max min
    argmax argmin clip where allclose isclose isnan isinf round floor ceil sign power square
    float32 float64 int32 int64 pi e inf nan random concatenate stack vstack hstack transpose
    reshape prod cumsum diag mgrid meshgrid newaxis
    multiply add subtract divide true_divide negative reciprocal exp2 expm1 log1p log2 log10
    sinh cosh arcsin arccos arctan arctan2 absolute median percentile quantile cumprod diff
    sort argsort unique count_nonzero nonzero flatnonzero full_like empty_like squeeze
    expand_dims swapaxes flip roll linalg
""")
NUMPY_LINALG = _names("norm inv det solve")
NUMPY_RANDOM = _names(
    "seed rand randn randint normal uniform choice permutation shuffle default_rng"
)

#: Every namespace a program can import, by the module object it stands for.
NAMESPACES: dict[str, tuple[object, frozenset[str]]] = {
    "torch": (torch, TORCH),
    "torch.nn": (nn, NN),
    "torch.nn.functional": (F, FUNCTIONAL),
    "torch.nn.init": (nn.init, NN_INIT),
    "torch.nn.utils": (nn.utils, NN_UTILS),
    "torch.optim": (optim, OPTIM),
    "torch.optim.lr_scheduler": (optim.lr_scheduler, LR_SCHEDULER),
    "torch.autograd": (torch.autograd, AUTOGRAD),
    "torch.autograd.functional": (torch.autograd.functional, AUTOGRAD_FUNCTIONAL),
    "torch.autograd.function": (torch.autograd.function, AUTOGRAD_FUNCTION),
    "torch.backends": (torch.backends, BACKENDS),
    "torch.backends.mps": (torch.backends.mps, BACKENDS_MPS),
    "torch.backends.cudnn": (torch.backends.cudnn, BACKENDS_CUDNN),
    "torch.backends.cuda": (torch.backends.cuda, BACKENDS_CUDA),
    "torch.linalg": (torch.linalg, LINALG),
    "torch.cuda": (torch.cuda, CUDA),
    "torch.utils": (torch.utils, UTILS),
    "torch.utils.data": (data_namespace(), DATA),
    "numpy": (np, NUMPY),
    "numpy.random": (np.random, NUMPY_RANDOM),
    "numpy.linalg": (np.linalg, NUMPY_LINALG),
    # the pure standard-library modules: their objects are made for each run (stdlib.py)
    **{name: (None, names) for name, names in STDLIB_NAMES.items()},
}

TENSOR_ATTRS = _names("""
    backward grad requires_grad requires_grad_ is_leaf grad_fn data detach detach_ retain_grad
    retains_grad item tolist numpy shape size dim ndim numel nelement dtype device is_cuda T mT H
    t view view_as reshape reshape_as flatten unflatten unsqueeze squeeze permute transpose
    expand expand_as repeat repeat_interleave tile contiguous clone to cpu cuda float double
    half long int bool type_as is_floating_point element_size
    sum mean std var prod max min argmax argmin amax amin norm median logsumexp cumsum cumprod
    abs exp log log2 log10 log1p expm1 sqrt rsqrt sin cos tan tanh sigmoid relu softmax
    log_softmax clamp clamp_min clamp_max clip pow square neg reciprocal sign floor ceil round
    trunc frac erf atan asin acos sinh cosh
    add sub mul div true_divide matmul mm bmm mv dot outer remainder fmod lerp maximum minimum
    where masked_fill gather scatter scatter_add index_add index_select masked_select chunk split
    unbind narrow flip
    roll tril triu diag diagonal trace topk sort argsort all any isnan isinf isfinite
    inverse det
    nan_to_num eq ne gt lt ge le equal allclose isclose logical_not nonzero count_nonzero
    new_zeros new_ones new_full new_tensor new_empty sum_to_size squeeze_ unsqueeze_ t_
    zero_ fill_ normal_ uniform_ copy_ add_ sub_ mul_ div_ pow_ clamp_ clamp_min_ abs_ exp_
    sqrt_ neg_ relu_ sigmoid_ tanh_ masked_fill_ fill_diagonal_ bernoulli_ scatter_ scatter_add_
    index_add_ index_fill_
    random_ exponential_ log_ floor_ ceil_ round_ sign_ addcmul_ addcdiv_ lerp_ transpose_
    resize_as_ requires_grad is_contiguous stride storage_offset type unique is_inference
    register_hook
""") - {"storage_offset", "resize_as_"}

#: ``torch.Tensor.tanh`` as a function (``map(torch.Tensor.tanh, xs)``): the tensor methods
#: that compute, not those that start a backward pass or hold the program's functions.
UNBOUND_TENSOR_METHODS = frozenset(
    n
    for n in TENSOR_ATTRS
    if callable(getattr(torch.Tensor, n, None))
    and n
    not in {
        "backward",
        "register_hook",
        "retain_grad",
        "requires_grad_",
        "type",
        "numpy",
        "tolist",
        "item",
    }
)

NDARRAY_ATTRS = _names("""
    shape dtype ndim size T sum mean max min std var argmax argmin reshape astype tolist item
    copy flatten transpose dot clip round cumsum prod any all squeeze
""")

MODULE_METHODS = _names("""
    parameters named_parameters buffers named_buffers children named_children modules
    named_modules zero_grad train eval to cpu cuda float double forward requires_grad_
    state_dict load_state_dict add_module append extend insert keys values items apply
    register_buffer register_parameter register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook extra_repr
""")

#: (``state_dict`` reads; ``load_state_dict`` deep-copies whatever values the program put in
#: the dict, its own functions and classes included: not on the list.)
OPTIMIZER_ATTRS = _names("zero_grad step param_groups state add_param_group defaults state_dict")
SCHEDULER_ATTRS = _names("step get_last_lr last_epoch")
GRAD_FN_ATTRS = _names("name next_functions")
#: What ``t.register_hook(f)`` returns.
HANDLE_ATTRS = _names("remove")
CTX_ATTRS = _names(
    "save_for_backward saved_tensors needs_input_grad mark_dirty mark_non_differentiable set_materialize_grads"
)
DTYPE_ATTRS = _names("is_floating_point is_complex itemsize is_signed")
DEVICE_ATTRS = _names("type index")
SIZE_ATTRS = _names("numel count index")
RETURN_TYPE_ATTRS = _names("values indices hist bin_edges")
LOADER_ATTRS = _names("dataset batch_size drop_last")
#: TensorDataset's tensors; a Subset's dataset and indices (what random_split returns).
DATASET_ATTRS = _names("tensors dataset indices")
RNG_ATTRS = _names("random normal uniform integers choice permutation shuffle standard_normal")
#: A torch.Generator (makemore: ``torch.Generator().manual_seed(2147483647)``, passed as
#: ``generator=g``).
GENERATOR_ATTRS = _names("manual_seed seed initial_seed device")
#: What the collections a program may make add to a dict's or a list's methods.
COUNTER_ATTRS = _names("most_common elements subtract total")
ORDERED_DICT_ATTRS = _names("move_to_end popitem")
DEQUE_ATTRS = _names("""
    append appendleft pop popleft extend extendleft rotate clear count index insert remove
    reverse copy maxlen
""")

LIST_ATTRS = _names("append extend insert pop remove index count reverse sort copy clear")
DICT_ATTRS = _names("keys values items get update pop setdefault copy clear")
STR_ATTRS = _names("""
    upper lower title capitalize strip lstrip rstrip split rsplit join replace startswith
    endswith find count format center ljust rjust zfill isdigit isalpha splitlines
""")
TUPLE_ATTRS = _names("index count")
SET_ATTRS = _names("""
    add discard remove pop clear update union intersection difference symmetric_difference
    copy issubset issuperset isdisjoint
""")
FLOAT_ATTRS = _names("is_integer real imag")
INT_ATTRS = _names("bit_length real imag")

#: Python's builtins a program may call; everything else in ``builtins`` is refused statically.
BUILTINS = _names("""
    print range len abs min max sum float int round enumerate zip list tuple isinstance bool
    str dict set sorted reversed any all map filter pow divmod hasattr super staticmethod
    iter next hash type
    True False None Exception RuntimeError ValueError TypeError IndexError KeyError
    ZeroDivisionError AssertionError ArithmeticError StopIteration NotImplementedError
    AttributeError NameError
""") - {"hasattr"}

#: Exceptions a program may name in ``except`` and ``raise``.
EXCEPTIONS: dict[str, type[BaseException]] = {
    e.__name__: e
    for e in (
        Exception,
        RuntimeError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        ZeroDivisionError,
        AssertionError,
        ArithmeticError,
        StopIteration,
        NotImplementedError,
        AttributeError,
        NameError,
    )
}
