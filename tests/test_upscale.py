"""`repsr upscale`: exact tiling, every kind of image, batches that survive bad files, output rules."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from repsr_cli import Upscaler
from repsr_cli.errors import UserError
from repsr_cli.infer.batch import Callbacks, Job, OutputPlan, collect_inputs, my_share, plan_jobs, upscale_files
from repsr_cli.infer.engines import Engine, available
from repsr_cli.media.read import ImageFile, read_image
from repsr_cli.media.write import write_image
from repsr_cli.model import RepSRNet, fuse, size_config

from .conftest import cli, run_cli


def deploy(scale: int, seed: int = 0):
    torch.manual_seed(seed)
    return fuse(RepSRNet(size_config("tiny", scale)).eval())


@pytest.fixture(scope="module")
def x2() -> Upscaler:
    return Upscaler(deploy(2), tile=0)


# In fp32. OpenVINO's CPU convolutions do not block by image size as ncnn's Winograd does (the next test).
EXACT_ENGINES = [
    "torch",
    pytest.param("openvino", marks=pytest.mark.skipif(not available("openvino"), reason="openvino is absent")),
]


@pytest.mark.parametrize("engine", EXACT_ENGINES)
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("tile", [8, 17, 32])
def test_tiled_output_is_bit_identical_to_whole_image(engine: str, scale: int, tile: int) -> None:
    net = deploy(scale, seed=scale)
    rng = np.random.default_rng(scale)
    img = rng.integers(0, 65536, (53, 71, 3), dtype=np.uint16)  # 16-bit output shows float differences
    whole = Upscaler(net, tile=0, engine=engine, precision="fp32").upscale_array(img)
    tiled = Upscaler(net, tile=tile, engine=engine, precision="fp32").upscale_array(img)
    assert np.array_equal(whole, tiled)
    # Without the receptive-field overlap the seams are visible: the test can fail.
    short = Upscaler(net, tile=tile, engine=engine, precision="fp32")
    short.radius = 1
    assert not np.array_equal(whole, short.upscale_array(img))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shuffling_after_rounding_gives_the_network_s_own_image(scale: int, dtype: type) -> None:
    """The PyTorch engine rounds the sub-pixel planes and shuffles the integers (DeployNet.subpixels, to_array
    with a scale): the same image as the network's forward, shuffled in floats, then rounded."""
    from repsr_cli.media.tensors import to_array, to_tensor

    net = deploy(scale, seed=scale).eval()
    img = np.random.default_rng(scale).integers(0, np.iinfo(dtype).max + 1, (19, 23, 3), dtype=dtype)
    with torch.inference_mode():
        want = to_array(net(to_tensor(img)), dtype)
    got = Upscaler(net, tile=0, engine="torch", precision="fp32").upscale_array(img)
    assert got.dtype == dtype and np.array_equal(got, want)


@pytest.mark.parametrize("tile", [8, 17, 32])
def test_ncnn_tiles_differ_from_the_whole_image_by_one_level_at_most(tile: int) -> None:
    """ncnn's Winograd kernels block the image by its size, so a value may round one level apart, never more,
    even at 16 bits (README); the overlap is what keeps it there."""
    pytest.importorskip("ncnn")
    net = deploy(4, seed=4)
    img = np.random.default_rng(4).integers(0, 65536, (53, 71, 3), dtype=np.uint16)
    whole = Upscaler(net, tile=0, engine="ncnn").upscale_array(img).astype(int)
    assert np.abs(Upscaler(net, tile=tile, engine="ncnn").upscale_array(img) - whole).max() <= 1
    short = Upscaler(net, tile=tile, engine="ncnn")
    short.radius = 1
    assert np.abs(short.upscale_array(img) - whole).max() > 1


def test_tiles_per_batch_changes_nothing() -> None:
    net = deploy(2)
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    one = Upscaler(net, tile=16, tiles_per_batch=1).upscale_array(img)
    four = Upscaler(net, tile=16, tiles_per_batch=4).upscale_array(img)
    assert np.array_equal(one, four)


