"""A flowpolicy policy with cameras as one PyTorch module (Sources/FlowPolicy/Networks/ImageObservationEncoder.swift):
the ResMLP-FiLM velocity network under its own names (`inp.weight`, ...) and one image encoder per camera under
`encoders.<camera>.` (`encoders.image.backbone.conv1.weight`, ...), so `load_state_dict(strict=True)` takes the
checkpoint's tensors as they are.

A frame uint8 [H, W, C] is centre-cropped to the encoder's h x w (top = (H - h) // 2, left = (W - w) // 2), moved to
channels first and scaled to [-1, 1]; each observation step's features (cameras in order) follow its normalized
low-dimensional observation in the condition: [o_1, f_1, o_2, f_2, ...], To x (Do + Fs).
"""

import numpy as np
import torch
from torch import nn

from .network import ResMLPFiLM
from .vision import ImageEncoder


class ImageFlowPolicy(ResMLPFiLM):
    """The velocity network and the encoders of `cameras` (a list of {name, height, width, channels})."""

    def __init__(self, sizes, cameras, encoder_config):
        super().__init__(sizes)
        self.cameras = list(cameras)
        self.crop = (encoder_config["height"], encoder_config["width"])
        self.encoders = nn.ModuleDict({camera["name"]: ImageEncoder(encoder_config) for camera in self.cameras})

    def condition(self, observations, frames):
        """o [B, To*(Do+Fs)] from normalized observations [B, To, Do] and frames {camera: uint8 [B, To, H, W, C]}."""
        B, To, _ = observations.shape
        h, w = self.crop
        parts = [observations]
        for camera in self.cameras:
            images = torch.as_tensor(np.asarray(frames[camera["name"]]))
            top, left = (camera["height"] - h) // 2, (camera["width"] - w) // 2
            images = images[:, :, top:top + h, left:left + w, :].permute(0, 1, 4, 2, 3).reshape(B * To, -1, h, w)
            images = images.to(torch.float32) * np.float32(2 / 255) - 1
            parts.append(self.encoders[camera["name"]](images).reshape(B, To, -1))
        return torch.cat(parts, dim=-1).reshape(B, -1)
