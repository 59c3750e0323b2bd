"""GraphVS: shapes, Eq. 3 output, checkpoint formats and fidelity to the authors' released weights."""

from pathlib import Path

import numpy as np
import pytest
import torch
from vs_common.core.errors import InputError, WeightsNotFoundError
from vs_controllers.core.cns.graph import build_correspondence_graph, build_goal_graph, collate
from vs_controllers.core.cns.network import AUTHORS_KEY_MAP, GraphVS, T, T_inv, map_authors_state_dict, postprocess

FIXTURE = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "cns_official"


def _fixture(name: str) -> Path:
    path = FIXTURE / name
    if not path.is_file():
        pytest.skip(f"authors' CNS oracle not found at {FIXTURE.resolve()} (test oracle only, not shipped)")
    return path


def _batch(seed=0, sizes=(30, 12), missing=0.3):
    rng = np.random.default_rng(seed)
    graphs = []
    for n in sizes:
        goal_xy = rng.uniform(-0.5, 0.5, size=(n, 2))
        goal = build_goal_graph(goal_xy, rng=seed)
        valid = rng.uniform(size=n) > missing
        valid[0] = True
        graphs.append(build_correspondence_graph(goal, goal_xy + rng.normal(0, 0.05, (n, 2)), valid, 0.6))
    return graphs


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return GraphVS().eval()


def test_shapes_and_hidden_state(net):
    graphs = _batch()
    b = collate(graphs)
    c = sum(g.num_clusters for g in graphs)
    with torch.no_grad():
        v_dir, l, h = net(b)
        assert v_dir.shape == (2, 6) and l.shape == (2, 1) and h.shape == (c, 128)
        v2, _, h2 = net(b, h)
        assert not torch.allclose(v2, v_dir)  # the recurrent state matters
        with pytest.raises(InputError):
            net(b, h[:-1])


def test_parameter_count_matches_the_paper_model(net):
    assert sum(p.numel() for p in net.parameters()) == 464_520
    assert len(net.state_dict()) == 43


def test_eq3_output():
    v_dir = torch.tensor([[3.0, 0, 0, 0, 4.0, 0]])
    vel = postprocess(v_dir, torch.zeros(1, 1), torch.tensor([2.0]))
    # One norm over all six components, T(0) = 1, translation times d.
    torch.testing.assert_close(vel, torch.tensor([[1.2, 0, 0, 0, 0.8, 0]]))
    assert float(T(torch.tensor(-20.0))) < 1e-8 and float(T(torch.tensor(1.5))) == pytest.approx(2.5)
    y = torch.tensor([0.01, 0.5, 1.0, 3.0])
    torch.testing.assert_close(T(T_inv(y)), y, atol=1e-4, rtol=1e-4)


def test_missing_nodes_do_not_influence_the_output(net):
    graphs = _batch(seed=3)
    b1 = collate(graphs)
    for g in graphs:
        g.x_cur[~g.node_mask] = 123.0
    b2 = collate(graphs)
    with torch.no_grad():
        torch.testing.assert_close(net(b1)[0], net(b2)[0])


def test_cached_goal_terms_give_the_same_output(net):
    b = collate(_batch(seed=5))
    with torch.no_grad():
        ref = net(b)
        cached = net(b, None, net.encoder.goal_terms(b))
    for r, c in zip(ref, cached):
        torch.testing.assert_close(r, c, atol=1e-6, rtol=1e-5)


def test_gradients_reach_every_parameter(net):
    model = GraphVS()
    v_dir, l, h = model(collate(_batch(seed=7, missing=0.0)))
    (v_dir.sum() + l.sum() + h.sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_our_checkpoint_round_trip(net, tmp_path):
    path = tmp_path / "cns.pt"
    torch.save(net.checkpoint(note="test"), path)
    loaded = GraphVS.from_checkpoint(path)
    b = collate(_batch())
    with torch.no_grad():
        torch.testing.assert_close(loaded(b)[0], net(b)[0])
    with pytest.raises(WeightsNotFoundError):
        GraphVS.from_checkpoint(tmp_path / "absent.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(InputError):
        GraphVS.from_checkpoint(tmp_path / "bad.pt")


def test_authors_key_map_covers_their_state_dict():
    state = torch.load(_fixture("cns_state_dict.pth"), weights_only=True)
    mapped = map_authors_state_dict(state)
    assert set(mapped) == set(GraphVS().state_dict())
    assert len(AUTHORS_KEY_MAP) > 0


def test_fidelity_to_the_authors_golden_io():
    """The authors' weights reproduce their recorded closed-loop outputs (3 episodes x 30 steps)."""
    net = GraphVS.from_checkpoint(_fixture("cns_state_dict.pth"))
    rec = np.load(_fixture("golden_io.npz"))
    K = rec["K"].astype(np.float64)

    def normalise(uv):
        return (uv.astype(np.float64) - K[:2, 2]) / np.diag(K)[:2]

    for ep in range(3):
        goal = build_goal_graph(normalise(rec[f"ep{ep}_tar"]), labels=rec[f"ep{ep}_labels"])
        np.testing.assert_array_equal(goal.centres, rec[f"ep{ep}_centers"])
        d = float(rec[f"ep{ep}_dist"])
        hidden, terms = None, None
        for t in range(rec[f"ep{ep}_cur"].shape[0]):
            g = build_correspondence_graph(goal, normalise(rec[f"ep{ep}_cur"][t]), rec[f"ep{ep}_valid"][t], d)
            b = collate([g])
            with torch.no_grad():
                # Odd episodes use the cached goal branch (the controller's path), even ones the plain one.
                if ep % 2 and terms is None:
                    terms = net.encoder.goal_terms(b)
                v_dir, l, hidden = net(b, hidden, terms)
                vel = postprocess(v_dir, l, b.dist)[0].numpy()
            np.testing.assert_allclose(vel, rec[f"ep{ep}_vel"][t], atol=1e-5, rtol=0)
