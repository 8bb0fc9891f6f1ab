"""Regularisers added to the reconstruction loss: one function per formula.

All return a scalar per example (averaged over the batch) before weighting,
except the KL sparsity penalty, which is defined on batch statistics.
"""

from __future__ import annotations

import torch
from torch import nn

# Keeps log() finite when a sigmoid unit saturates at exactly 0 or 1 in float32.
_EPS = 1e-6


def l1_activity(z: torch.Tensor) -> torch.Tensor:
    """sum_j |z_j|, averaged over the batch (the L1 sparsity penalty on the code)."""
    return z.abs().flatten(1).sum(1).mean()


def kl_sparsity(z: torch.Tensor, rho: float) -> torch.Tensor:
    """sum_j KL(rho || rho_hat_j) with rho_hat_j the batch-mean activation of unit j.

    Ng, "Sparse autoencoder" (CS294A notes), eq. for the sparsity penalty:
    KL(rho || rho_hat) = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)).
    The code units must be sigmoid so that rho_hat_j lies in (0, 1).
    """
    rho_hat = z.flatten(1).mean(0).clamp(_EPS, 1 - _EPS)
    return (
        rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    ).sum()


def sigmoid_layer_frobenius(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """||J||_F^2 for h = sigmoid(W x + b), in closed form, averaged over the batch.

    Rifai et al. 2011, eq. 5: J = diag(h (1 - h)) W, so
    ||J||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ji^2.
    """
    return ((h * (1 - h)) ** 2 @ (weight**2).sum(1)).mean()


def jacobian_frobenius_estimate(encoder: nn.Module, x: torch.Tensor, projections: int = 1,
                                z: torch.Tensor | None = None) -> torch.Tensor:
    """An unbiased estimate of ||J_f(x)||_F^2 averaged over the batch, from `projections` random VJPs.

    Hutchinson (1990): for u ~ N(0, I_k), E[u^T A u] = tr(A); with A = J J^T,
    E ||J^T u||^2 = tr(J J^T) = ||J||_F^2. Each projection costs one
    vector-Jacobian product, whatever the code size (the exact form needs k).
    Pass z = encoder(x) computed from an x that requires grad to reuse that
    forward pass (the training loss does); otherwise the encoder runs here.
    """
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        if z is None or not z.requires_grad or not x.requires_grad:
            x = x.detach().requires_grad_(True)
            z = encoder(x)
        total = 0.0
        for _ in range(projections):
            (g,) = torch.autograd.grad(z, x, grad_outputs=torch.randn_like(z), create_graph=create_graph,
                                       retain_graph=True)
            total = total + g.float().pow(2).flatten(1).sum(1).mean()
    return total / projections


def jacobian_frobenius(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """||J_f(x)||_F^2 averaged over the batch, exact (see jacobian_frobenius_per_example)."""
    return jacobian_frobenius_per_example(encoder, x).mean()


def jacobian_frobenius_per_example(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """||J_f(x)||_F^2 of every example (N,), exact, for any per-example encoder.

    Row j of every example's Jacobian is the gradient of sum_n z_nj with respect
    to x (examples do not interact), so latent_dim vector-Jacobian products give
    the whole Jacobian: the cost grows with the code size, not the input size.
    Works in eval mode and under torch.no_grad() (autograd is switched on here);
    the graph is kept for the backward pass only when gradients were enabled.
    """
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        z = encoder(x).flatten(1)
        k = z.shape[1]
        basis = torch.eye(k, dtype=z.dtype, device=z.device).unsqueeze(1).expand(k, *z.shape)
        (rows,) = torch.autograd.grad(
            z, x, grad_outputs=basis, is_grads_batched=True, create_graph=create_graph
        )
    # rows: (k, N, *input_shape) -> sum of squares over code dims and input features.
    return rows.pow(2).sum(dim=[0, *range(2, rows.dim())])


def code_rate_bits(z: torch.Tensor, density: torch.Tensor, width: float) -> torch.Tensor:
    """The code's rate in bits, -sum_j log2 P(z_j), averaged over the batch, under independent logistic
    densities (loc_j = density[0, j], scale_j = exp(density[1, j])) convolved with U(-w/2, w/2):

        P(z_j) = sigmoid((z_j - loc_j + w/2) / s_j) - sigmoid((z_j - loc_j - w/2) / s_j),

    the probability of the quantisation bin of width w around z_j (Balle et al. 2017, "End-to-end
    optimized image compression", eqs. 6-7: for z = y + U(-w/2, w/2) this density is the rate the
    rounded code will cost, up to the entropy coder's overhead).
    """
    loc, scale = density[0], density[1].exp()
    # The logistic is symmetric about loc: evaluate at loc + |z - loc|, where both sigmoids are small
    # and their difference keeps its digits in float32 far in the tail.
    d = (z - loc).abs()
    p = torch.sigmoid((width / 2 - d) / scale) - torch.sigmoid((-width / 2 - d) / scale)
    return -torch.log2(p.clamp_min(1e-9)).flatten(1).sum(1).mean()
