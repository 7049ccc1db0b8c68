"""The recurrent layers against torch.nn.RNN / LSTM / GRU given the same weights (float64):
outputs, ∂C/∂x, every weight gradient, learned initial states and truncated BPTT.

PyTorch's conventions, mapped here: weights are (G·H, n_in) — ours are the transpose;
two bias vectors b_ih + b_hh — ours are their sum, except the GRU's b_hn, which PyTorch
applies inside the reset gate as we do; gate order i, f, g, o for the LSTM (ours i, f, o, g)
and r, z, n for the GRU (same as ours).
"""
import numpy as np
import pytest

from nablanet import get_backend
from nablanet.layers import GRU, LSTM, SimpleRNN

torch = pytest.importorskip("torch")

F64 = get_backend("cpu", "float64")
RTOL = 1e-5
B, T, N_IN, H = 3, 7, 4, 5


def block_order(cls):
    """Our gate block k holds PyTorch's block order[k]."""
    return {SimpleRNN: [0], LSTM: [0, 1, 3, 2], GRU: [0, 1, 2]}[cls]


def torch_module(cls, seed):
    torch.manual_seed(seed)
    kind = {SimpleRNN: torch.nn.RNN, LSTM: torch.nn.LSTM, GRU: torch.nn.GRU}[cls]
    module = kind(N_IN, H, batch_first=True).double()
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.6, 0.6)                  # large enough that tanh/σ are non-linear
    return module


def regroup(a, order, axis):
    blocks = np.split(a, len(order), axis=axis)
    return np.concatenate([blocks[k] for k in order], axis=axis)


def matching_layer(cls, module, **kwargs):
    """Our layer holding ``module``'s weights."""
    layer = cls(N_IN, H, **kwargs)
    layer.build((T, N_IN), F64, np.random.default_rng(0))
    order = block_order(cls)
    w_ih = module.weight_ih_l0.detach().numpy()
    w_hh = module.weight_hh_l0.detach().numpy()
    b_ih = module.bias_ih_l0.detach().numpy()
    b_hh = module.bias_hh_l0.detach().numpy().copy()
    params = {"W": regroup(w_ih.T, order, 1), "U": regroup(w_hh.T, order, 1)}
    if cls is GRU:
        params["b_hn"] = b_hh[2 * H:].copy()
        b_hh[2 * H:] = 0                            # b_hn is not part of the merged bias
    params["b"] = regroup(b_ih + b_hh, order, 0)
    layer.set_params(**{k: v for k, v in params.items()})
    return layer


def torch_grads(cls, module):
    """PyTorch's gradients in our layout: (∂W, ∂U, ∂b)."""
    order = block_order(cls)
    g = {n: p.grad.numpy() for n, p in module.named_parameters()}
    db = g["bias_ih_l0"]                          # ∂b_ih: the gradient of our merged b
    return {"W": regroup(g["weight_ih_l0"].T, order, 1), "U": regroup(g["weight_hh_l0"].T, order, 1),
            "b": regroup(db, order, 0)}


def close(ours, theirs, what):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    err = np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-300)
    assert err <= RTOL, f"{what}: relative difference {err:.2e}"


def run_ours(layer, x, dy):
    layer.zero_grads()
    y, cache = layer.forward(x)
    return y, layer.backward(dy, cache)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_outputs_and_gradients_match_pytorch(cls):
    module = torch_module(cls, seed=1)
    layer = matching_layer(cls, module)
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((B, T, N_IN)), rng.standard_normal((B, T, H))

    tx = torch.tensor(x, requires_grad=True)
    ty, _ = module(tx)
    (ty * torch.tensor(dy)).sum().backward()

    y, dx = run_ours(layer, x, dy)
    close(y, ty.detach().numpy(), "output")
    close(dx, tx.grad.numpy(), "∂C/∂x")
    for name, g in torch_grads(cls, module).items():
        close(layer.grads[name], g, f"∂C/∂{name}")
    if cls is GRU:
        close(layer.grads["b_hn"], module.bias_hh_l0.grad.numpy()[2 * H:], "∂C/∂b_hn")


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_learned_initial_state_matches_pytorch(cls):
    """A learned h₀ (and c₀) is one vector shared by every sequence: its gradient is the sum
    over the batch of ∂C/∂h₀, what autograd gives for an expanded parameter."""
    module = torch_module(cls, seed=3)
    layer = matching_layer(cls, module, initial_state="learned")
    rng = np.random.default_rng(4)
    starts = {f"{n}0": 0.5 * rng.standard_normal(H) for n in layer.state_names}
    layer.set_params(**starts)
    x, dy = rng.standard_normal((B, T, N_IN)), rng.standard_normal((B, T, H))

    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in starts.items()}
    expanded = [leaves[f"{n}0"].expand(1, B, H) for n in layer.state_names]
    ty, _ = module(torch.tensor(x), expanded[0] if cls is not LSTM else tuple(expanded))
    (ty * torch.tensor(dy)).sum().backward()

    y, _ = run_ours(layer, x, dy)
    close(y, ty.detach().numpy(), "output")
    for name, leaf in leaves.items():
        close(layer.grads[name], leaf.grad.numpy(), f"∂C/∂{name}")


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_truncated_bptt_matches_pytorch_detach(cls):
    """Chunks of k steps with the state carried and cut (PyTorch: ``.detach()``) give the same
    summed weight gradients as our stateful layer."""
    module = torch_module(cls, seed=5)
    layer = matching_layer(cls, module)
    rng = np.random.default_rng(6)
    x, dy = rng.standard_normal((B, T, N_IN)), rng.standard_normal((B, T, H))
    k = 3

    state, theirs = None, []
    for i in range(0, T, k):
        ty, state = module(torch.tensor(x[:, i:i + k]), state)
        theirs.append(ty.detach().numpy())
        (ty * torch.tensor(dy[:, i:i + k])).sum().backward()
        state = tuple(s.detach() for s in state) if cls is LSTM else state.detach()

    layer.zero_grads()
    layer.stateful = True
    ours = []
    for i in range(0, T, k):
        y, cache = layer.forward(x[:, i:i + k])
        layer.backward(dy[:, i:i + k], cache)
        ours.append(y)
    close(np.concatenate(ours, 1), np.concatenate(theirs, 1), "outputs (carried state)")
    for name, g in torch_grads(cls, module).items():
        close(layer.grads[name], g, f"∂C/∂{name} (truncated)")
