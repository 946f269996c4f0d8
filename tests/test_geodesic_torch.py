"""The PyTorch raster scan (nnunet_ext.targets.geodesic_torch) against FastGeodis on the same arrays, the
automatic fallback when FastGeodis is missing, and that the targets and trainers import without it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from nnunet_ext.synthetic import KINDS
from nnunet_ext.targets import SiNGOptions, geodesic_torch, get_kind, make_options, sing_maps
from nnunet_ext.targets.geodesic import geodesic_backend, geodesic_device, geodesic_distance

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]
LAMBDAS = (0.0, 0.3, 0.5, 1.0)  # 0.3: 1 - lambda is not a float32 number, so its rounding matters
TOLERANCE = {"rtol": 1e-6, "atol": 1e-6}  # float32 rounding; measured difference: 0 on every array here


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Both backends are fastest on these small arrays with one thread (more only contend on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fastgeodis():
    return pytest.importorskip("FastGeodis", reason="FastGeodis is not installed: nothing to compare with")


def random_case(rng: np.random.Generator, channels: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(image (1, C, *shape), softmask (1, 1, *shape)): noise with a step edge, about 3 % seeds (0)."""
    image = rng.standard_normal((1, channels, *shape)).astype(np.float32)
    image[..., shape[-1] // 2:] += 4.0
    softmask = rng.random((1, 1, *shape)) > 0.03
    softmask.flat[0] = False
    return torch.from_numpy(image), torch.from_numpy(softmask.astype(np.float32))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("iterations", (1, 2, 3, 4))
@pytest.mark.parametrize("lam", LAMBDAS)
def test_3d_equals_fastgeodis(fastgeodis, lam, iterations, device):
    image, softmask = random_case(np.random.default_rng(iterations), 2, (9, 12, 11))
    spacing = [2.5, 0.8, 1.3]
    theirs = fastgeodis.generalised_geodesic3d(image, softmask, spacing, 1e10, lam, iterations)
    ours = geodesic_torch.generalised_geodesic3d(image.to(device), softmask.to(device), spacing, 1e10, lam, iterations)
    assert ours.device.type == device and ours.shape == theirs.shape
    np.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), **TOLERANCE)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("iterations", (1, 2, 3, 4))
@pytest.mark.parametrize("lam", LAMBDAS)
def test_2d_equals_fastgeodis(fastgeodis, lam, iterations, device):
    image, softmask = random_case(np.random.default_rng(10 + iterations), 3, (17, 14))
    theirs = fastgeodis.generalised_geodesic2d(image, softmask, 1e10, lam, iterations)
    ours = geodesic_torch.generalised_geodesic2d(image.to(device), softmask.to(device), 1e10, lam, iterations)
    np.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), **TOLERANCE)


def maps_with(backend: str, device: str, kind: str, image, masks, spacing, params=None) -> np.ndarray:
    with geodesic_backend(backend), geodesic_device(device):
        return get_kind(kind).compute(image, masks, np.ones(masks.shape[1:], bool), spacing, make_options(kind, params))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dataset, spacing", [("brats", (1.5, 1.0, 1.0)), ("binary", (1.0, 1.0, 2.0)),
                                              ("2d", (1.0, 1.0))])
def test_synthetic_maps_equal_with_either_backend(fastgeodis, dataset, spacing, device):
    """SiNG (paper and authors' options: lambda 0.5 and 0, one channel and all) and GeoLS maps of a case of
    each synthetic set, as nnU-Net normalises it (z-score inside the nonzero region)."""
    shape = (32, 32, 24) if len(spacing) == 3 else (48, 48)
    images, label = KINDS[dataset].make_case(np.random.default_rng(0), shape, spacing, 0)
    image = np.stack(images).astype(np.float32)
    inside = image[0] != 0
    image = np.where(inside, (image - image[:, inside].mean(1).reshape(-1, *[1] * len(shape)))
                     / image[:, inside].std(1).reshape(-1, *[1] * len(shape)), 0).astype(np.float32)
    masks = np.stack([label > 0, label >= 2]) if dataset == "brats" else (label > 0)[None]
    assert masks.any(axis=tuple(range(1, masks.ndim))).all()
    for kind, params in (("sing", None), ("sing", SiNGOptions.authors_code().as_params()), ("geols", None)):
        theirs = maps_with("fastgeodis", "cpu", kind, image, masks, spacing, params)
        ours = maps_with("torch", device, kind, image, masks, spacing, params)
        np.testing.assert_allclose(ours, theirs, **TOLERANCE, err_msg=f"{kind} {params}")


