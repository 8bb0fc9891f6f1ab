"""Greedy layer-wise pretraining for the stacked autoencoder (Bengio et al. 2007;
Vincent et al. 2010 for stacked denoising autoencoders).

Layer i of the deep MLP encoder and its mirror in the decoder form a shallow
autoencoder that learns to reconstruct the codes of layer i - 1 (the input for
i = 0). The shallow models share their parameters with the deep one, so once
every layer is pretrained the deep model starts fine-tuning from them. Each
shallow model keeps the kind's noise, sparsity and contractive options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from torch import nn

from aekit.models.autoencoder import Autoencoder


class GreedyLayer(NamedTuple):
    """One greedy stage: a shallow autoencoder sharing parameters with the deep model, and the
    frozen layers below it that turn the input rows into its training data (None for the first)."""

    name: str
    model: Autoencoder
    features: Callable | None


def _layers(seq: nn.Sequential) -> list[tuple[nn.Linear, nn.Module]]:
    """(Linear, the module right after it) pairs of an MLP built by nets."""
    mods = list(seq)
    return [(m, mods[i + 1]) for i, m in enumerate(mods) if isinstance(m, nn.Linear)]


def greedy_layers(model: Autoencoder) -> list[GreedyLayer]:
    """One GreedyLayer per encoder layer of an MLP model (config.validate refuses other architectures)."""
    c = model.config
    enc, dec = _layers(model.encoder), _layers(model.decoder)
    widths = [c.input_size, *c.hidden, c.latent_dim]
    layers = []
    for i, (linear, act) in enumerate(enc):
        mirror, after = dec[len(dec) - 1 - i]
        first = i == 0
        layer_config = dataclasses.replace(
            c,
            kind="stacked-layer",
            input_shape=c.input_shape if first else (widths[i],),
            latent_dim=widths[i + 1],
            hidden=(),
            code_activation=c.code_activation if i == len(enc) - 1 else c.activation,
            # Above the first layer the targets are hidden activations: squared error.
            reconstruction=c.reconstruction if first else "mse",
            pretrain_epochs=0,
            init="random",
        )
        layer_config.validate()
        encoder = nn.Sequential(nn.Flatten(), linear, act) if first else nn.Sequential(linear, act)
        # The first layer's mirror ends with the Unflatten back to the input shape;
        # higher mirrors end with the activation that produced their target.
        decoder = nn.Sequential(mirror, after)
        shallow = Autoencoder(layer_config, encoder=encoder, decoder=decoder)
        # The frozen layers below this one (a Sequential is itself the features function).
        features = None if first else nn.Sequential(nn.Flatten(), *[m for pair in enc[:i] for m in pair])
        layers.append(GreedyLayer(f"pretrain_layer_{i + 1}", shallow, features))
    return layers
