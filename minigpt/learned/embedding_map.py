"""The token embeddings in two dimensions, moving smoothly from eval to eval.

The chosen tokens' embedding rows are centred and projected onto their first two
principal components. A principal axis has no preferred sign, and two components
of similar size may swap or turn from one eval to the next, so a map by itself
could flip while the embeddings barely moved. Each map is therefore turned (or
mirrored) onto the previous eval's by orthogonal Procrustes over the tokens both
show; the first map's axes get a fixed sign instead. A rotation of the embedding
space changes neither, so the map shows only how the tokens sit relative to each
other.
"""

from __future__ import annotations

import torch

MAP_TOKENS = 300  # at most this many tokens, the corpus's most frequent


def principal_plane(rows: torch.Tensor) -> torch.Tensor:
    """Rows (n, C) projected onto their first two principal components: (n, 2)."""
    centred = rows.double() - rows.double().mean(dim=0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)  # vh: (min(n, C), C)
    plane = centred @ vh[:2].T  # (n, k), k <= 2
    if plane.size(1) < 2:
        plane = torch.cat([plane, plane.new_zeros(plane.size(0), 2 - plane.size(1))], dim=1)
    # Fix each axis's sign: the coordinate farthest from the centre is positive.
    far = plane.abs().argmax(dim=0)  # (2,)
    signs = torch.sign(plane[far, torch.arange(2)])
    return plane * torch.where(signs == 0, torch.ones_like(signs), signs)


def procrustes(points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The orthogonal 2x2 matrix R that brings points (n, 2) closest to target (n, 2)."""
    u, _, vh = torch.linalg.svd(points.T @ target)
    return u @ vh


def embedding_map(
    weight: torch.Tensor,
    ids: list[int],
    previous: dict[int, tuple[float, float]] | None = None,
) -> list[tuple[float, float]]:
    """Each of ids' embedding rows (of weight (vocab, C)) as a point (x, y), turned onto
    the previous map (token id -> point) where it shares at least two tokens with it."""
    if not ids:
        return []
    plane = principal_plane(weight.detach()[ids].cpu())  # (n, 2)
    shared = [i for i, token in enumerate(ids) if previous and token in previous]
    if previous and len(shared) >= 2:
        target = torch.tensor([previous[ids[i]] for i in shared], dtype=plane.dtype)
        plane = plane @ procrustes(plane[shared], target)
    return [(float(x), float(y)) for x, y in plane.tolist()]