def test_api_accepts_pil_and_numpy(x2: Upscaler) -> None:
    arr = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    assert x2.upscale(arr).shape == (20, 24, 3)
    out = x2.upscale(Image.fromarray(arr))
    assert isinstance(out, Image.Image) and out.size == (24, 20) and out.mode == "RGB"
    assert np.array_equal(np.asarray(out), x2.upscale(arr))
    with pytest.raises(UserError):
        x2.upscale(np.zeros((4, 4, 5), np.uint8))


def test_grey_stays_grey_and_alpha_is_kept(x2: Upscaler) -> None:
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    assert x2.upscale_array(grey).shape == (20, 24)
    rgba = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:5, :, 3] = 0
    out = x2.upscale_array(rgba)
    assert out.shape == (20, 24, 4)
    assert np.array_equal(out[..., :3], x2.upscale_array(np.ascontiguousarray(rgba[..., :3])))
    assert (out[:8, :, 3] == 0).all() and (out[12:, :, 3] == 255).all()
    through_model = Upscaler(x2.model, tile=0, alpha="model").upscale_array(rgba)
    assert through_model.shape == (20, 24, 4)


def roundtrip(tmp_path: Path, name: str, save, upscaler: Upscaler) -> ImageFile:
    src = tmp_path / name
    save(src)
    image = read_image(src)
    image.pixels = upscaler.upscale_array(image.pixels)
    out = tmp_path / f"out_{name}"
    write_image(image, out)
    return read_image(out)


def test_image_kinds_survive_a_round_trip(tmp_path: Path, x2: Upscaler) -> None:
    rng = np.random.default_rng(3)
    rgb16 = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)

    def png16(path: Path) -> None:
        write_image(ImageFile(rgb16), path)

    out = roundtrip(tmp_path, "deep.png", png16, x2)
    assert out.pixels.dtype == np.uint16 and out.pixels.shape == (18, 22, 3)
    assert read_image(tmp_path / "deep.png").pixels.tolist() == rgb16.tolist()  # 16 bits really stored

    out = roundtrip(tmp_path, "deep.tif", lambda p: write_image(ImageFile(rgb16), p), x2)
    assert out.pixels.dtype == np.uint16 and out.pixels.shape == (18, 22, 3)

    grey16 = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    out = roundtrip(tmp_path, "grey16.png", lambda p: Image.fromarray(grey16).save(p), x2)
    assert out.pixels.dtype == np.uint16 and out.pixels.shape == (18, 22, 1)

    out = roundtrip(tmp_path, "grey.png", Image.fromarray((grey16 // 257).astype(np.uint8)).save, x2)
    assert out.pixels.shape == (18, 22, 1) and Image.open(tmp_path / "out_grey.png").mode == "L"

    la = Image.fromarray(rng.integers(0, 256, (9, 11, 2), dtype=np.uint8), "LA")
    out = roundtrip(tmp_path, "la.png", la.save, x2)
    assert out.pixels.shape == (18, 22, 2)

    palette = Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)).quantize(16)
    palette.info["transparency"] = 0
    out = roundtrip(tmp_path, "pal.png", lambda p: palette.save(p, transparency=0), x2)
    assert out.pixels.shape == (18, 22, 4)

    cmyk = Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)).convert("CMYK")
    out = roundtrip(tmp_path, "cmyk.jpg", cmyk.save, x2)
    assert out.pixels.shape == (18, 22, 3)


def test_exif_orientation_applied_and_metadata_carried(tmp_path: Path, x2: Upscaler) -> None:
    arr = np.zeros((10, 16, 3), np.uint8)
    arr[:, :4] = 255  # a white band on the left
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    exif[0x010F] = "repsr-test-camera"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "photo.jpg"
    im.save(src, exif=exif.tobytes(), icc_profile=icc, quality=95)
    image = read_image(src)
    assert image.pixels.shape == (16, 10, 3)  # upright
    image.pixels = x2.upscale_array(image.pixels)
    write_image(image, tmp_path / "photo_x2.jpg")
    with Image.open(tmp_path / "photo_x2.jpg") as out:
        assert out.size == (20, 32)
        assert out.info.get("icc_profile") == icc
        assert out.getexif().get(0x0112) == 1
        assert out.getexif().get(0x010F) == "repsr-test-camera"


