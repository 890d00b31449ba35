"""Image encoders as PyTorch modules (Sources/FlowPolicy/Networks/ImageEncoder.swift), with the same parameter names.

Dimensions: B batch (images), C channels, H x W input size, K keypoints, F features.

    images                                                        [B, C, H, W]  (scaled to [-1, 1])
    backbone (resnet18 or small_cnn)                              [B, C', H', W']
    pool: SpatialSoftmax, 1x1 conv C' -> K, softmax, E[(x, y)]    [B, 2K]
    projection: Linear(2K -> F)                                   [B, F]

`resnet18` is torchvision's ResNet-18 with GroupNorm(C // 16, C) for BatchNorm (as Diffusion Policy's encoder) and
without avgpool and fc; `small_cnn` three stride-2 3x3 convolutions (32, 64, 64 channels) with GroupNorm and ReLU.
The configuration is flowpolicy's `ImageEncoderConfiguration` as JSON: {"backbone", "channels", "height", "width",
"keypoints", "features"}.

`python -m flowpolicy_torch.vision FILE` is the parity check of `ImageEncoderTorchParityTests`: FILE (safetensors)
holds the encoder's parameters under `<prefix>.` names, `input` [B, C, H, W] and flowpolicy's `output` [B, F], and
metadata `image_encoder` (the configuration) and `prefix`. It loads the parameters with strict=True, runs the
forward pass and exits non-zero if the largest |difference| from flowpolicy's output exceeds the tolerance.

`python -m flowpolicy_torch.vision bench --backbone X --batch B --iterations N` times the forward pass on one thread
for `flowpolicy bench infer --encoders` and prints one JSON line (see `bench`).
"""

import argparse
import json
import sys

import numpy as np
import torch
import torchvision
from torch import nn


def group_norm(channels):
    """Diffusion Policy's replacement for BatchNorm: one group per 16 channels."""
    return nn.GroupNorm(channels // 16, channels, eps=1e-5)


class SmallCNN(nn.Module):
    """conv1 3x3/2 (C -> 32), norm1, ReLU, conv2 3x3/2 (32 -> 64), norm2, ReLU, conv3 3x3/2 (64 -> 64), norm3, ReLU."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3, stride=2, padding=1)
        self.norm1 = group_norm(32)
        self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.norm2 = group_norm(64)
        self.conv3 = nn.Conv2d(64, 64, 3, stride=2, padding=1)
        self.norm3 = group_norm(64)

    def forward(self, x):
        x = torch.relu(self.norm1(self.conv1(x)))
        x = torch.relu(self.norm2(self.conv2(x)))
        return torch.relu(self.norm3(self.conv3(x)))


class SpatialSoftmax(nn.Module):
    """robomimic's SpatialSoftmax (temperature 1, no noise, no variance) with the keypoint convolution named
    `keypoints`: [B, C, H, W] -> [B, 2K], ordered (x0, y0, x1, y1, ...), x over the width and y over the height."""

    def __init__(self, channels, height, width, keypoints):
        super().__init__()
        self.keypoints = nn.Conv2d(channels, keypoints, kernel_size=1)
        self.height, self.width, self.count = height, width, keypoints
        pos_x, pos_y = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
        # Constants, not parameters: outside the state dict.
        self.register_buffer("pos_x", torch.from_numpy(pos_x.reshape(1, height * width)).float(), persistent=False)
        self.register_buffer("pos_y", torch.from_numpy(pos_y.reshape(1, height * width)).float(), persistent=False)

    def forward(self, feature):
        feature = self.keypoints(feature).reshape(-1, self.height * self.width)
        attention = torch.softmax(feature, dim=-1)
        expected_x = torch.sum(self.pos_x * attention, dim=1, keepdim=True)
        expected_y = torch.sum(self.pos_y * attention, dim=1, keepdim=True)
        return torch.cat([expected_x, expected_y], 1).reshape(-1, self.count * 2)


class ImageEncoder(nn.Module):
    """features [B, F] from images [B, C, H, W]; `config` is the ImageEncoderConfiguration dict."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        channels, height, width = config["channels"], config["height"], config["width"]
        keypoints, features = config.get("keypoints", 32), config.get("features", 64)
        if config["backbone"] == "resnet18":
            self.backbone = torchvision.models.resnet18(weights=None, norm_layer=group_norm)
            if channels != 3:
                self.backbone.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.backbone.avgpool = nn.Identity()
            self.backbone.fc = nn.Identity()
        elif config["backbone"] == "small_cnn":
            self.backbone = SmallCNN(channels)
        else:
            raise ValueError(f"unknown image backbone {config['backbone']!r} (resnet18 or small_cnn)")
        with torch.no_grad():
            _, trunk_channels, trunk_height, trunk_width = self.trunk(torch.zeros(1, channels, height, width)).shape
        self.pool = SpatialSoftmax(trunk_channels, trunk_height, trunk_width, keypoints)
        self.projection = nn.Linear(2 * keypoints, features)

    def trunk(self, x):
        if isinstance(self.backbone, SmallCNN):
            return self.backbone(x)
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        return b.layer4(b.layer3(b.layer2(b.layer1(x))))

    def forward(self, images):
        return self.projection(self.pool(self.trunk(images)))


def main(argv=None):
    from safetensors import safe_open

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="safetensors file with the parameters, input, output and configuration")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest |difference| accepted")
    arguments = parser.parse_args(argv)
    torch.manual_seed(0)
    with safe_open(arguments.file, framework="pt") as file:
        metadata = file.metadata()
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    config = json.loads(metadata["image_encoder"])
    prefix = metadata["prefix"] + "."
    images, expected = tensors.pop("input"), tensors.pop("output")
    encoder = ImageEncoder(config)
    encoder.load_state_dict({name.removeprefix(prefix): value for name, value in tensors.items()}, strict=True)
    encoder.eval()
    with torch.no_grad():
        output = encoder(images)
    difference = (output - expected).abs().max().item()
    scale = expected.abs().max().item()
    print(f"{config['backbone']} {config['channels']}x{config['height']}x{config['width']}, batch {images.shape[0]}: "
          f"max |Δ| = {difference:.3g} (outputs up to {scale:.3g}; tolerance {arguments.tolerance:g})")
    return 0 if difference <= arguments.tolerance else 1


