"""DepthPCNet: per-graph attention (batch independence), goal depth in the goal branch, the fusion math."""

import numpy as np
import pytest
import torch
from vs_common.core.errors import InputError
from vs_controllers.core.cns.graph import build_goal_graph, collate
from vs_controllers.core.cns.network import GraphVS
from vs_controllers.core.depth_pc.graph import build_depth_graph, collate_depth
from vs_controllers.core.depth_pc.network import DepthPCNet, FeatureFusion


def _graph(n, seed, scope="cluster", goal_depth=None, current_depth=None):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-0.4, 0.4, (n, 2))
    goal = build_goal_graph(xy, rng=seed)
    valid = rng.uniform(size=n) < 0.8
    valid[:3] = True
    zc = rng.uniform(0.5, 1.0, n) if current_depth is None else current_depth
    zt = rng.uniform(0.5, 1.0, n) if goal_depth is None else goal_depth
    return build_depth_graph(goal, xy + rng.normal(0, 0.02, (n, 2)), valid, 0.7, zc, zt, scope)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = DepthPCNet()
    # Non-trivial depth gains (they start at exactly 1), so the per-graph mean is exercised.
    for head in (net.gain_dir, net.gain_norm):
        torch.nn.init.normal_(head[-1].weight, std=0.3)
    return net.eval()


@pytest.mark.parametrize("scope", ["cluster", "graph"])
def test_two_graphs_in_one_batch_do_not_change_each_other(net, scope):
    a, b = _graph(25, 1, scope), _graph(140, 2, scope)
    with torch.no_grad():
        va, la, ha = net(collate_depth([a]))
        vb, lb, hb = net(collate_depth([b]))
        vab, lab, hab = net(collate_depth([a, b]))
    torch.testing.assert_close(vab, torch.cat([va, vb]), atol=1e-5, rtol=0)
    torch.testing.assert_close(lab, torch.cat([la, lb]), atol=1e-5, rtol=0)
    torch.testing.assert_close(hab, torch.cat([ha, hb]), atol=1e-5, rtol=0)
    # Perturbing one graph's coordinates and depths leaves the other's outputs as they were.
    b2 = _graph(140, 3, scope)
    with torch.no_grad():
        v2, l2, _ = net(collate_depth([a, b2]))
    torch.testing.assert_close(v2[0], vab[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(l2[0], lab[0], atol=1e-5, rtol=0)
    assert not torch.allclose(v2[1], vab[1])


def test_the_goal_branch_reads_the_goal_depth_only(net):
    n = 60
    rng = np.random.default_rng(4)
    zt, zc = rng.uniform(0.5, 1.0, n), rng.uniform(0.5, 1.0, n)
    g = _graph(n, 5, goal_depth=zt, current_depth=zc)
    g_goal = _graph(n, 5, goal_depth=zt[::-1].copy(), current_depth=zc)
    g_cur = _graph(n, 5, goal_depth=zt, current_depth=zc[::-1].copy())
    with torch.no_grad():
        out = net(collate_depth([g]))[0]
        assert not torch.allclose(net(collate_depth([g_goal]))[0], out)  # goal depth matters
        terms = net.encoder.goal_terms(collate_depth([g]))
        terms_cur = net.encoder.goal_terms(collate_depth([g_cur]))
        e_tar = net.encoder.embed_nodes(collate_depth([g]), current=False)
        e_tar_cur = net.encoder.embed_nodes(collate_depth([g_cur]), current=False)
        assert not torch.allclose(net(collate_depth([g_cur]))[0], out)  # current depth matters too ...
    for t, t_cur in zip(terms, terms_cur):  # ... but never reaches the goal embedding
        torch.testing.assert_close(t, t_cur, atol=0, rtol=0)
    torch.testing.assert_close(e_tar, e_tar_cur, atol=0, rtol=0)


def test_cached_goal_terms_give_the_same_step(net):
    g = collate_depth([_graph(80, 6)])
    with torch.no_grad():
        plain = net(g)
        cached = net(g, goal_terms=net.encoder.goal_terms(g))
    for x, y in zip(plain, cached):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)


def test_goal_terms_of_an_earlier_frame_skip_the_goal_fusion(net, monkeypatch):
    """The controller keeps goal_terms from the goal's first frame: a later frame (same goal, new current
    depth) then fuses only its current frame, with the result of fusing both."""
    n = 80
    rng = np.random.default_rng(9)
    zt = rng.uniform(0.5, 1.0, n)
    first = collate_depth([_graph(n, 6, goal_depth=zt, current_depth=rng.uniform(0.5, 1.0, n))])
    later = collate_depth([_graph(n, 6, goal_depth=zt, current_depth=rng.uniform(0.5, 1.0, n))])
    with torch.no_grad():
        terms = net.encoder.goal_terms(first)
        assert len(terms) == 4
        plain = net(later)
        calls = []
        fuse = net.encoder.fusion.forward
        monkeypatch.setattr(net.encoder.fusion, "forward", lambda *a: calls.append(1) or fuse(*a))
        cached = net(later, goal_terms=terms)
    assert len(calls) == 1
    for x, y in zip(plain, cached):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)