def make_tree(root: Path) -> list[Path]:
    rng = np.random.default_rng(4)
    paths = [root / "a.png", root / "sub" / "b.jpg", root / "sub" / "deeper" / "c.png"]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(p)
    return paths


def test_output_planning(tmp_path: Path) -> None:
    root = tmp_path / "in"
    a, b, c = make_tree(root)
    flat = plan_jobs(collect_inputs([root]), OutputPlan(suffix="_x2"))
    assert [j.target for j in flat] == [root / "a_x2.png"]
    deep = plan_jobs(collect_inputs([root], recursive=True), OutputPlan(tmp_path / "out", "webp", "_up"))
    assert sorted(j.target.relative_to(tmp_path / "out").as_posix() for j in deep) == [
        "a_up.webp",
        "sub/b_up.webp",
        "sub/deeper/c_up.webp",
    ]
    globbed = collect_inputs([str(root / "sub" / "**" / "*.png")])
    assert [p for p, _ in globbed] == [c]
    single = plan_jobs(collect_inputs([a]), OutputPlan(tmp_path / "one.tiff"))
    assert single == [Job(a, tmp_path / "one.tiff")]
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(UserError, match="output folder"):
        plan_jobs(collect_inputs([a, b]), OutputPlan(tmp_path / "file.png"))


def test_ranks_split_the_files(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = [Job(Path(f"{i}.png"), Path(f"{i}_x2.png")) for i in range(5)]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert [j.source.name for j in my_share(jobs)] == ["1.png", "3.png"]


def test_batch_survives_bad_files(tmp_path: Path, x2: Upscaler) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(np.full((6, 6, 3), 100, np.uint8)).save(good)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    truncated = tmp_path / "truncated.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    found = collect_inputs([tmp_path / "empty.png", tmp_path / "text.png", truncated, good, tmp_path / "gone.png"])
    jobs = plan_jobs(found, OutputPlan(tmp_path / "out", suffix="_x2"))
    failures: list[str] = []
    events = Callbacks(file_done=lambda job, status, detail: failures.append(detail) if status == "failed" else None)
    report = upscale_files(x2, jobs, 2, events=events)
    assert report.done == 1 and len(report.failed) == 4
    assert (tmp_path / "out" / "good_x2.png").exists()
    assert not any(p.name.startswith(("empty", "text", "truncated")) for p in (tmp_path / "out").iterdir())
    for name, detail in zip(["empty.png", "text.png", "truncated.png", "gone.png"], failures, strict=True):
        assert name in detail and "\n" not in detail


def test_cli_batch_rules(tmp_path: Path, tiny_checkpoint: Path) -> None:
    root = tmp_path / "in"
    a, _, _ = make_tree(root)
    (root / "broken.png").write_bytes(b"\x89PNG garbage")
    result = cli("upscale", root, "-r", "-s", "2", "-m", tiny_checkpoint, "-o", tmp_path / "out", "--format", "png")
    assert result.returncode == 1  # one failure
    assert "broken.png" in result.stderr and "Traceback" not in result.stderr
    made = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    tag = f"_x2-{tiny_checkpoint.stem}.png"  # -m names the model in the output's name
    assert made == [f"a{tag}", f"sub/b{tag}", f"sub/deeper/c{tag}"]
    assert "summary" in result.stdout
    os.remove(root / "broken.png")
    stamp = (tmp_path / "out" / f"a{tag}").stat().st_mtime_ns
    again = cli("upscale", root, "-r", "-s", "2", "-m", tiny_checkpoint, "-o", tmp_path / "out", "--format", "png")
    assert again.returncode == 0 and again.stdout.count("skipped") >= 3
    assert (tmp_path / "out" / f"a{tag}").stat().st_mtime_ns == stamp
    # Arbitrary factors and sizes finish with a resize.
    assert cli("upscale", a, "-s", "1.5", "-m", tiny_checkpoint, "-o", tmp_path / "a15.png").returncode == 0
    assert Image.open(tmp_path / "a15.png").size == (15, 12)
    assert cli("upscale", a, "--width", "33", "-m", tiny_checkpoint, "-o", tmp_path / "w.png").returncode == 0
    assert Image.open(tmp_path / "w.png").size == (33, 26)


def test_decompression_bomb_guard(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(src)
    result = run_cli("upscale", src, "-s", "2", "-m", tiny_checkpoint, "--max-pixels", "100")
    assert result.returncode == 1 and "too large" in result.stderr and "--max-pixels" in result.stderr
    result = run_cli("upscale", src, "-s", "2", "-m", tiny_checkpoint, "--max-pixels", "10000")
    assert result.returncode == 0, result.stderr


def test_models_command_lists_bundled() -> None:
    result = cli("models")
    assert result.returncode == 0 and "repsr-tiny-x4" in result.stdout


def test_jpeg_quality_is_read_from_the_quantization_table(tmp_path: Path) -> None:
    from repsr_cli.media.read import jpeg_quality

    img = Image.fromarray(np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    for quality in range(1, 101):
        img.save(tmp_path / "q.jpg", quality=quality)
        with Image.open(tmp_path / "q.jpg") as im:
            assert jpeg_quality(im) == quality
    assert read_image(tmp_path / "q.jpg").quality == 100
    img.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").quality is None


def test_model_per_input_real_for_lossy_clean_for_lossless(tmp_path: Path, fake_bundle: Path) -> None:
    from repsr_cli.infer.upscaler import ModelPerInput

    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    sources = {
        "a.jpg": {"quality": 75},
        "b.png": {},
        "c.webp": {"lossless": True},
        "d.webp": {"quality": 80},
        "e.jpg": {"quality": 95},  # near-lossless: the clean model scores higher there
    }
    for name, opts in sources.items():
        Image.fromarray(img).save(tmp_path / name, **opts)
    jobs = plan_jobs(collect_inputs([tmp_path]), OutputPlan(tmp_path / "out", "png", "_x2"))
    used: dict[str, str] = {}
    events = Callbacks(file_done=lambda job, status, detail: used.update({job.source.name: detail}))
    report = upscale_files(ModelPerInput(2, tile=0), jobs, 2, events=events)
    assert report.done == 5 and not report.failed
    expected = {"a.jpg": "repsr-real-x2", "b.png": "repsr-x2", "c.webp": "repsr-x2", "d.webp": "repsr-real-x2"}
    expected["e.jpg"] = "repsr-x2"
    for name, model in expected.items():
        assert used[name].endswith(f", {model}"), used
        pixels = read_image(tmp_path / name).pixels
        want = Upscaler(model, tile=0).upscale_array(pixels)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / f"{Path(name).stem}_x2.png")), want), name


