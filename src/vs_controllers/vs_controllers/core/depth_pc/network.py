"""DepthPCNet: CNS with the feature fusion module (Zhang et al., "Depth-PC", §III-B, Fig. 4).

Depth-PC is CNS (:class:`~vs_controllers.core.cns.network.GraphVS`) whose node embedding also carries
the keypoint's normalised relative depth. Everything after the node embedding is CNS's code, reused:
the intra-cluster PTConv and cluster fusion of :class:`~vs_controllers.core.cns.layers.Encoder`, the
PERConv → GConvGRU → PERConv backbone, the attentional-pooling decoder and Eq. 3's postprocessing
(:func:`~vs_controllers.core.cns.network.postprocess`). Graphs: :mod:`vs_controllers.core.depth_pc.graph`.

Feature fusion module (:class:`FeatureFusion`), per frame (current and goal alike, shared weights)
    FAL, Eq. 5: ``X = W_pos P̂_norm + b`` (Nn, F), ``D = W_Z Z_norm + b`` (Nn, F).
    Cluster cross attention, Eq. 6–8, over the attention pairs ``(i, j)`` (same cluster, same graph):
    ``S_ij = ⟨X_i, D_j⟩ / √F``; ``A_Z = softmax_j(S)`` (row softmax), ``A_pos = softmax_i(S)``
    (column softmax) share the one score matrix;
    ``X̃_Z,i = Σ_j A_Z,ij D_j`` (coordinates query depth), ``X̃_pos,j = Σ_i A_pos,ij X_i`` (depth queries
    coordinates). Node embedding ``e = ReLU([X̃_pos, X̃_Z])`` (Nn, 2F = H), replacing CNS's ``ReLU(W_in s)``.
Depth embeddings φ_Z (§III-B, "the depth branch of the fused features is fed into MLP")
    Per observed node ``φ_i = [ᶜX̃_Z,i, *X̃_Z,i − ᶜX̃_Z,i]`` (2F); ``g_v = mean_i MLP_v(φ_i)`` (B, 6),
    ``g_l = mean_i MLP_l(φ_i)`` (B, 1), the mean taken **per graph**; the decoupled velocity is scaled
    element-wise: ``v_dir ← g_v ⊙ v_dir``, ``l ← g_l · l``, then Eq. 3 as CNS.

Departures from the authors' code (notes §2.2; each deliberate):

- **Attention stays inside one graph.** The authors' batched version attends over the whole batch's
  concatenated node list in 1024-row blocks, so nodes of different graphs attend each other and, after
  the first block, the keys are the wrong nodes. Here the scores exist only for pairs of one cluster
  of one graph (segment softmax over the pairs), so a graph's output does not depend on its batch.
- **Depth gains are averaged per graph**, not over every node of the batch (the authors' mean over
  dim 0 mixes graphs too).
- **The goal branch uses the goal's depth.** The authors' midend builds the goal graph from the current
  frame's depths; here ``*X̃`` comes from ``z_tar``, the goal observation's relative depth.
- Attention runs over the paper's clusters (Eq. 6, "Cluster Cross Attention") with missing nodes left
  out as queries and keys (the authors attend over all nodes, missing ones with zero inputs); the
  scores are scaled by ``1/√F``; the fusion follows Eq. 8's pairing (row softmax weights depth,
  column softmax weights coordinates).
- **Sizes:** each pathway has ``F = H/2`` channels so the fused node feature has CNS's size ``H`` and
  the whole of CNS's encoder after the embedding (PTConv, cluster fusion ``Linear(2H, H)``) is
  reused and can start from CNS's weights (the authors: ``F = H`` = 128, a 256-channel PTConv and an
  ``MLP([512, 256, 128])`` cluster fusion). The gain heads' last layers start at weight 0, bias 1,
  so an untrained fusion module leaves CNS's velocity unscaled (:meth:`DepthPCNet.warm_start`).
- **Optional residual** (``residual=True``, the shipped ``depthpc_neargoal.pt`` and ``depthpc.pt``): the fused
  features also keep each node's own embeddings, ``[X̃_pos + γ_pos ⊙ X, X̃_Z + γ_Z ⊙ D]`` with per-channel gates
  that start at 0, so a checkpoint trained without it continues from exactly its outputs
  (:meth:`DepthPCNet.load_without_residual`).
  Why: by Eq. 8 a node's coordinate branch is a mean of its cluster's coordinates weighted through its depth
  alone, so its own position reaches the encoder only through PTConv's positional term (:class:`FeatureFusion`).

Shapes: ``Nn`` = total nodes, ``A`` = attention pairs, ``C`` = total clusters, ``B`` = graphs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax
from vs_common.core.errors import InputError, WeightsNotFoundError

from vs_controllers.core.cns.graph import GraphBatch
from vs_controllers.core.cns.layers import Encoder, mlp
from vs_controllers.core.cns.network import GraphVS
from vs_controllers.core.depth_pc.graph import ATTENTION_SCOPES, DEPTH_NORMS, DepthGraphBatch

__all__ = ["DepthPCEncoder", "DepthPCNet", "FeatureFusion"]

CHECKPOINT_FORMAT = "vs_depthpc/1"


class FeatureFusion(nn.Module):
    """Coordinate and depth embeddings fused by bidirectional cross attention (Eqs. 5–8).

    Shapes: s (Nn, P) normalised coordinates, z (Nn,) normalised depth, pairs (2, A) [query i; key j]
    → X̃_pos (Nn, F), X̃_Z (Nn, F); a node in no pair gets zeros.

    With ``residual`` (not in the paper, a departure: see :class:`DepthPCNet`), each output also keeps the
    node's own embedding, scaled per channel by a learned vector that starts at 0 (ReZero / LayerScale):
    ``X̃_pos + γ_pos ⊙ X``, ``X̃_Z + γ_Z ⊙ D``. Eq. 8 alone gives node ``j`` a softmax-weighted mean of its
    cluster's coordinates whose weights depend on ``j`` only through its depth ``z_j`` (and ``X̃_Z,i``
    depends on ``i``'s position only through the scalar ``⟨X_i, w_Z⟩``), so a node's own image position
    reaches the encoder only through PTConv's positional term.
    """

    def __init__(self, pos_dim: int, fusion_dim: int, residual: bool = False) -> None:
        super().__init__()
        self.pos_embed = nn.Linear(pos_dim, fusion_dim)
        self.depth_embed = nn.Linear(1, fusion_dim)
        self.scale = 1.0 / math.sqrt(fusion_dim)
        self.residual = residual
        if residual:
            self.res_pos = nn.Parameter(torch.zeros(fusion_dim))
            self.res_z = nn.Parameter(torch.zeros(fusion_dim))

    def forward(self, s: Tensor, z: Tensor, pairs: Tensor) -> tuple[Tensor, Tensor]:
        # Both FALs are affine, so with D_j = w_Z z_j + b_Z the score is S_ij = z_j α_i + β_i
        # (α = X w_Z/√F, β = X b_Z/√F) and, the weights of a row summing to 1,
        # Σ_j A_Z,ij D_j = FAL_Z(Σ_j A_Z,ij z_j), Σ_i A_pos,ij X_i = FAL_pos(Σ_i A_pos,ij s_i):
        # exactly Eqs. 6-8 with scalar work per pair instead of F-vectors.
        n = s.shape[0]
        i, j = pairs
        X = self.pos_embed(s)
        alpha = X @ self.depth_embed.weight[:, 0] * self.scale
        beta = X @ self.depth_embed.bias * self.scale
        S = z[j] * alpha[i] + beta[i]  # (A,): the one score matrix, stored per pair
        A_Z = softmax(S, i, num_nodes=n)  # each row i normalised over its keys j
        A_pos = softmax(S, j, num_nodes=n)  # each column j normalised over its queries i
        z_hat = scatter(A_Z * z[j], i, dim=0, dim_size=n, reduce="sum")
        s_hat = scatter(A_pos.unsqueeze(-1) * s[i], j, dim=0, dim_size=n, reduce="sum")
        # Pair sets are symmetric: a node is a query iff it is a key.
        paired = (scatter(torch.ones_like(S), i, dim=0, dim_size=n, reduce="sum") > 0).to(s.dtype).unsqueeze(-1)
        fused_z = self.depth_embed(z_hat.unsqueeze(-1))
        fused_pos = self.pos_embed(s_hat)
        if self.residual:
            fused_z = fused_z + self.res_z * self.depth_embed(z.unsqueeze(-1))
            fused_pos = fused_pos + self.res_pos * X
        return fused_pos * paired, fused_z * paired


class DepthPCEncoder(Encoder):
    """CNS's :class:`~vs_controllers.core.cns.layers.Encoder` with the fused node embedding.

    Shapes: as CNS's encoder; needs a :class:`~vs_controllers.core.depth_pc.graph.DepthGraphBatch`.
    """

    def __init__(self, pos_dim: int, hidden_dim: int, residual: bool = False) -> None:
        if hidden_dim % 2:
            raise InputError(f"hidden_dim must be even (two pathways of H/2), got {hidden_dim}")
        super().__init__(pos_dim, pos_dim, hidden_dim)
        del self.embed  # replaced by the fusion module
        self.fusion = FeatureFusion(pos_dim, hidden_dim // 2, residual)
        self._memo: dict[tuple[int, bool], tuple[Tensor, Tensor]] | None = None

    @contextmanager
    def memoised(self, g: GraphBatch | None = None, goal_terms: tuple[Tensor, ...] | None = None) -> Iterator[None]:
        """Within the block, each batch's fused modalities are computed once per frame: the node embedding
        and the depth gains of one forward pass both read them (the same tensors, so the same result).
        With ``goal_terms`` from :meth:`goal_terms` for ``g``'s goal, the goal frame's are not computed at all."""
        self._memo = {}
        if g is not None and goal_terms is not None and len(goal_terms) == 4:
            self._memo[(id(g), False)] = (goal_terms[2], goal_terms[3])
        try:
            yield
        finally:
            self._memo = None

    def goal_terms(self, g: GraphBatch) -> tuple[Tensor, ...]:
        """CNS's goal-branch PTConv terms, then the goal frame's fused (X̃_pos, X̃_Z): all four depend on the
        goal graph alone (its coordinates, depth and attention pairs), so a controller keeps them per goal."""
        return (*super().goal_terms(g), *self.modalities(g, current=False))

    def modalities(self, g: GraphBatch, current: bool) -> tuple[Tensor, Tensor]:
        """Fused (X̃_pos, X̃_Z), (Nn, F) each, of the current (or goal) frame."""
        if not isinstance(g, DepthGraphBatch):
            raise InputError("Depth-PC needs a DepthGraphBatch (collate_depth), not a plain CNS batch")
        key = (id(g), current)
        if self._memo is not None and key in self._memo:
            return self._memo[key]
        out = (self.fusion(g.x_cur, g.z_cur, g.att_cur) if current
               else self.fusion(g.x_tar, g.z_tar, g.att_tar))
        if self._memo is not None:
            self._memo[key] = out
        return out

    def embed_nodes(self, g: GraphBatch, current: bool) -> Tensor:
        """``e = ReLU([X̃_pos, X̃_Z])`` (Nn, H)."""
        return F.relu(torch.cat(self.modalities(g, current), dim=-1))


class DepthPCNet(GraphVS):
    """The Depth-PC policy: Depth-PC graph + hidden state → (v_dir, l, hidden), as GraphVS.

    GraphVS with :class:`DepthPCEncoder` in place of CNS's encoder and the depth-gain heads on its
    outputs; the backbone, decoder and step logic are GraphVS's.

    Args:
        pos_dim: coordinate size (2).
        hidden_dim: H (128, CNS's); each fusion pathway has H/2.
        attention_scope: which node pairs attend (:data:`ATTENTION_SCOPES`); the graphs are built with
            it, the network only records it.
        depth_norm: which keypoints set the depth min–max (:data:`DEPTH_NORMS`); recorded like
            ``attention_scope``, so the controller builds graphs the way the weights were trained.
        residual: keep each node's own coordinate and depth embeddings beside the fused ones, gated per
            channel from 0 (:class:`FeatureFusion`; not in the paper). False: Eq. 8 as written.
    """

    def __init__(self, pos_dim: int = 2, hidden_dim: int = 128, attention_scope: str = "cluster",
                 residual: bool = False, depth_norm: str = "frame") -> None:
        if attention_scope not in ATTENTION_SCOPES:
            raise InputError(f"attention_scope={attention_scope!r}; choose one of {list(ATTENTION_SCOPES)}")
        if depth_norm not in DEPTH_NORMS:
            raise InputError(f"depth_norm={depth_norm!r}; choose one of {list(DEPTH_NORMS)}")
        super().__init__(pos_dim, pos_dim, hidden_dim)
        self.attention_scope, self.depth_norm = attention_scope, depth_norm
        self.encoder: DepthPCEncoder = DepthPCEncoder(pos_dim, hidden_dim, residual)
        self.gain_dir = mlp([hidden_dim, hidden_dim, 6])
        self.gain_norm = mlp([hidden_dim, hidden_dim, 1])
        for head in (self.gain_dir, self.gain_norm):
            last = head[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.ones_(last.bias)

    @property
    def residual(self) -> bool:
        """Whether the fusion module keeps each node's own embeddings (:class:`FeatureFusion`)."""
        return self.encoder.fusion.residual

    def depth_gains(self, g: GraphBatch) -> tuple[Tensor, Tensor]:
        """Per-graph depth gains g_v (B, 6) and g_l (B, 1): node MLPs on φ_Z, mean over each graph's observed nodes."""
        _, z_cur = self.encoder.modalities(g, current=True)
        _, z_tar = self.encoder.modalities(g, current=False)
        assert isinstance(g, DepthGraphBatch)  # modalities() refused anything else
        keep = g.node_mask
        phi = torch.cat([z_cur, z_tar - z_cur], dim=-1)[keep]
        batch = g.node_batch[keep]
        g_v = scatter(self.gain_dir(phi), batch, dim=0, dim_size=g.num_graphs, reduce="mean")
        g_l = scatter(self.gain_norm(phi), batch, dim=0, dim_size=g.num_graphs, reduce="mean")
        return g_v, g_l

    def forward(self, g: GraphBatch, hidden: Tensor | None = None,
                goal_terms: tuple[Tensor, ...] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """One step: GraphVS's, then the depth gains.

        Args:
            g: batched Depth-PC graphs (:class:`DepthGraphBatch`, tensors on the model's device).
            hidden: (C, H) state from the previous step of the same goal graphs, or None (zeros).
            goal_terms: ``self.encoder.goal_terms(g)`` cached for these goal graphs (same result without).

        Returns:
            v_dir (B, 6) scaled direction, l (B, 1) scaled norm logit, hidden (C, H); Eq. 3 with
            :func:`~vs_controllers.core.cns.network.postprocess` gives the twist.
        """
        with self.encoder.memoised(g, goal_terms):
            v_dir, l, hidden = super().forward(g, hidden, goal_terms)
            g_v, g_l = self.depth_gains(g)
        return g_v * v_dir, g_l * l, hidden

    # ---------------------------------------------------------------- weights
    def load_without_residual(self, state: Mapping[str, Tensor]) -> None:
        """Load a checkpoint of the same network trained without ``residual``: every tensor but the residual
        gates, which stay 0, so the loaded network computes exactly what the checkpoint's did.

        Raises:
            InputError: ``state`` lacks any other tensor or holds one this network does not have.
        """
        missing, unexpected = self.load_state_dict(state, strict=False)
        extra = [k for k in missing if not k.endswith((".res_pos", ".res_z"))]
        if extra or unexpected:
            raise InputError(f"state does not fit DepthPCNet: missing {extra}, unexpected {list(unexpected)}")

    def warm_start(self, cns_state: Mapping[str, Tensor]) -> list[str]:
        """Copy every CNS parameter with the same name and shape (PTConv, cluster fusion, backbone, decoder).

        A departure from the paper, which trains from scratch: it fits the CPU budget. The fusion module
        and the gain heads keep their initialisation (gains start at exactly 1).

        Returns:
            The copied keys.
        """
        own = self.state_dict()
        take = {k: v for k, v in cns_state.items() if k in own and own[k].shape == v.shape}
        own.update(take)
        self.load_state_dict(own)
        return sorted(take)

    def checkpoint(self, **meta: Any) -> dict[str, Any]:
        """A self-describing checkpoint dict (``torch.save`` it); ``meta`` is stored alongside."""
        ckpt = super().checkpoint(**meta)
        ckpt.update(format=CHECKPOINT_FORMAT, arch={"pos_dim": self.pos_dim, "hidden_dim": self.hidden_dim,
                                                    "attention_scope": self.attention_scope,
                                                    "residual": self.residual, "depth_norm": self.depth_norm})
        return ckpt

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> DepthPCNet:
        """Load a :meth:`checkpoint` file (``weights_only=True``).

        Raises:
            WeightsNotFoundError: the file does not exist.
            InputError: it is not a Depth-PC checkpoint or does not fit the architecture.
        """
        path = Path(path)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"Depth-PC checkpoint not found: {path}. Train one with "
                "`python -m vs_controllers.training.train_depth_pc --config config/training/depthpc.yaml`.")
        obj = torch.load(path, map_location=map_location, weights_only=True)
        if not (isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT):
            raise InputError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
        net = cls(**obj["arch"])
        try:
            net.load_state_dict(obj["state_dict"])
        except RuntimeError as err:
            raise InputError(f"{path} does not fit DepthPCNet: {err}") from err
        return net.eval()