def test_a_forward_pass_fuses_each_frame_once_with_the_same_result(net, monkeypatch):
    g = collate_depth([_graph(80, 7), _graph(50, 8)])
    with torch.no_grad():
        # Without the memo: GraphVS's step, then the gains, each fusing both frames itself.
        v_dir, l, h = GraphVS.forward(net, g)
        g_v, g_l = net.depth_gains(g)
        calls = []
        fuse = net.encoder.fusion.forward
        monkeypatch.setattr(net.encoder.fusion, "forward", lambda *a: calls.append(1) or fuse(*a))
        out = net(g)
    assert len(calls) == 2  # the current and the goal frame, once each
    for x, y in zip(out, (g_v * v_dir, g_l * l, h)):
        torch.testing.assert_close(x, y, atol=0, rtol=0)
    assert net.encoder._memo is None  # nothing kept after the pass


def test_fusion_equals_dense_bidirectional_cross_attention():
    torch.manual_seed(1)
    ff = FeatureFusion(2, 16)
    g = collate_depth([_graph(30, 7, scope="graph")])
    keep = g.node_mask.nonzero()[:, 0]
    X = ff.pos_embed(g.x_cur[keep])
    D = ff.depth_embed(g.z_cur[keep, None])
    S = X @ D.T / 4.0  # Eq. 6 with the 1/sqrt(F) scale, F = 16
    fused_pos, fused_z = ff(g.x_cur, g.z_cur, g.att_cur)
    torch.testing.assert_close(fused_z[keep], torch.softmax(S, 1) @ D, atol=1e-5, rtol=0)  # A_Z X_Z
    torch.testing.assert_close(fused_pos[keep], torch.softmax(S, 0).T @ X, atol=1e-5, rtol=0)  # A_pos^T X_pos
    missing = ~g.node_mask
    assert missing.any() and fused_z[missing].abs().max() == 0 and fused_pos[missing].abs().max() == 0


def test_warm_start_copies_the_shared_cns_layers_and_gains_start_at_one():
    torch.manual_seed(2)
    cns = GraphVS()
    net = DepthPCNet()
    copied = net.warm_start(cns.state_dict())
    assert any(k.startswith("backbone.") for k in copied) and any(k.startswith("decoder.") for k in copied)
    assert "encoder.cluster_conv.lin.weight" in copied and not any(k.startswith("encoder.fusion") for k in copied)
    g = collate_depth([_graph(50, 8)])
    with torch.no_grad():
        g_v, g_l = net.depth_gains(g)
    assert torch.all(g_v == 1) and torch.all(g_l == 1)


def test_needs_a_depth_batch_and_checkpoints_round_trip(tmp_path):
    net = DepthPCNet(attention_scope="graph", depth_norm="common")
    with pytest.raises(InputError):
        net(collate([_graph(20, 9)]))
    with pytest.raises(InputError):
        DepthPCNet(depth_norm="batch")
    torch.save(net.checkpoint(iteration=3), tmp_path / "d.pt")
    back = DepthPCNet.from_checkpoint(tmp_path / "d.pt")
    assert back.attention_scope == "graph" and back.depth_norm == "common"
    for k, v in net.state_dict().items():
        assert torch.equal(v, back.state_dict()[k])
    torch.save({"format": "vs_cns/1"}, tmp_path / "cns.pt")
    with pytest.raises(InputError):
        DepthPCNet.from_checkpoint(tmp_path / "cns.pt")
    with pytest.raises(FileNotFoundError):
        DepthPCNet.from_checkpoint(tmp_path / "missing.pt")


def test_the_residual_starts_as_the_checkpoint_it_loads_and_carries_each_nodes_own_embedding(tmp_path):
    torch.manual_seed(3)
    plain = DepthPCNet().eval()
    torch.save(plain.checkpoint(iteration=1), tmp_path / "plain.pt")
    res = DepthPCNet(residual=True)
    res.load_without_residual(DepthPCNet.from_checkpoint(tmp_path / "plain.pt").state_dict())
    res.eval()
    g = collate_depth([_graph(40, 10)])
    with torch.no_grad():
        for x, y in zip(plain(g), res(g), strict=True):
            torch.testing.assert_close(x, y, atol=0, rtol=0)  # gates at 0: exactly the loaded network
        res.encoder.fusion.res_pos.fill_(1.0)
        res.encoder.fusion.res_z.fill_(1.0)
        keep = g.node_mask
        fused_pos, fused_z = res.encoder.fusion(g.x_cur, g.z_cur, g.att_cur)
        base_pos, base_z = plain.encoder.fusion(g.x_cur, g.z_cur, g.att_cur)
        ff = res.encoder.fusion
        torch.testing.assert_close(fused_pos[keep], base_pos[keep] + ff.pos_embed(g.x_cur[keep]), atol=1e-6, rtol=0)
        torch.testing.assert_close(fused_z[keep], base_z[keep] + ff.depth_embed(g.z_cur[keep, None]),
                                   atol=1e-6, rtol=0)
        assert fused_pos[~keep].abs().max() == 0 and fused_z[~keep].abs().max() == 0
    torch.save(res.checkpoint(iteration=2), tmp_path / "res.pt")
    assert DepthPCNet.from_checkpoint(tmp_path / "res.pt").residual
    with pytest.raises(InputError):
        res.load_without_residual({"bogus": torch.zeros(1)})
