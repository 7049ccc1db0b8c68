"""One training step of a sequence net: forward over the sequence, BPTT, clip, update.

    a, caches = net.forward(x)                      # every time step
    δᴸ        = output_delta(cost, σ, a, y, n)      # BP1 at every step, mean over n outputs
    net.backward(δᴸ, caches)                        # backprop through time
    clip ‖g‖ to θ; optimizer.step(); zero the gradients

The same step serves sequence-to-sequence nets (an output per step, n = batch × time)
and sequence-to-one nets (n = batch). Truncated BPTT is this step applied to
consecutive chunks with the recurrent layers' state carried
(:func:`nablanet.layers.set_stateful`).
"""
from __future__ import annotations

from ..clipping import clip_gradient_norm
from ..costs import Cost, output_delta
from ..layers import Linear


def sequence_step(net, cost: Cost, optimizer, x, targets, *, clip: float | None = None):
    """Train on one batch; returns the outputs ``a`` computed before the update.

    ``targets`` has the shape of the outputs (one-hot rows for a softmax output).
    With ``clip`` the gradient norm is limited to that value before the step.
    """
    a, caches = net.forward(x, train=True)
    output = net.output_activation or Linear()
    start = len(net.layers) - (net.output_activation is not None)
    n_outputs = targets.size // targets.shape[-1]
    delta = output_delta(cost, output, a, targets, caches[-1], n_outputs)
    net.backward(delta, caches, start=start)
    if clip is not None:
        clip_gradient_norm(net, clip)
    optimizer.step(net)
    net.zero_grads()
    return a
