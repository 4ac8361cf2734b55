"""Image datasets for the MOTE estimator, loaded as one uint8 array and kept as one device tensor.

``digits``       scikit-learn's bundled 8x8 digits as 32x32 RGB: offline, the quickstart default.
``cifar100-rd``  MOTE's reduced dataset (MOTE_SPEC §5): CIFAR-100 train images of the 10 labels the
                 authors selected, 500 per label (torchvision, downloaded on first use).
``npz``          a user's file with ``x`` (N x H x W x 3 uint8) and ``y`` (N integer labels).
``imagefolder``  a user's folder of class sub-folders (torchvision ImageFolder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from mote_optuna.errors import UserError

# The 10 CIFAR-100 labels of the authors' reduced dataset (MOTE_SPEC §5, shared/data README).
RD_LABELS = (
    "beaver", "caterpillar", "maple_tree", "orange", "pear",
    "poppy", "sea", "seal", "tractor", "willow_tree",
)  # fmt: skip


@dataclass
class DatasetConfig:
    """The ``dataset:`` section of a study file: which images the estimator trains on."""

    name: Literal["digits", "cifar100-rd", "npz", "imagefolder"] = "digits"
    path: str | None = None  # npz: the file; imagefolder: the folder
    root: str = "data"  # cifar100-rd: where torchvision keeps CIFAR-100
    download: bool = True  # cifar100-rd: download it when missing


@dataclass
class ImageArrays:
    """Images as ``N x H x W x 3`` uint8 with integer labels ``0 .. num_classes-1``."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class TensorData:
    """Training data on the device: ``x`` float32 N x 3 x R x R in [0, 1], ``y`` int64."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int


def load_arrays(config: DatasetConfig) -> ImageArrays:
    loaders = {
        "digits": _digits,
        "cifar100-rd": _cifar100_rd,
        "npz": _npz,
        "imagefolder": _imagefolder,
    }
    return loaders[config.name](config)


def per_label_subset(data: ImageArrays, images_per_label: int, seed: int) -> ImageArrays:
    """The first ``images_per_label`` images of each label after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    keep = []
    for label in range(data.num_classes):
        idx = np.flatnonzero(data.y == label)
        keep.append(np.sort(rng.permutation(idx)[:images_per_label]))
    chosen = np.concatenate(keep)
    return ImageArrays(data.x[chosen], data.y[chosen], data.class_names)


def to_tensor(data: ImageArrays, *, resolution: int, device: torch.device) -> TensorData:
    """One float tensor on ``device``, resized to ``resolution`` (antialiased when shrinking)."""
    x = torch.from_numpy(np.ascontiguousarray(data.x)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True)
    x = x.contiguous()
    y = torch.from_numpy(data.y.astype(np.int64)).to(device)
    return TensorData(x=x, y=y, num_classes=data.num_classes)


def _digits(config: DatasetConfig) -> ImageArrays:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (
        (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    )  # N x 8 x 8, 0..16 -> 0..255
    images = images.repeat(4, axis=1).repeat(4, axis=2)  # nearest upsampling to 32 x 32
    rgb = np.repeat(images[..., None], 3, axis=3)
    return ImageArrays(rgb, digits.target.astype(np.int64), [str(d) for d in range(10)])


def _cifar100_rd(config: DatasetConfig) -> ImageArrays:
    from torchvision.datasets import CIFAR100

    root = Path(config.root).expanduser()
    try:
        dataset = CIFAR100(str(root), train=True, download=config.download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise UserError(
            f"dataset cifar100-rd: CIFAR-100 not found under {root} ({exc}); set "
            "dataset.download: true on a machine with internet access, or put the extracted "
            "'cifar-100-python' folder under dataset.root"
        ) from None
    except OSError as exc:  # a failed download
        raise UserError(
            f"dataset cifar100-rd: downloading CIFAR-100 into {root} failed ({exc}); download "
            "cifar-100-python.tar.gz by hand, extract it under dataset.root and rerun"
        ) from None
    wanted = [dataset.class_to_idx[name] for name in RD_LABELS]
    targets = np.asarray(dataset.targets)
    keep = np.isin(targets, wanted)
    relabel = {old: new for new, old in enumerate(wanted)}
    y = np.array([relabel[t] for t in targets[keep]], dtype=np.int64)
    return ImageArrays(dataset.data[keep], y, list(RD_LABELS))


def _npz(config: DatasetConfig) -> ImageArrays:
    path = Path(str(config.path)).expanduser()
    if not path.is_file():
        raise UserError(
            f"dataset npz: file {path} not found; set dataset.path to an .npz file with arrays "
            "x (N x H x W x 3, uint8) and y (N labels)"
        )
    with np.load(path, allow_pickle=False) as npz:
        if "x" not in npz or "y" not in npz:
            raise UserError(f"dataset npz: {path} must hold arrays 'x' and 'y', has {list(npz)}")
        x, y = npz["x"], npz["y"]
        names = [str(n) for n in npz[k]] if (k := _names_key(npz)) else None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3 or len(x) != len(y):
        raise UserError(
            f"dataset npz: {path}: x must be uint8 N x H x W x 3 with one label per image, got "
            f"x {x.dtype} {x.shape} and y {y.shape}"
        )
    return _relabelled(x, y, names)


def _names_key(npz: np.lib.npyio.NpzFile) -> str | None:
    return next((k for k in ("class_names", "labels") if k in npz), None)


def _imagefolder(config: DatasetConfig) -> ImageArrays:
    from torchvision.datasets import ImageFolder

    path = Path(str(config.path)).expanduser()
    if not path.is_dir():
        raise UserError(
            f"dataset imagefolder: folder {path} not found; set dataset.path to a folder with "
            "one sub-folder of images per class"
        )
    try:
        folder = ImageFolder(str(path))
    except (FileNotFoundError, RuntimeError) as exc:
        raise UserError(f"dataset imagefolder: {path}: {exc}") from None
    size = 32
    images = [
        np.asarray(folder.loader(p).convert("RGB").resize((size, size))) for p, _ in folder.samples
    ]
    return ImageArrays(np.stack(images), np.asarray(folder.targets), list(folder.classes))


def _relabelled(x: np.ndarray, y: np.ndarray, names: list[str] | None) -> ImageArrays:
    labels, y_dense = np.unique(y, return_inverse=True)
    if names is None or len(names) != len(labels):
        names = [str(label) for label in labels]
    return ImageArrays(x, y_dense.astype(np.int64), names)
