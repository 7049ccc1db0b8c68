"""Stateless array math shared by the layers (the ``nn.functional`` half of the split):
window geometry, im2col and col2im for convolution and pooling; reductions over a
softmax's classes."""
from .reductions import max_last, sum_last
from .windows import col2im, im2col, offset_view, output_size, pad_spatial, pair, row_pitch

__all__ = ["col2im", "im2col", "max_last", "offset_view", "output_size", "pad_spatial",
           "pair", "row_pitch", "sum_last"]
