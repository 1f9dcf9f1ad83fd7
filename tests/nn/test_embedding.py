"""Embedding against PyTorch: init, padding row, forward and gradients eager and compiled, index checks."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn
import graphc.nn.functional as GF

INDICES = np.array([[1, 2, 4, 5], [4, 3, 2, 9], [0, 0, 2, 2]])


def test_reprs_and_init(torch):
    def make(nn):
        return [nn.Embedding(10, 3), nn.Embedding(10, 3, padding_idx=2), nn.Embedding(10, 3, padding_idx=-1)]
    assert [repr(m) for m in make(gnn)] == [repr(m) for m in make(torch.nn)]
    big = gnn.Embedding(1000, 64, padding_idx=3)
    w = big.weight.detach().numpy()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01  # normal(0, 1)
    assert not w[3].any()
    assert big.padding_idx == 3 and gnn.Embedding(10, 3, padding_idx=-1).padding_idx == 9
    assert list(big.state_dict()) == ["weight"]


@pytest.mark.parametrize("padding_idx", [None, 2])
@pytest.mark.parametrize("compiled", [False, True])
def test_forward_and_gradient_match_pytorch(torch, to_torch, padding_idx, compiled):
    module = gnn.Embedding(10, 3, padding_idx=padding_idx)
    reference = to_torch(module, torch.nn.Embedding(10, 3, padding_idx=padding_idx))
    grad = np.random.default_rng(0).standard_normal((3, 4, 3)).astype("float32")
    expected = reference(torch.tensor(INDICES))
    expected.backward(torch.tensor(grad))
    run = graphc.compile(module) if compiled else module
    out = run(graphc.tensor(INDICES))
    out.backward(graphc.tensor(grad))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy())
    np.testing.assert_allclose(module.weight.grad.numpy(), reference.weight.grad.numpy(), rtol=1e-6, atol=1e-6)
    if padding_idx is not None:
        assert not module.weight.grad.numpy()[padding_idx].any()
    with graphc.no_grad():
        np.testing.assert_allclose(graphc.compile(module)(graphc.tensor(INDICES)).numpy(), expected.detach().numpy())


def test_out_of_range_indices_raise_as_pytorch(torch):
    module = gnn.Embedding(10, 3)
    with pytest.raises(IndexError) as theirs:
        torch.nn.Embedding(10, 3)(torch.tensor([1, 10]))
    for bad in ([1, 10], [-1, 0]):
        with pytest.raises(IndexError, match="index out of range in self"):
            module(graphc.tensor(bad))
        with pytest.raises(IndexError, match="index out of range in self"):
            with graphc.no_grad():
                graphc.compile(module)(graphc.tensor(bad))
    assert "index out of range in self" in str(theirs.value)


def test_train_step_updates_the_looked_up_rows_only():
    class Bag(gnn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.fc = gnn.Embedding(10, 4, padding_idx=0), gnn.Linear(4, 1)

        def forward(self, idx):
            return self.fc(self.emb(idx).sum(1))

    model = Bag()
    before = model.emb.weight.detach().numpy().copy()
    step = graphc.compile_train_step(model, gnn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    step(graphc.tensor([[0, 1, 2], [2, 3, 0]]), graphc.ones(2, 1))
    after = model.emb.weight.detach().numpy()
    changed = np.flatnonzero((after != before).any(1))
    assert list(changed) == [1, 2, 3]


def test_functional_form_and_unsupported_options(torch):
    weight = graphc.randn(5, 2)
    np.testing.assert_array_equal(GF.embedding(graphc.tensor([4, 0]), weight).numpy(), weight.numpy()[[4, 0]])
    with pytest.raises(ValueError, match="max_norm"):
        gnn.Embedding(5, 2, max_norm=1.0)
    with pytest.raises(RuntimeError, match="indices"):
        GF.embedding(graphc.tensor([1.0]), weight)


def test_from_pretrained_shares_the_table_and_freezes_it(torch):
    table = graphc.randn(4, 3)
    frozen = gnn.Embedding.from_pretrained(table, padding_idx=1)
    assert not frozen.weight.requires_grad and frozen.padding_idx == 1
    np.testing.assert_array_equal(frozen(graphc.tensor([3, 1])).numpy(), table.numpy()[[3, 1]])
    assert gnn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    expected = torch.nn.Embedding.from_pretrained(torch.tensor(table.numpy()), padding_idx=1)
    assert repr(frozen) == repr(expected)
