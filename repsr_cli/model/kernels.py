"""Kernel algebra for folding training-time branches into one 3x3 convolution.

Every helper returns a (weight, bias) pair of a convolution; composing them in float64 keeps the fold
exact to rounding, which the tests check at 1e-10. The helpers are differentiable in the parameters they read,
so training can run through the fold (RepSRNet.run); `fuse` copies the result out under no_grad.
"""

from __future__ import annotations

import torch
from torch import nn

Kernel = tuple[torch.Tensor, torch.Tensor]


def conv_kernel(conv: nn.Conv2d) -> Kernel:
    weight = conv.weight
    bias = conv.bias if conv.bias is not None else weight.new_zeros(conv.out_channels)
    return weight, bias


def fold_bn(kernel: Kernel, bn: nn.BatchNorm2d) -> Kernel:
    """BN(conv(x)) with running statistics is one conv: scale each output filter, shift its bias."""
    weight, bias = kernel
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return weight * scale.reshape(-1, 1, 1, 1), (bias - bn.running_mean) * scale + bn.bias


def compose_pointwise(inner: Kernel, outer: Kernel) -> Kernel:
    """A 1x1 conv applied after a kxk conv is one kxk conv (the 1x1 mixes the inner filters)."""
    w_in, b_in = inner
    w_out, b_out = outer
    mix = w_out[:, :, 0, 0]
    return torch.einsum("om,mikl->oikl", mix, w_in), mix @ b_in + b_out


def identity_kernel(channels: int, size: int = 3, like: torch.Tensor | None = None) -> Kernel:
    """The identity map as a conv: a one at the centre tap of each channel's own filter."""
    opts = {"dtype": like.dtype, "device": like.device} if like is not None else {}
    weight = torch.zeros(channels, channels, size, size, **opts)
    weight[torch.arange(channels), torch.arange(channels), size // 2, size // 2] = 1
    return weight, torch.zeros(channels, **opts)


def add_kernels(*kernels: Kernel) -> Kernel:
    """Parallel branches summed at the output are one conv: add weights and biases."""
    return sum(k[0] for k in kernels), sum(k[1] for k in kernels)


def pointwise_then(inner: Kernel, outer: Kernel) -> Kernel:
    """A 1x1 conv followed by a kxk conv (no padding between them) is one kxk conv."""
    w_in, b_in = inner
    w_out, b_out = outer
    weight = torch.einsum("omkl,mi->oikl", w_out, w_in[:, :, 0, 0])
    return weight, w_out.sum(dim=(2, 3)) @ b_in + b_out


def pad_kernel(kernel: Kernel, size: int = 3) -> Kernel:
    """Centre a smaller (k_h x k_w) kernel inside size x size: same output with `size // 2` padding."""
    weight, bias = kernel
    kh, kw = weight.shape[2:]
    top, left = (size - kh) // 2, (size - kw) // 2
    padded = torch.nn.functional.pad(weight, (left, size - kw - left, top, size - kh - top))
    return padded, bias


def depthwise_to_dense(weight: torch.Tensor) -> torch.Tensor:
    """A depthwise (groups = channels) kernel C x 1 x k x k as the equivalent dense C x C x k x k kernel."""
    channels = weight.shape[0]
    dense = torch.zeros(channels, channels, *weight.shape[2:], dtype=weight.dtype, device=weight.device)
    dense[torch.arange(channels), torch.arange(channels)] = weight[:, 0]
    return dense
