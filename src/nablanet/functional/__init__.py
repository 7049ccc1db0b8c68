"""Stateless array math shared by the layers (the ``nn.functional`` half of the split):
window geometry, im2col and col2im for convolution and pooling."""
from .windows import col2im, im2col, offset_view, output_size, pad_spatial, pair, row_pitch

__all__ = ["col2im", "im2col", "offset_view", "output_size", "pad_spatial", "pair",
           "row_pitch"]