def test_brats_sample_distance_equals_fastgeodis(fastgeodis, sample_data):
    """G^lambda (FLAIR and T1c, lambda 0.5, 4 iterations) to the whole tumour of a BraTS 2015 case, on the
    tumour's bounding box grown by 8 voxels (the whole brain box takes FastGeodis seconds)."""
    import SimpleITK as sitk

    case = sorted(p for p in sample_data("brats2015_sample").glob("*/") if (p / "OTMultiClass.nii.gz").exists())[0]
    read = {name: sitk.GetArrayFromImage(sitk.ReadImage(str(case / f"{name}.nii.gz")))
            for name in ("Flair_subtrMeanDivStd", "T1c_subtrMeanDivStd", "OTMultiClass")}
    tumour = read["OTMultiClass"] > 0
    box = tuple(slice(max(int(i.min()) - 8, 0), int(i.max()) + 9) for i in np.nonzero(tumour))
    image = np.stack([read["Flair_subtrMeanDivStd"][box], read["T1c_subtrMeanDivStd"][box]]).astype(np.float32)
    with geodesic_backend("fastgeodis"):
        theirs = geodesic_distance(image, tumour[box], (1.0, 1.0, 1.0), 0.5, 1e10, 4)
    with geodesic_backend("torch"):
        ours = geodesic_distance(image, tumour[box], (1.0, 1.0, 1.0), 0.5, 1e10, 4)
    np.testing.assert_allclose(ours, theirs, **TOLERANCE)


WITHOUT_FASTGEODIS = """
import importlib, json, pkgutil, sys
import numpy as np, torch
torch.set_num_threads(1)
import nnunet_ext.targets, nnunet_ext.trainers
for module in pkgutil.iter_modules(nnunet_ext.trainers.__path__):  # every trainer module, as nnU-Net's look-up does
    importlib.import_module(f"nnunet_ext.trainers.{module.name}")
imported = "FastGeodis" in sys.modules
sys.modules["FastGeodis"] = None  # from here on, import FastGeodis fails as if it were not installed
from nnunet_ext.targets import make_options, sing_maps
from nnunet_ext.targets.geodesic import geodesic_backend
arrays = np.load(sys.argv[1])
maps = sing_maps(arrays["image"], arrays["masks"], arrays["valid"], (1.0, 1.0, 2.0), make_options("sing"))
np.save(sys.argv[2], maps)
try:
    with geodesic_backend("fastgeodis"):
        sing_maps(arrays["image"], arrays["masks"], arrays["valid"], (1.0, 1.0, 2.0), make_options("sing"))
    refused = None
except ValueError as error:
    refused = str(error)
print(json.dumps({"imported": imported, "refused": refused}))
"""


def test_without_fastgeodis_nothing_imports_it_and_sing_maps_are_the_same(tmp_path):
    """In a fresh interpreter: importing nnunet_ext.targets and every trainer module leaves FastGeodis
    unimported; with FastGeodis unimportable the SiNG maps come from the PyTorch scan (said once on stderr)
    and equal this process' maps (FastGeodis where installed)."""
    rng = np.random.default_rng(3)
    grid = np.indices((20, 22, 16)).astype(np.float32)
    masks = (np.sqrt(((grid - np.array([10, 11, 8])[:, None, None, None]) ** 2).sum(0)) < 6)[None]
    image = (masks[0] * 2.0 + rng.standard_normal(masks.shape[1:])).astype(np.float32)[None]
    valid = np.ones(masks.shape[1:], bool)
    np.savez(tmp_path / "case.npz", image=image, masks=masks, valid=valid)
    completed = subprocess.run([sys.executable, "-c", WITHOUT_FASTGEODIS, str(tmp_path / "case.npz"),
                                str(tmp_path / "maps.npy")], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.splitlines()[-1])
    assert not result["imported"], "importing nnunet_ext.targets or a trainer module imported FastGeodis"
    assert result["refused"] and "not importable" in result["refused"]
    assert completed.stderr.count("geodesic distances on cpu with the PyTorch raster scan") == 1
    here = sing_maps(image, masks, valid, (1.0, 1.0, 2.0), SiNGOptions())
    np.testing.assert_allclose(np.load(tmp_path / "maps.npy"), here, **TOLERANCE)