def test_cli_model_and_denoise_override_the_per_input_choice(tmp_path: Path, fake_bundle: Path) -> None:
    from typer.testing import CliRunner

    from repsr_cli.cli import app

    Image.fromarray(np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    pixels = read_image(tmp_path / "a.jpg").pixels
    runs = {"-m repsr-x2": "repsr-x2", "--denoise 0": "repsr-x2", "--denoise 1": "repsr-real-x2"}
    for i, (flags, model) in enumerate(runs.items()):
        out = tmp_path / f"o{i}.png"
        result = CliRunner().invoke(
            app, ["upscale", str(tmp_path / "a.jpg"), "-s", "2", "-o", str(out), *flags.split()]
        )
        assert result.exit_code == 0, result.output
        assert np.array_equal(np.asarray(Image.open(out)), Upscaler(model, tile=0).upscale_array(pixels)), flags


def test_out_of_memory_halves_the_batch_then_the_tile_and_remembers() -> None:
    """A device out of memory above some input size: the batch of tiles is split, then the tile shrinks, with
    one warning; the result equals the unconstrained one (tiling is exact) and later images keep the sizes.
    In PyTorch's fp32: bf16 kernels and ncnn's may round one level differently at another tile size."""
    net = deploy(2)
    img = np.random.default_rng(7).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    want = Upscaler(net, tile=0, precision="fp32", engine="torch").upscale_array(img)
    warnings: list[str] = []
    up = Upscaler(net, tile=40, tiles_per_batch=4, warn=warnings.append, precision="fp32", engine="torch")
    limit = [3000]

    class Limited:
        """The engine, out of memory above `limit` input pixels in one forward."""

        def __init__(self, engine: Engine) -> None:
            self.engine = engine

        def __call__(self, tiles: np.ndarray, cores: list) -> list[np.ndarray]:
            if tiles.shape[0] * tiles.shape[1] * tiles.shape[2] > limit[0]:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.engine(tiles, cores)

        def __getattr__(self, name: str) -> object:
            return getattr(self.engine, name)

    up._run = Limited(up._run)
    assert np.array_equal(up.upscale_array(img), want)  # interior tiles are 52x52: one at a time fits
    assert (up.tiles_per_batch, up.tile) == (1, 40)
    limit[0] = 2000  # now a 52x52 tile alone does not fit either
    seen: list[tuple[int, int]] = []
    assert np.array_equal(up.upscale_array(img, on_tile=lambda *a: seen.append(a)), want)
    assert (up.tiles_per_batch, up.tile) == (1, 32)  # halved from 40, but never under MIN_TILE
    assert all(done <= total for done, total in seen) and seen[-1] == (25, 25)  # the retry's 5x5 tiles
    assert len(warnings) == 1 and "out of cpu memory" in warnings[0]
    limit[0], up._run.engine = 10**9, lambda tiles, cores: (_ for _ in ()).throw(RuntimeError("some other failure"))
    with pytest.raises(RuntimeError, match="some other failure"):
        up.upscale_array(img)


def test_bf16_tiles_differ_from_the_whole_image_by_one_level_at_most() -> None:
    """What the README promises for bf16 (auto on AMX CPUs): another tile size may pick another kernel, whose
    rounding moves a value by one level, never more."""
    net = deploy(2)
    img = np.random.default_rng(7).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    whole = Upscaler(net, tile=0, precision="bf16").upscale_array(img).astype(int)
    for tile in (32, 40):
        tiled = Upscaler(net, tile=tile, precision="bf16").upscale_array(img).astype(int)
        assert np.abs(tiled - whole).max() <= 1, tile


def test_tile_progress_counts_the_alpha_pass_through_the_model() -> None:
    img = np.random.default_rng(8).integers(0, 256, (50, 70, 4), dtype=np.uint8)
    seen: list[tuple[int, int]] = []
    Upscaler(deploy(2), tile=32, alpha="model").upscale_array(img, on_tile=lambda *a: seen.append(a))
    assert seen == [(k, 12) for k in range(1, 13)]  # 2x3 tiles, colour then alpha


def test_default_names_say_the_size_asked_for(tmp_path: Path) -> None:
    """A rerun with another --size writes its own file instead of skipping the first run's output."""
    Image.fromarray(np.random.default_rng(8).integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    for flags in ([], ["--size", "small"], ["--detail", "0.5"], ["--size", "small", "--detail", "0.5"]):
        result = cli("upscale", tmp_path / "a.jpg", "-s", "2", *flags)
        assert result.returncode == 0 and "skipped" not in result.stdout.split("summary")[0], result.stdout
    names = sorted(p.name for p in tmp_path.glob("a_x2*"))
    assert names == ["a_x2-detail0.5.jpg", "a_x2-small-detail0.5.jpg", "a_x2-small.jpg", "a_x2.jpg"]


def test_the_automatic_cpu_tile_runs_an_image_of_about_one_tile_whole() -> None:
    """A tile and a sliver cost more than the whole image (docs/performance.md); an explicit --tile is kept."""
    auto = Upscaler(deploy(2), device="cpu", engine="torch")
    side = auto.tile
    assert auto.count_tiles(side, side) == 1 and auto.count_tiles(side + 40, side) == 1  # one tile and a sliver
    assert auto.count_tiles(2 * side, 2 * side) == 4
    img = np.random.default_rng(9).integers(0, 256, (side // 2 + 10, side + 30, 3), dtype=np.uint8)
    seen: list[tuple[int, int]] = []
    auto.upscale_array(img, on_tile=lambda *a: seen.append(a))
    assert seen == [(1, 1)]
    assert Upscaler(deploy(2), device="cpu", engine="torch", tile=side).count_tiles(side + 40, side) == 2
