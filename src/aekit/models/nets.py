"""Encoder and decoder builders: MLP and convolutional.

Every encoder maps (N, *input_shape) -> (N, out_dim); every decoder maps
(N, latent_dim) -> (N, *input_shape) *logits* (or means for squared error):
the output non-linearity lives in the model, so losses can use the
numerically stable "with logits" forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from aekit.errors import ConfigError, unknown

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "linear": nn.Identity,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise unknown("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def mlp_encoder(input_shape, hidden, out_dim, act, code_act, dropout: float = 0.0) -> nn.Sequential:
    """Flatten -> [Linear -> act] per hidden width -> Linear(out_dim) -> code_act.

    The layout (one Linear followed by one activation per layer) is what the
    stacked autoencoder's greedy pretraining relies on to pair layers.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), activation(act), *_dropout(dropout)]
        width = h
    layers += [nn.Linear(width, out_dim), activation(code_act)]
    return nn.Sequential(*layers)


def _dropout(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []


def mlp_decoder(latent_dim, hidden, input_shape, act, dropout: float = 0.0) -> nn.Sequential:
    """The mirror of mlp_encoder: Linear -> act per reversed hidden width -> Linear -> reshape."""
    layers: list[nn.Module] = []
    width = latent_dim
    for h in reversed(tuple(hidden)):
        layers += [nn.Linear(width, h), activation(act), *_dropout(dropout)]
        width = h
    layers += [nn.Linear(width, math.prod(input_shape)), nn.Unflatten(1, tuple(input_shape))]
    return nn.Sequential(*layers)


def _conv_sizes(size: int, n: int) -> list[int]:
    """Spatial sizes after each stride-2, kernel-3, padding-1 convolution."""
    sizes = [size]
    for _ in range(n):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def _downsampling(input_shape, channels, act) -> tuple[list[nn.Module], tuple[int, int, int]]:
    """Stride-2 3x3 convolutions, each halving H and W; the layers and the shape of their output."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"a convolutional architecture needs input_shape (C, H, W), got {tuple(input_shape)}"
        )
    c, h, w = input_shape
    layers: list[nn.Module] = []
    for ch in channels:
        layers += [nn.Conv2d(c, ch, kernel_size=3, stride=2, padding=1), activation(act)]
        c = ch
    return layers, (c, _conv_sizes(h, len(channels))[-1], _conv_sizes(w, len(channels))[-1])


def _upsampling(channels, input_shape, act) -> list[nn.Module]:
    """The mirror of _downsampling, from channels[-1] maps to input_shape; output_padding restores
    odd sizes exactly (7 -> 14 -> 28, 8 -> 4 -> 2 -> 4 -> 8). No activation after the last layer."""
    c_in, h, w = input_shape
    hs, ws = _conv_sizes(h, len(channels)), _conv_sizes(w, len(channels))
    layers: list[nn.Module] = []
    outs = list(reversed((c_in, *channels[:-1])))
    c = channels[-1]
    for i, out_c in enumerate(outs):
        level = len(channels) - i  # size index we start from
        th, tw = hs[level - 1], ws[level - 1]
        # ConvTranspose2d(k=3, s=2, p=1) gives 2*s - 1; output_padding adds the missing row/col.
        pad = (th - (2 * hs[level] - 1), tw - (2 * ws[level] - 1))
        layers.append(
            nn.ConvTranspose2d(c, out_c, kernel_size=3, stride=2, padding=1, output_padding=pad)
        )
        if i < len(outs) - 1:
            layers.append(activation(act))
        c = out_c
    return layers


def conv_encoder(input_shape, channels, hidden, out_dim, act, code_act) -> nn.Sequential:
    """Stride-2 3x3 convolutions (each halves H and W), then an MLP head to out_dim."""
    layers, flat_shape = _downsampling(input_shape, channels, act)
    head = mlp_encoder(flat_shape, hidden, out_dim, act, code_act)
    return nn.Sequential(*layers, *head)


def conv_decoder(latent_dim, channels, hidden, input_shape, act) -> nn.Sequential:
    """The mirror of conv_encoder: an MLP to the last feature maps, then transposed convolutions."""
    _, flat_shape = _downsampling(input_shape, channels, act)
    layers: list[nn.Module] = list(mlp_decoder(latent_dim, hidden, flat_shape, act))
    layers.append(activation(act))
    return nn.Sequential(*layers, *_upsampling(channels, input_shape, act))


def code_grid(input_shape, channels) -> tuple[int, int]:
    """(H, W) of the code maps of a fully convolutional code: the input halved once per layer."""
    return _conv_sizes(input_shape[1], len(channels))[-1], _conv_sizes(input_shape[2], len(channels))[-1]


def fully_conv_encoder(input_shape, channels, out_dim, act, code_act) -> nn.Sequential:
    """Stride-2 convolutions, then a 3x3 convolution to out_dim / (h * w) code maps on the last grid,
    flattened (channel by channel). No dense layer: every code value sees only a patch of the input,
    the layout of learned image codecs (Balle et al. 2017), which generalises from few images."""
    layers, (_, h, w) = _downsampling(input_shape, channels, act)
    code_channels = out_dim // (h * w)
    return nn.Sequential(*layers, nn.Conv2d(channels[-1], code_channels, kernel_size=3, padding=1),
                         activation(code_act), nn.Flatten())


def fully_conv_decoder(latent_dim, channels, input_shape, act) -> nn.Sequential:
    """The mirror of fully_conv_encoder: the code maps, a 3x3 convolution, then transposed convolutions."""
    h, w = code_grid(input_shape, channels)
    code_channels = latent_dim // (h * w)
    return nn.Sequential(nn.Unflatten(1, (code_channels, h, w)),
                         nn.Conv2d(code_channels, channels[-1], kernel_size=3, padding=1), activation(act),
                         *_upsampling(channels, input_shape, act))


def encoder(architecture, input_shape, channels, hidden, out_dim, act, code_act, dropout: float = 0.0) -> nn.Sequential:
    """The encoder of an architecture ("mlp", "conv", "fully_conv") to out_dim code values (dropout: MLP only)."""
    if architecture == "fully_conv":
        return fully_conv_encoder(input_shape, channels, out_dim, act, code_act)
    if architecture == "conv":
        return conv_encoder(input_shape, channels, hidden, out_dim, act, code_act)
    return mlp_encoder(input_shape, hidden, out_dim, act, code_act, dropout)


def decoder(architecture, latent_dim, channels, hidden, input_shape, act, dropout: float = 0.0) -> nn.Sequential:
    """The decoder of an architecture, from latent_dim code values to input_shape logits (or means)."""
    if architecture == "fully_conv":
        return fully_conv_decoder(latent_dim, channels, input_shape, act)
    if architecture == "conv":
        return conv_decoder(latent_dim, channels, hidden, input_shape, act)
    return mlp_decoder(latent_dim, hidden, input_shape, act, dropout)


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]



# ----- sizes before building: what the builders above would allocate, from the shapes alone (issue 25) -----


@dataclass(frozen=True)
class Size:
    """One example's pass through an encoder and its decoder, counted from the shapes (nothing built)."""

    parameters: int  # weights and biases
    activations: int  # values one example's forward pass creates (each layer's output and its non-linearity's):
    # what training keeps for the backward pass
    widest: int  # the largest of those outputs (or the input): a pass without gradients holds about two at once
    flops: int  # 2 per multiply-add of one example's forward pass

    def __add__(self, other: Size) -> Size:
        return Size(self.parameters + other.parameters, self.activations + other.activations,
                    max(self.widest, other.widest), self.flops + other.flops)


def _layer(n_in: int, n_out: int, positions: int = 1, kernel: int = 1) -> Size:
    """A dense (kernel 1, positions 1) or 3x3 (kernel 9) layer from n_in to n_out channels at `positions` places."""
    products = n_in * n_out * kernel * positions
    return Size(n_in * n_out * kernel + n_out, 2 * n_out * positions, n_out * positions, 2 * products)


def _mlp_size(widths) -> Size:
    total = Size(0, 0, widths[0], 0)
    for a, b in zip(widths, widths[1:]):
        total += _layer(a, b)
    return total


def _conv_chain(input_shape, channels) -> tuple[list[Size], list[int], list[int]]:
    """The stride-2 layers of _downsampling, and the sizes (H, W) after each."""
    c, h, w = input_shape
    hs, ws = _conv_sizes(h, len(channels)), _conv_sizes(w, len(channels))
    sizes = []
    for i, ch in enumerate(channels):
        sizes.append(_layer(c, ch, hs[i + 1] * ws[i + 1], 9))
        c = ch
    return sizes, hs, ws


def network_size(architecture, input_shape, channels, hidden, out_dim, latent_in, output_shape) -> Size:
    """The Size of encoder(architecture, input_shape, ..., out_dim) and decoder(architecture, latent_in, ...,
    output_shape) together (a conditional encoder's input has more channels than the decoder's output),
    mirroring the builders above; exact parameter counts in Python ints (no overflow), so that a typo like
    latent_dim=10**9 is counted, never allocated."""
    input_shape = tuple(input_shape)
    if architecture == "mlp":
        size, out = math.prod(input_shape), math.prod(output_shape)
        return _mlp_size([size, *hidden, out_dim]) + _mlp_size([latent_in, *reversed(tuple(hidden)), out])
    down, hs, ws = _conv_chain(input_shape, channels)
    total = Size(0, 0, math.prod(input_shape), 0)
    for layer in down:
        total += layer
    last = (channels[-1], hs[-1], ws[-1])
    if architecture == "fully_conv":
        grid = hs[-1] * ws[-1]
        total += _layer(channels[-1], out_dim // grid, grid, 9) + _layer(latent_in // grid, channels[-1], grid, 9)
    else:
        flat = math.prod(last)
        total += _mlp_size([flat, *hidden, out_dim]) + _mlp_size([latent_in, *reversed(tuple(hidden)), flat])
    outs = list(reversed((output_shape[0], *channels[:-1])))
    c = channels[-1]
    for i, out_c in enumerate(outs):  # _upsampling: back up the same sizes
        level = len(channels) - i
        total += _layer(c, out_c, hs[level - 1] * ws[level - 1], 9)
        c = out_c
    return total
