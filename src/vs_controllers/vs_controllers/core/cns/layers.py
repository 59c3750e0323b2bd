"""Graph layers of the CNS policy (Chen et al., "CNS: Correspondence Encoded Neural Image Servo Policy", §III-B).

The building blocks that :class:`~vs_controllers.core.cns.network.GraphVS` stacks and that Depth-PC
(which extends CNS with per-keypoint depth) reuses: the keypoint encoder with intra-cluster
Point-Transformer convolution, the point-edge convolution, PERConv and the graph-convolutional GRU.
Each is the authors' layer, parameter for parameter, so their released weights load into it.

Symbols (paper §III): node ``j`` is a goal keypoint with current / goal normalised image coordinates
``ᶜs_j`` / ``*s_j`` (``x = (u - cx)/fx``, ``y = (v - cy)/fy``); cluster ``k`` has centre keypoint
``*c_k``; ``E⁰`` are node → own-cluster-centre edges (pruned of missing nodes), ``E¹`` the dense
cluster ↔ cluster edges with self-loops (``ᶜE¹`` pruned of clusters with no observed member, ``*E¹``
full; paper Eqs. 1–2). ``H`` = hidden size (128).

Encoder (:class:`Encoder`)
    ``e = ReLU(W_in s)`` for current and goal coordinates (shared ``W_in``, (2 → H)).
    PTConv (PyG ``PointTransformerConv``, per-channel vector attention, Zhao et al. 2021) over ``E⁰``
    aggregates each cluster's *observed* members into its centre, once with current features
    (source pos ``[ᶜs_j, *s_j]``) and once with goal features (source pos ``[*s_j, *s_j]``), the centre
    carrying ``e(*c_k)`` and pos ``[*c_k, *c_k]``:
    ``y_k = Σ_j softmax_j(γ(W_dst e_k − W_src e_j + δ_kj)) ⊙ (W e_j + δ_kj)``, ``δ_kj = θ(pos_k − pos_j)``.
    Cluster feature ``f_k = ReLU(W_out [ᶜy_k, *y_k − ᶜy_k]) · mask_k``.
PERConv (:class:`PERConv`, on clusters, pos = goal centre ``*c_k``)
    ``x' = x + W_fc ReLU(GraphNorm(max_{l∈N(k)} W_m [x_k, x_l − x_k, pos_l − pos_k]))``.
GConvGRU (:class:`GConvGRU`, paper Eq. 7)
    ``[r, z] = σ(PEConv_g([x, h], *E¹))``, ``h̃ = tanh(PEConv_c([x, r ⊙ h], ᶜE¹))``,
    ``h' = (1 − z) ⊙ h + z ⊙ h̃``.

Shapes: ``Nn`` = total nodes in the batch, ``C`` = total clusters, ``B`` = graphs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing, PointTransformerConv
from torch_geometric.nn.norm import GraphNorm
from torch_geometric.utils import scatter, softmax

from vs_controllers.core.cns.graph import GraphBatch

__all__ = ["Encoder", "GConvGRU", "PERConv", "PointEdgeConv", "mlp"]


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear → ReLU → ... → Linear (no activation after the last layer), the authors' ``MLP``."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
    return nn.Sequential(*layers)


class PointEdgeConv(MessagePassing):
    """EdgeConv with relative positions and max aggregation: ``max_l W [x_k, x_l − x_k, p_l − p_k] + b``.

    ``W`` is linear, so the message splits into a target and a source term,
    ``(W_x − W_d) x_k − W_p p_k + b`` and ``W_d x_l + W_p p_l``, computed once per vertex instead of
    once per edge (the dense cluster graph has C² edges); the result is the same up to rounding.
    A vertex without in-edges gets 0 (PyG's empty max). Shapes: x (C, F), pos (C, P), edge_index
    (2, E) as [source l; target k] → (C, out).
    """

    def __init__(self, in_channels: int, out_channels: int, pos_dim: int) -> None:
        super().__init__(aggr="max")
        self.in_channels = in_channels
        self.msg = nn.Linear(2 * in_channels + pos_dim, out_channels)

    def forward(self, x: Tensor, pos: Tensor, edge_index: Tensor) -> Tensor:
        f = self.in_channels
        w_x, w_d, w_p = self.msg.weight[:, :f], self.msg.weight[:, f:2 * f], self.msg.weight[:, 2 * f:]
        p = pos @ w_p.T
        target = F.linear(x, w_x - w_d, self.msg.bias) - p
        source = x @ w_d.T + p
        return self.propagate(edge_index, target=target, source=source, size=(x.shape[0], x.shape[0]))

    def message(self, target_i: Tensor, source_j: Tensor) -> Tensor:
        return target_i + source_j


class PERConv(nn.Module):
    """Point-edge residual convolution (paper §III-B): ``x + W_fc ReLU(GraphNorm(PointEdgeConv(x)))``.

    Shapes: x (C, F), pos (C, P), edge_index (2, E), batch (C,) graph of each vertex → (C, F).
    """

    def __init__(self, channels: int, pos_dim: int) -> None:
        super().__init__()
        self.edge_conv = PointEdgeConv(channels, channels, pos_dim)
        self.norm = GraphNorm(channels)
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: Tensor, pos: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        y = self.norm(self.edge_conv(x, pos, edge_index), batch, num_graphs)
        return x + self.fc(F.relu(y))


class GConvGRU(nn.Module):
    """GRU whose gate and candidate maps are :class:`PointEdgeConv` s (paper Eq. 7).

    The gates see the full goal edge set ``*E¹`` (so masked clusters still update their memory), the
    candidate only the currently observed one ``ᶜE¹``.

    Shapes: x, h (C, H), pos (C, P), e_cur (2, E1c), e_tar (2, E1t) → h' (C, H).
    """

    def __init__(self, channels: int, pos_dim: int) -> None:
        super().__init__()
        self.gates = PointEdgeConv(2 * channels, 2 * channels, pos_dim)
        self.candidate = PointEdgeConv(2 * channels, channels, pos_dim)

    def forward(self, x: Tensor, h: Tensor, pos: Tensor, e_cur: Tensor, e_tar: Tensor) -> Tensor:
        r, z = torch.sigmoid(self.gates(torch.cat([x, h], dim=-1), pos, e_tar)).chunk(2, dim=-1)
        h_tilde = torch.tanh(self.candidate(torch.cat([x, r * h], dim=-1), pos, e_cur))
        return (1.0 - z) * h + z * h_tilde


class Encoder(nn.Module):
    """Keypoint embedding + intra-cluster PTConv + cluster feature fusion (paper §III-B).

    PyG's ``PointTransformerConv`` holds the PTConv parameters; its message is evaluated here in two
    parts, per-edge attention logits ``γ(W_dst e_k − W_src e_j + δ_kj)`` and values ``W e_j + δ_kj``,
    then a per-channel softmax and a sum over each cluster's observed members (exactly PyG's
    ``message`` / ``aggregate``). The split lets the goal branch, whose logits and values depend on
    the goal alone, be computed once per goal (:meth:`goal_terms`) and only re-aggregated over the
    members observed in each frame.

    Shapes: node coordinates (Nn, input_dim), positions (Nn, 2·pos_dim) → cluster features (C, H).
    """

    def __init__(self, input_dim: int, pos_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.embed = nn.Linear(input_dim, hidden_dim)
        self.cluster_conv = PointTransformerConv(
            hidden_dim, hidden_dim,
            pos_nn=mlp([2 * pos_dim, hidden_dim, hidden_dim]),
            attn_nn=mlp([hidden_dim, hidden_dim, hidden_dim]),
            add_self_loops=False)
        self.fuse = nn.Linear(2 * hidden_dim, hidden_dim)

    def embed_nodes(self, g: GraphBatch, current: bool) -> Tensor:
        """Node embeddings ``e = ReLU(W_in s)`` (Nn, H) of the current (or goal) keypoints.

        The one place a subclass changes what a node carries (Depth-PC fuses depth in here).
        """
        return F.relu(self.embed(g.x_cur if current else g.x_tar))

    def _ptconv_terms(self, e_src: Tensor, e_dst: Tensor, pos_src: Tensor, pos_dst: Tensor, src: Tensor,
                      dst: Tensor) -> tuple[Tensor, Tensor]:
        """Per-edge PTConv logits and values, (E, H) each, for edges ``src → dst``."""
        conv = self.cluster_conv
        delta = conv.pos_nn(pos_dst[dst] - pos_src[src])
        logits = conv.attn_nn(conv.lin_dst(e_dst)[dst] - conv.lin_src(e_src)[src] + delta)
        return logits, conv.lin(e_src)[src] + delta

    @staticmethod
    def _aggregate(logits: Tensor, values: Tensor, dst: Tensor, num_dst: int) -> Tensor:
        alpha = softmax(logits, dst, num_nodes=num_dst)
        return scatter(alpha * values, dst, dim=0, dim_size=num_dst, reduce="sum")

    def goal_terms(self, g: GraphBatch) -> tuple[Tensor, ...]:
        """Goal-branch PTConv logits and values of every node's (unpruned) E⁰ edge, (Nn, H) each."""
        e_tar = self.embed_nodes(g, current=False)
        pos = torch.cat([g.x_tar, g.x_tar], dim=-1)
        nodes = torch.arange(g.x_tar.shape[0], device=g.x_tar.device)
        return self._ptconv_terms(e_tar, e_tar[g.cluster_centers], pos, pos[g.cluster_centers], nodes, g.node_cluster)

    def forward(self, g: GraphBatch, goal_terms: tuple[Tensor, ...] | None = None) -> Tensor:
        """Cluster features f (C, H), zero for clusters with no observed member.

        Args:
            g: the batch.
            goal_terms: :meth:`goal_terms` of the same goal graphs (cached by the caller), or None.
        """
        src, dst = g.e01
        num_c = g.cluster_centers.shape[0]
        centres = g.cluster_centers
        e_cur = self.embed_nodes(g, current=True)
        e_tar = self.embed_nodes(g, current=False)
        pos_c = g.x_tar[centres]
        pos_dst = torch.cat([pos_c, pos_c], dim=-1)
        y_cur = F.relu(self._aggregate(*self._ptconv_terms(
            e_cur, e_tar[centres], torch.cat([g.x_cur, g.x_tar], dim=-1), pos_dst, src, dst), dst, num_c))
        if goal_terms is None:
            terms = self._ptconv_terms(e_tar, e_tar[centres], torch.cat([g.x_tar, g.x_tar], dim=-1), pos_dst,
                                       src, dst)
        else:
            terms = (goal_terms[0][src], goal_terms[1][src])
        y_tar = F.relu(self._aggregate(*terms, dst, num_c))
        f = F.relu(self.fuse(torch.cat([y_cur, y_tar - y_cur], dim=-1)))
        return f * g.cluster_mask.unsqueeze(-1).to(f.dtype)
