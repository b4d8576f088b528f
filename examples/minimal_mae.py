"""A masker in a minimal hand-written skeleton MAE: ``python examples/minimal_mae.py [steps]``."""

from __future__ import annotations

import sys

import torch
from torch import nn

from skelmask import MotionAwareMasker, flatten_grid, gather_tokens, patchify, restore_tokens

T, V, T_PATCH, WIDTH = 32, 25, 4, 64


class TinyMAE(nn.Module):
    """Patch embedding, a masker, a 2-layer encoder on visible tokens, a linear decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(T_PATCH * 3, WIDTH)
        self.pos = nn.Parameter(torch.zeros(1, T // T_PATCH, V, WIDTH))
        layer = nn.TransformerEncoderLayer(WIDTH, 4, 2 * WIDTH, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.mask_token = nn.Parameter(torch.zeros(WIDTH))
        self.decoder = nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.GELU(), nn.Linear(WIDTH, 12))
        self.masker = MotionAwareMasker(mask_ratio=0.9, t_patch=T_PATCH)  # <- any masker

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Masked reconstruction loss of coordinates ``(B, T, V, 3)``."""
        patches = patchify(coords, T_PATCH)  # (B, Tp, V, 12)
        tokens = self.embed(patches) + self.pos  # (B, Tp, V, D)
        result = self.masker(tokens, coords=coords)
        visible = self.encoder(gather_tokens(flatten_grid(tokens), result.ids_keep))
        full = restore_tokens(visible, result.ids_restore, self.mask_token) + flatten_grid(self.pos)
        error = (self.decoder(full) - flatten_grid(patches)).pow(2).mean(dim=-1)  # (B, L)
        return (error * result.mask).sum() / result.mask.sum()  # hidden tokens only


def main() -> None:
    """Trains the tiny MAE on swaying copies of one skeleton and prints the loss."""
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    torch.manual_seed(0)
    model = TinyMAE()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    template, time = torch.randn(1, 1, V, 3), torch.linspace(0, 6.3, T).view(1, T, 1, 1)
    for step in range(steps):
        speed, phase = torch.rand(16, 1, 1, 1) + 0.5, torch.rand(16, 1, 1, 1) * 6.3
        loss = model(template + 0.5 * torch.sin(speed * time + phase) * template.flip(2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 40 == 0 or step == steps - 1:
            print(f"step {step:4d}  masked reconstruction loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
