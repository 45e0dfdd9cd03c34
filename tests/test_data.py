import numpy as np
import pytest
import torch
from PIL import Image

from mprnet.data import PairedDataset, PairedPatches, SyntheticPairs, dihedral, open_paired, random_patches, read_rgb
from mprnet.degrade import Degradation, GaussianNoise, MotionBlur
from mprnet.errors import DataError


def write_png(path, height=12, width=10, seed=0, values=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if values is None:
        values = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(values).save(path)
    return values


def clean_folder(root, count=3, height=40, width=48):
    for number in range(count):
        write_png(root / f"photo{number}.png", height, width, seed=number)
    return root


class RecordingDegradation(Degradation):
    """Returns the image unchanged and remembers the shape it was given."""

    task = "denoise"

    def __init__(self, margin):
        self.margin, self.shapes = margin, []

    def sample(self, rng, shape):
        self.shapes.append(shape)
        return {}

    def apply(self, clean, params, rng):
        return clean + 0.25


# ---- crops and flips ---------------------------------------------------------------------------------------------


def test_dihedral_gives_eight_distinct_rearrangements():
    image = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    results = [dihedral(image, transform) for transform in range(8)]
    assert np.array_equal(results[0], image)
    assert len({result.tobytes() + bytes(result.shape) for result in results}) == 8
    assert all(np.array_equal(np.sort(result, axis=None), np.sort(image, axis=None)) for result in results)


def test_random_patches_crop_and_transform_every_image_alike():
    image = np.arange(30 * 20, dtype=np.float32).reshape(30, 20, 1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        first, second = random_patches([image, -image], 8, rng)
        assert first.shape == (8, 8, 1) and np.array_equal(second, -first)
        top, left = divmod(int(first.min()), 20)
        window = image[top : top + 8, left : left + 8]
        assert any(np.array_equal(dihedral(window, transform), first) for transform in range(8))


# ---- synthetic pairs ---------------------------------------------------------------------------------------------


def test_synthetic_pairs_give_degraded_and_clean_patches(tmp_path):
    pairs = SyntheticPairs(clean_folder(tmp_path), GaussianNoise(sigma=25), patch_size=16, seed=3)
    assert len(pairs) == 3
    degraded, clean = pairs[1]
    assert degraded.shape == clean.shape == (3, 16, 16)
    assert degraded.dtype == clean.dtype == torch.float32
    assert clean.min() >= 0 and clean.max() <= 1
    assert (degraded - clean).std() * 255 == pytest.approx(25, rel=0.2)


def test_synthetic_pairs_are_deterministic_per_seed_epoch_and_index(tmp_path):
    folder = clean_folder(tmp_path)
    pairs = SyntheticPairs(folder, GaussianNoise(sigma=10), patch_size=16, length=7, seed=1)
    assert len(pairs) == 7
    later_first = [pairs[index] for index in (6, 2, 0)]
    fresh = SyntheticPairs(folder, GaussianNoise(sigma=10), patch_size=16, length=7, seed=1)
    assert all(torch.equal(fresh[index][0], item[0]) for index, item in zip((6, 2, 0), later_first))
    other_seed = SyntheticPairs(folder, GaussianNoise(sigma=10), patch_size=16, length=7, seed=2)
    assert not torch.equal(other_seed[0][0], fresh[0][0])
    before = fresh[0][0]
    fresh.set_epoch(1)
    assert not torch.equal(fresh[0][0], before)
    with pytest.raises(IndexError):
        fresh[7]


def test_synthetic_pairs_read_on_demand_as_when_cached(tmp_path):
    folder = clean_folder(tmp_path)
    paths = sorted(folder.glob("*.png"))
    cached = SyntheticPairs(paths, GaussianNoise(sigma=10), patch_size=16, seed=4)
    on_demand = SyntheticPairs(paths, GaussianNoise(sigma=10), patch_size=16, seed=4, cache_images=False)
    assert cached.images[0].dtype == np.uint8 and on_demand.images is None
    assert all(torch.equal(cached[index][0], on_demand[index][0]) for index in range(3))


def test_synthetic_pairs_degrade_a_larger_crop_for_context(tmp_path):
    degradation = RecordingDegradation(margin=5)
    pairs = SyntheticPairs(clean_folder(tmp_path), degradation, patch_size=16)
    degraded, clean = pairs[0]
    assert degradation.shapes == [(26, 26, 3)]
    assert degraded.shape == (3, 16, 16) and torch.allclose(degraded, clean + 0.25)
    SyntheticPairs(clean_folder(tmp_path / "small", 1, 20, 30), degradation, patch_size=16)[0]
    assert degradation.shapes[-1] == (20, 20, 3)  # only as much context as the photo has


def test_synthetic_pairs_with_blur_keep_the_patch_size(tmp_path):
    pairs = SyntheticPairs(clean_folder(tmp_path), MotionBlur(kernel_size=(7, 11)), patch_size=16)
    degraded, clean = pairs[2]
    assert degraded.shape == clean.shape == (3, 16, 16)
    assert not torch.equal(degraded, clean)


def test_synthetic_pairs_name_unreadable_and_small_files(tmp_path):
    folder = clean_folder(tmp_path)
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png"):
        SyntheticPairs(folder, GaussianNoise(sigma=5), patch_size=16)
    (folder / "broken.png").unlink()
    write_png(folder / "tiny.png", 12, 12)
    with pytest.raises(DataError, match=r"at least 16x16.*tiny.png \(12x12\)"):
        SyntheticPairs(folder, GaussianNoise(sigma=5), patch_size=16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"Expected clean images, found none in .*empty"):
        SyntheticPairs(tmp_path / "empty", GaussianNoise(sigma=5), patch_size=16)
    with pytest.raises(DataError, match=r"found no folder at .*photo0\.png"):
        SyntheticPairs(tmp_path / "photo0.png", GaussianNoise(sigma=5), patch_size=16)


# ---- paired layouts ----------------------------------------------------------------------------------------------


def test_generic_input_target_folders_pair_by_stem(tmp_path):
    first = write_png(tmp_path / "input" / "a.png", seed=1)
    write_png(tmp_path / "target" / "a.png", seed=2)
    write_png(tmp_path / "input" / "b.png", seed=3)
    write_png(tmp_path / "target" / "b.bmp", seed=4)
    dataset = open_paired(tmp_path)
    assert dataset.layout == "folders" and dataset.names == ["a", "b"] and len(dataset) == 2
    assert dataset.pairs[1][1].name == "b.bmp" and dataset.sizes == [(10, 12), (10, 12)]
    source, target = dataset[0]
    assert source.shape == target.shape == (3, 12, 10)
    assert torch.allclose(source, torch.from_numpy(first.transpose(2, 0, 1) / 255).float())


def test_input_target_folders_named_for_rain_have_the_rain_layout(tmp_path):
    root = tmp_path / "Rain100H"
    write_png(root / "input" / "1.png")
    write_png(root / "target" / "1.png")
    assert open_paired(root).layout == "rain"


def test_rainy_norain_folders_pair_without_prefixes(tmp_path):
    for number in (1, 2):
        write_png(tmp_path / "rainy" / f"rain-{number:03d}.png")
        write_png(tmp_path / "norain" / f"norain-{number:03d}.png")
    dataset = open_paired(tmp_path)
    assert dataset.layout == "rain" and dataset.names == ["001", "002"]
    assert dataset.pairs[0][1].name == "norain-001.png"


def test_gopro_sequences(tmp_path):
    for sequence in ("GOPR0372_07_00", "GOPR0384_11_01"):
        for frame in ("000047", "000048"):
            write_png(tmp_path / sequence / "blur" / f"{frame}.png")
            write_png(tmp_path / sequence / "sharp" / f"{frame}.png")
    dataset = open_paired(tmp_path)
    assert dataset.layout == "gopro" and len(dataset) == 4
    assert dataset.names[2] == "GOPR0384_11_01/000047"
    assert all(source.parent.name == "blur" and target.parent.name == "sharp" for source, target in dataset.pairs)


def test_sidd_scenes(tmp_path):
    for scene in ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"):
        prefix = scene[:4]
        for shot in ("010", "011"):
            write_png(tmp_path / scene / f"{prefix}_NOISY_SRGB_{shot}.PNG")
            write_png(tmp_path / scene / f"{prefix}_GT_SRGB_{shot}.PNG")
    dataset = open_paired(tmp_path)
    assert dataset.layout == "sidd" and len(dataset) == 4
    assert all(target.name == source.name.replace("NOISY", "GT") for source, target in dataset.pairs)
    assert dataset.names[0] == "0001_001_S6_00100_00060_3200_L/0001_NOISY_SRGB_010"


def test_missing_partners_are_named(tmp_path):
    write_png(tmp_path / "input" / "a.png")
    write_png(tmp_path / "target" / "a.png")
    write_png(tmp_path / "input" / "lonely.png")
    write_png(tmp_path / "target" / "orphan.png")
    with pytest.raises(DataError, match=r"2 problems: .*lonely.png has no target partner; .*orphan.png has no input"):
        open_paired(tmp_path)


def test_size_mismatch_and_unreadable_files_are_named(tmp_path):
    write_png(tmp_path / "input" / "a.png", 12, 10)
    write_png(tmp_path / "target" / "a.png", 12, 11)
    write_png(tmp_path / "input" / "b.png")
    (tmp_path / "target").joinpath("b.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError) as caught:
        open_paired(tmp_path)
    message = str(caught.value)
    assert "input/a.png is 10x12 but" in message and "target/a.png is 11x12" in message
    assert "target/b.png is not a readable image" in message


def test_unknown_layout_and_missing_folder(tmp_path):
    write_png(tmp_path / "photos" / "a.png")
    with pytest.raises(DataError, match="Expected a paired data set"):
        open_paired(tmp_path)
    with pytest.raises(DataError, match="no folder"):
        open_paired(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"found no .*target"):
        PairedDataset.folders(tmp_path / "photos", "input", "target")


# ---- patches of paired data --------------------------------------------------------------------------------------


def test_paired_patches_share_crop_and_flip(tmp_path):
    for number in range(2):
        values = write_png(tmp_path / "input" / f"{number}.png", 30, 24, seed=number)
        write_png(tmp_path / "target" / f"{number}.png", values=255 - values)
    patches = PairedPatches(open_paired(tmp_path), patch_size=8, seed=5, length=6)
    assert len(patches) == 6
    for index in range(6):
        source, target = patches[index]
        assert source.shape == target.shape == (3, 8, 8)
        assert torch.allclose(target, 1 - source, atol=1e-6)
    assert torch.equal(patches[3][0], PairedPatches(open_paired(tmp_path), 8, seed=5, length=6)[3][0])
    before = patches[3][0]
    patches.set_epoch(2)
    assert not torch.equal(patches[3][0], before)


def test_paired_patches_reject_pairs_smaller_than_the_patch(tmp_path):
    write_png(tmp_path / "input" / "small.png", 12, 10)
    write_png(tmp_path / "target" / "small.png", 12, 10)
    with pytest.raises(DataError, match=r"small \(10x12\)"):
        PairedPatches(open_paired(tmp_path), patch_size=11)


def test_read_rgb_turns_gray_into_three_channels(tmp_path):
    Image.fromarray(np.full((9, 8), 51, np.uint8)).save(tmp_path / "gray.png")
    image = read_rgb(tmp_path / "gray.png")
    assert image.shape == (9, 8, 3) and image.dtype == np.float32 and np.allclose(image, 0.2)
