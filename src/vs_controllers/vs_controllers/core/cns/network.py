"""GraphVS: the CNS policy network (Chen et al., "CNS: Correspondence Encoded Neural Image Servo Policy").

The network maps a correspondence graph (see :mod:`vs_controllers.core.cns.graph`) and a recurrent
state to a distance-decoupled camera twist. It is the authors' architecture layer for layer, so their
released weights load through :data:`AUTHORS_KEY_MAP` (``GraphVS.from_checkpoint``). The layers it
stacks, with their equations and the symbols used here, are in :mod:`vs_controllers.core.cns.layers`.

Encoder (:class:`~vs_controllers.core.cns.layers.Encoder`)
    Keypoint embedding and intra-cluster PTConv over ``E⁰`` → cluster features ``f`` (C, H).
Backbone (on clusters, pos = goal centre ``*c_k``)
    ``x = ReLU(PERConv₀(f, ᶜE¹))``; ``h' = GConvGRU(x, h)`` (paper Eq. 7); ``x = ReLU(PERConv₁(h', ᶜE¹))``.
Decoder
    Attentional pooling over observed clusters → scene vector ``g`` (B, H); two MLP heads give the
    direction ``v_dir`` (B, 6) and the norm logit ``l`` (B, 1).
Output (paper Eq. 3 as the authors' code computes it, with one norm over all six components where
the paper writes separate norms for v and ω; the released weights need the code's form)
    ``v_dd = v_dir / ‖v_dir‖ · T(l)``, ``T(l) = 1 + ELU(l)``; ``v = v_dd[:3] · d``, ``ω = v_dd[3:]``,
    with ``d`` the distance prior (camera-to-scene-centre distance at the goal, metres).

Shapes: ``Nn`` = total nodes in the batch, ``C`` = total clusters, ``B`` = graphs, ``H`` = hidden size.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.aggr import AttentionalAggregation
from vs_common.core.errors import InputError, WeightsNotFoundError

from vs_controllers.core.cns.graph import GraphBatch
from vs_controllers.core.cns.layers import Encoder, GConvGRU, PERConv, mlp

__all__ = ["AUTHORS_KEY_MAP", "GraphVS", "T", "T_inv", "postprocess", "map_authors_state_dict"]

CHECKPOINT_FORMAT = "vs_cns/1"


def T(l: Tensor) -> Tensor:
    """Norm activation of Eq. 3: ``T(l) = 1 + ELU(l)`` (> 0, exponential decay below 0, linear above)."""
    return 1.0 + F.elu(l)


def T_inv(y: Tensor) -> Tensor:
    """Inverse of :func:`T` used for the norm target of Eq. 4 (``y - 1`` for ``y ≥ 1``, else ``log y``)."""
    return torch.where(y >= 1.0, y - 1.0, torch.log(y.clamp_min(0.0) + 1e-5))


def postprocess(v_dir: Tensor, l: Tensor, d: Tensor) -> Tensor:
    """Eq. 3: direction, norm logit and distance prior → camera twist.

    Args:
        v_dir: (B, 6) predicted direction.
        l: (B, 1) predicted norm logit.
        d: (B,) distance prior (m).

    Returns:
        (B, 6) twist ``[vx, vy, vz, wx, wy, wz]`` in the current camera optical frame (m/s, rad/s),
        per unit of the authors' gain (see the controller for the time scaling).
    """
    v_dd = v_dir / (v_dir.norm(dim=-1, keepdim=True) + 1e-7) * T(l)
    return torch.cat([v_dd[:, :3] * d.reshape(-1, 1), v_dd[:, 3:]], dim=-1)


class Backbone(nn.Module):
    """PERConv → GConvGRU → PERConv over the cluster graph (paper Fig. 3, Eq. 7).

    Shapes: f, h (C, H) → x, h' (C, H).
    """

    def __init__(self, pos_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.perconv0 = PERConv(hidden_dim, pos_dim)
        self.gru = GConvGRU(hidden_dim, pos_dim)
        self.perconv1 = PERConv(hidden_dim, pos_dim)

    def forward(self, f: Tensor, h: Tensor, g: GraphBatch) -> tuple[Tensor, Tensor]:
        pos = g.x_tar[g.cluster_centers]
        x = F.relu(self.perconv0(f, pos, g.e11_cur, g.cluster_batch, g.num_graphs))
        h = self.gru(x, h, pos, g.e11_cur, g.e11_tar)
        x = F.relu(self.perconv1(h, pos, g.e11_cur, g.cluster_batch, g.num_graphs))
        return x, h


class Decoder(nn.Module):
    """Attentional pooling over observed clusters, then direction and norm heads (inputs of Eq. 3).

    Shapes: x (C, H) → v_dir (B, 6), l (B, 1).
    """

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.pool = AttentionalAggregation(gate_nn=nn.Linear(hidden_dim, 1))
        self.direction_head = mlp([hidden_dim, hidden_dim, 6])
        self.norm_head = mlp([hidden_dim, hidden_dim, 1])

    def forward(self, x: Tensor, g: GraphBatch) -> tuple[Tensor, Tensor]:
        keep = g.cluster_mask
        scene = self.pool(x[keep], index=g.cluster_batch[keep], dim_size=g.num_graphs)
        return self.direction_head(scene), self.norm_head(scene)


class GraphVS(nn.Module):
    """The CNS policy: correspondence graph + hidden state → (v_dir, l, hidden).

    Args:
        input_dim: node feature size (2: normalised x, y).
        pos_dim: position size (2).
        hidden_dim: H (128 in the paper and the released weights).
    """

    def __init__(self, input_dim: int = 2, pos_dim: int = 2, hidden_dim: int = 128) -> None:
        super().__init__()
        self.input_dim, self.pos_dim, self.hidden_dim = input_dim, pos_dim, hidden_dim
        self.encoder = Encoder(input_dim, pos_dim, hidden_dim)
        self.backbone = Backbone(pos_dim, hidden_dim)
        self.decoder = Decoder(hidden_dim)

    def init_hidden(self, num_clusters: int) -> Tensor:
        """Zero recurrent state (num_clusters, H)."""
        return torch.zeros(num_clusters, self.hidden_dim, device=next(self.parameters()).device)

    def forward(self, g: GraphBatch, hidden: Tensor | None = None,
                goal_terms: tuple[Tensor, ...] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """One step.

        Args:
            g: batched correspondence graphs (tensors on the model's device).
            hidden: (C, H) state from the previous step of the same goal graphs, or None (zeros).
            goal_terms: ``self.encoder.goal_terms(g)`` cached for these goal graphs (inference speed-up;
                the result is the same without it).

        Returns:
            v_dir (B, 6), l (B, 1), hidden (C, H).
        """
        num_clusters = g.cluster_centers.shape[0]
        if hidden is None:
            hidden = self.init_hidden(num_clusters)
        elif hidden.shape != (num_clusters, self.hidden_dim):
            raise InputError(f"hidden state has shape {tuple(hidden.shape)}, expected ({num_clusters}, "
                             f"{self.hidden_dim}); reset it when the goal graph changes")
        f = self.encoder(g, goal_terms)
        x, hidden = self.backbone(f, hidden, g)
        v_dir, l = self.decoder(x, g)
        return v_dir, l, hidden

    # ---------------------------------------------------------------- checkpoints
    def checkpoint(self, **meta: Any) -> dict[str, Any]:
        """A self-describing checkpoint dict (``torch.save`` it); ``meta`` is stored alongside."""
        return {"format": CHECKPOINT_FORMAT,
                "arch": {"input_dim": self.input_dim, "pos_dim": self.pos_dim, "hidden_dim": self.hidden_dim},
                "state_dict": self.state_dict(), "meta": dict(meta)}

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> GraphVS:
        """Load our checkpoint (:meth:`checkpoint`) or the authors' ``cns_state_dict.pth``.

        The authors' file is a plain state dict of their ``GraphVS(2, 2, 128)``; its keys are renamed
        through :data:`AUTHORS_KEY_MAP`. Loading uses ``weights_only=True`` (no pickled code runs).

        Raises:
            WeightsNotFoundError: the file does not exist.
            InputError: the file is neither format or does not fit the architecture.
        """
        path = Path(path)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"CNS checkpoint not found: {path}. Train one with `python -m vs_controllers.training.train_cns` "
                "or pass the authors' cns_state_dict.pth (github.com/hhcaz/CNS, checkpoints/).")
        obj = torch.load(path, map_location=map_location, weights_only=True)
        if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
            net = cls(**obj["arch"])
            state = obj["state_dict"]
        elif isinstance(obj, Mapping) and any(k.startswith("encoder.in_enc.") for k in obj):
            net = cls(2, 2, int(obj["encoder.in_enc.fcs.0.weight"].shape[0]))
            state = map_authors_state_dict(obj)
        else:
            raise InputError(f"{path} is neither a vs_cns checkpoint nor the authors' GraphVS state dict")
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise InputError(f"{path} does not fit GraphVS: {err}") from err
        return net.eval()


#: Authors' state-dict key prefix (``cns/models/graph_vs.py``) → ours. Their ``MLP`` keeps its
#: Linear layers in ``fcs.{0,1}``; ours are ``nn.Sequential`` with a ReLU between, i.e. ``{0,2}``.
AUTHORS_KEY_MAP: tuple[tuple[str, str], ...] = (
    (r"^encoder\.in_enc\.fcs\.0\.", "encoder.embed."),
    (r"^encoder\.att_clu_conv\.(pos_nn|attn_nn)\.fcs\.0\.", r"encoder.cluster_conv.\1.0."),
    (r"^encoder\.att_clu_conv\.(pos_nn|attn_nn)\.fcs\.1\.", r"encoder.cluster_conv.\1.2."),
    (r"^encoder\.att_clu_conv\.(lin|lin_src|lin_dst)\.", r"encoder.cluster_conv.\1."),
    (r"^encoder\.out_enc\.fcs\.0\.", "encoder.fuse."),
    (r"^backbone\.l1_conv(\d)\.conv\.msg_nn\.fcs\.0\.", r"backbone.perconv\1.edge_conv.msg."),
    (r"^backbone\.l1_conv(\d)\.bn\.", r"backbone.perconv\1.norm."),
    (r"^backbone\.l1_conv(\d)\.fc\.", r"backbone.perconv\1.fc."),
    (r"^backbone\.temporal_aggr\.conv_gates\.msg_nn\.fcs\.0\.", "backbone.gru.gates.msg."),
    (r"^backbone\.temporal_aggr\.conv_candi\.msg_nn\.fcs\.0\.", "backbone.gru.candidate.msg."),
    (r"^decoder\.pool\.gate_nn\.", "decoder.pool.gate_nn."),
    (r"^decoder\.vel_si_vec\.fcs\.0\.", "decoder.direction_head.0."),
    (r"^decoder\.vel_si_vec\.fcs\.1\.", "decoder.direction_head.2."),
    (r"^decoder\.vel_si_norm\.fcs\.0\.", "decoder.norm_head.0."),
    (r"^decoder\.vel_si_norm\.fcs\.1\.", "decoder.norm_head.2."),
)


def map_authors_state_dict(state: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    """Rename the authors' GraphVS keys to ours (:data:`AUTHORS_KEY_MAP`); unknown keys raise InputError."""
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in state.items():
        for pattern, repl in AUTHORS_KEY_MAP:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value
                break
        else:
            raise InputError(f"unexpected key in the authors' state dict: {key}")
    return out
