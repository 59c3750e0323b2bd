"""CNS graph layers (the blocks Depth-PC reuses): known values and shapes."""

import torch
from vs_controllers.core.cns.layers import GConvGRU, PERConv, PointEdgeConv


def _dense_edges(n: int) -> torch.Tensor:
    idx = torch.arange(n)
    return torch.stack([idx.repeat_interleave(n), idx.repeat(n)])  # [source l; target k], with self-loops


def test_point_edge_conv_is_the_per_edge_max_of_its_linear_message():
    torch.manual_seed(0)
    conv = PointEdgeConv(5, 7, 2)
    x, pos = torch.randn(4, 5), torch.randn(4, 2)
    edges = _dense_edges(4)[:, :-3]  # vertex 3 keeps only the edge from 0
    out = conv(x, pos, edges)
    src, dst = edges
    msg = conv.msg(torch.cat([x[dst], x[src] - x[dst], pos[src] - pos[dst]], dim=-1))
    for k in range(4):
        torch.testing.assert_close(out[k], msg[dst == k].max(0).values, atol=1e-5, rtol=1e-5)
    assert torch.equal(conv(x, pos, edges[:, dst != 2])[2], torch.zeros(7))  # no in-edges: 0


def test_perconv_and_gru_shapes():
    torch.manual_seed(0)
    x, h, pos = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 2)
    edges, batch = _dense_edges(6), torch.zeros(6, dtype=torch.long)
    assert PERConv(8, 2)(x, pos, edges, batch, 1).shape == (6, 8)
    h_new = GConvGRU(8, 2)(x, h, pos, edges, edges)
    assert h_new.shape == (6, 8) and torch.isfinite(h_new).all()