def bench(argv=None):
    """`python -m flowpolicy_torch.vision bench --backbone X --batch B --iterations N` (`flowpolicy bench infer
    --encoders` runs it): the encoder's forward pass on random weights and random [B, C, H, W] float input (already
    cropped and scaled, so no crop is timed), in torch.no_grad() on one thread. Batch 1: N calls after 20 warm-up
    calls, each timed; batch B: max(3, N // 50) calls after one warm-up, timed together. Prints one JSON line: the
    batch-1 latency summary in milliseconds per call (nearest-rank percentiles, as flowpolicy's `LatencySummary`) and
    the batch-B milliseconds per image."""
    import math
    import time

    parser = argparse.ArgumentParser(prog="python -m flowpolicy_torch.vision bench", description=bench.__doc__)
    parser.add_argument("--backbone", choices=("small_cnn", "resnet18"), required=True)
    parser.add_argument("--batch", type=int, default=64, help="batch size of the throughput figure")
    parser.add_argument("--iterations", type=int, default=500, help="batch-1 calls to time")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--height", type=int, default=84, help="input height (after cropping)")
    parser.add_argument("--width", type=int, default=84, help="input width (after cropping)")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(arguments.seed)
    config = {"backbone": arguments.backbone, "channels": arguments.channels, "height": arguments.height,
              "width": arguments.width, "keypoints": 32, "features": 64}
    encoder = ImageEncoder(config).eval()
    shape = (arguments.channels, arguments.height, arguments.width)
    single = torch.rand(1, *shape) * 2 - 1
    batch = torch.rand(arguments.batch, *shape) * 2 - 1
    with torch.no_grad():
        for _ in range(20):
            encoder(single)
        latencies = []
        for _ in range(arguments.iterations):
            start = time.perf_counter()
            encoder(single)
            latencies.append((time.perf_counter() - start) * 1000)
        encoder(batch)
        repeats = max(3, arguments.iterations // 50)
        start = time.perf_counter()
        for _ in range(repeats):
            encoder(batch)
        batch_ms = (time.perf_counter() - start) * 1000 / (repeats * arguments.batch)
    ordered = sorted(latencies)

    def percentile(p):
        rank = math.ceil(p * len(ordered)) - 1  # nearest rank
        return ordered[min(max(rank, 0), len(ordered) - 1)]

    print(json.dumps({
        "backbone": arguments.backbone, "torch": torch.__version__, "torchvision": torchvision.__version__,
        "threads": torch.get_num_threads(), "input": list(shape),
        "parameters": sum(p.numel() for p in encoder.parameters()),
        "latencyMilliseconds": {"count": len(ordered), "mean": sum(ordered) / len(ordered), "p50": percentile(0.5),
                                "p99": percentile(0.99), "p999": percentile(0.999), "max": ordered[-1]},
        "batch": arguments.batch, "batchRepeats": repeats, "batchMillisecondsPerImage": batch_ms}))
    return 0


if __name__ == "__main__":
    sys.exit(bench(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else main())
