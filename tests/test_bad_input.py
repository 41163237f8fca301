"""Bad values of options and files, in every command: one line, a non-zero exit, nothing lost, no traceback.

In-process (`cli`), so a torch import is not paid per case; signals and exit codes of real processes are
tested with subprocesses elsewhere (test_cli, test_video, test_train).
"""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from repsr_cli.deploy import weights
from repsr_cli.errors import UserError
from repsr_cli.formats import files
from repsr_cli.formats.deploy import save_deploy
from repsr_cli.model import DeployNet, size_config
from repsr_cli.train.trainer import Trainer

from .conftest import cli, tiny_config

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(result, *fragments: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nan"], "--scale must be a positive number"),
        (["-s", "0"], "--scale must be a positive number"),
        (["-s", "inf"], "--scale must be a positive number"),
        (["--png-compression", "42"], "--png-compression must be 0 to 9"),
        (["--quality", "0"], "--quality must be 1 to 100"),
        (["--width", "-5"], "--width must be at least 1"),
        (["--height", "0"], "--height must be at least 1"),
        (["--suffix", "/x"], "must be part of a file name"),
        (["--format", "gif"], "unknown --format 'gif'"),
        (["-s", "1000"], "needs about"),  # 96000x128000: more memory than the machine has
        (["-s", "600", "--format", "jpg"], "exceeds the JPEG limit"),
        (["--device", "cudaa"], "unknown device 'cudaa'"),
        (["--precision", "fp64"], "unknown precision 'fp64'"),
        (["--denoise", "2"], "--denoise must be between 0 and 1"),
        (["--detail", "-1"], "--detail must be between 0 and 1"),
        (["--size", "huge"], "unknown --size 'huge'"),
        (["--size", "small"], "--size and -m cannot be combined"),
        (["--detail", "0.5", "--denoise", "0.5"], "--denoise and --detail cannot be combined"),
        (["--detail", "0.5", "-m", "repsr-tiny-x4"], "--detail and -m cannot be combined"),
        (["--tile", "-5"], "--tile must be 0 (whole image) or more"),
        (["--max-pixels", "-1"], "--max-pixels must be at least 1"),
    ],
)
def test_upscale_option_values(image: Path, args: list[str], message: str) -> None:
    knob = "--denoise" in args or "--detail" in args
    result = cli("upscale", image, *args) if knob else cli("upscale", image, "-m", "repsr-tiny-x4", *args)
    if "needs about" in message or "exceeds" in message:
        assert result.returncode == 1 and message in result.stderr, result.stderr  # per-file failure line
    else:
        one_line_error(result, message)
    assert sorted(p.name for p in image.parent.iterdir()) == ["a.png"]  # nothing written


def test_bmp_output_is_accepted(image: Path) -> None:
    result = cli("upscale", image, "-m", "repsr-tiny-x4", "--format", "bmp")
    assert result.returncode == 0, result.stderr
    assert Image.open(image.with_name("a_x4-repsr-tiny-x4.bmp")).size == (512, 384)


def _deploy_file(path: Path, **metadata: str) -> dict[str, torch.Tensor]:
    save_deploy(DeployNet(size_config("tiny", 3)), path, **metadata)
    return load_file(str(path))


def test_broken_model_files_are_one_line_and_never_break_bundled_defaults(
    tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "models"
    user.mkdir()
    monkeypatch.setattr(weights, "user_model_dir", lambda: user)
    state = _deploy_file(user / "repsr-x3.safetensors")
    del state["body.2.weight"]
    save_file(state, str(user / "repsr-x3.safetensors"), metadata={"scale": "3"})
    _deploy_file(user / "badscale.safetensors", scale="three")
    nan = _deploy_file(tmp_path / "nan.safetensors")
    nan["body.0.weight"][0, 0, 0, 0] = float("nan")
    save_file(nan, str(tmp_path / "nan.safetensors"))
    one_line_error(cli("upscale", image, "-m", "repsr-x3"), "body.2.weight is missing")
    one_line_error(cli("upscale", image, "-m", "badscale"), "metadata says scale three")
    one_line_error(cli("upscale", image, "-m", tmp_path / "nan.safetensors"), "NaN or infinite", "body.0.weight")
    listing = cli("models")
    assert listing.returncode == 0 and "unreadable" in listing.stdout, listing.stderr
    result = cli("upscale", image, "-s", "3")  # the bundled repsr-x3, not the broken user file of that name
    assert result.returncode == 0, result.stderr
    assert Image.open(image.with_name("a_x3.png")).size == (384, 288)


def test_train_option_values(tmp_path: Path, image_folder: Path) -> None:
    cases = [
        (["--log-every", "0"], "--log-every must be at least 1"),
        (["--ckpt-every", "0"], "--ckpt-every must be at least 1"),
        (["--batch", "0"], "--batch must be at least 1"),
        (["--size", "huge"], "unknown --size 'huge'"),
        (["--preset", "huge"], "unknown --size 'huge'"),  # --size's old name, kept hidden for scripts
        (["--device", "cudaa"], "unknown device 'cudaa'"),
        (["--precision", "fp64"], "unknown --precision 'fp64'"),
        (["--degradation", "jpg"], "unknown --degradation 'jpg'"),
        (["--data-workers", "-1"], "--data-workers must be 0 or more"),
        (["--lr", "-1"], "--lr must be in (0, 1)"),
        (["--bn-switch", "inf"], "--bn-switch must be a fraction"),
        (["--max-hr-side", "0"], "--max-hr-side must be at least the HR patch side"),
        (["--max-hr-side", "-5"], "--max-hr-side must be at least the HR patch side"),
        (["--max-hr-side", "1", "--patch", "2"], "(2 x 2 = 4), or every image shrinks below a patch; got 1"),
        (["--loss", "sharp", "--patch", "1"], "the discriminator needs HR patches of at least 8 pixels"),
        (["--stop-at", "0"], "--stop-at must be at least 1"),
        (["--stop-at", "-3"], "--stop-at must be at least 1"),
        (["--init-from", "repsr-x4"], "is a fused deploy model: --init-from takes a training checkpoint"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "not available on this machine"))
    for args, message in cases:
        out = tmp_path / "run"
        small = ["--scale", "2", "--patch", "12", "--batch", "2"]
        one_line_error(cli("train", "--data", image_folder, "--out", out, "--iters", "2", *small, *args), message)
        assert not out.exists(), args  # nothing created for a run that cannot start


def test_the_api_names_a_deploy_model_given_as_init_from(tmp_path: Path, image_folder: Path) -> None:
    """The Python API says what the CLI says (the check lives in the trainer, not in cli.py)."""
    cfg = tiny_config(image_folder, tmp_path / "run", iters=2, init_from="repsr-x4")
    with pytest.raises(UserError, match="is a fused deploy model: --init-from takes a training checkpoint"):
        Trainer(cfg)
    assert not (tmp_path / "run").exists()


def test_tiny_images_are_skipped_in_training_and_eval(tmp_path: Path, image_folder: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for p in image_folder.iterdir():
        (data / p.name).write_bytes(p.read_bytes())
    Image.new("RGB", (1, 1)).save(data / "dot.png")
    (data / "broken.png").write_bytes(b"not a png")
    result = cli(
        "train",
        "--data",
        data,
        "--out",
        tmp_path / "run",
        "--scale",
        "2",
        "--iters",
        "2",
        "--batch",
        "2",
        "--patch",
        "12",
        "--bn-batches",
        "1",
        "--val-every",
        "0",
    )
    assert result.returncode == 0, result.stderr
    assert "dot.png" in result.stdout and "broken.png" in result.stdout
    scored = cli("eval", "-m", "bicubic", "--data", data, "-s", "2", "--json")
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert len(report["skipped"]) == 2 and len(report["results"][0]["per_image"]) == 6
    assert "dot.png" in scored.stderr and "broken.png" in scored.stderr
    one_line_error(cli("eval", "-m", "bicubic", "--data", data, "-s", "0"), "--scale must be at least 1")


def test_video_option_values(tmp_path: Path) -> None:
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"never read: the options are checked first")
    cases = [
        (["--start", "-3"], "--start must be 0 or more"),
        (["--duration", "0"], "must be a positive number of seconds"),
        (["--duration", "inf"], "must be a positive number of seconds"),
        (["--crf", "99"], "--crf must be 0 to 51 for libx264"),
    ]
    for args, message in cases:
        one_line_error(cli("upscale-video", clip, "-m", "repsr-tiny-x4", *args), message)


def test_files_that_are_not_checkpoints(tmp_path: Path, image: Path) -> None:
    one_line_error(cli("convert", image), "not a PyTorch file")
    one_line_error(cli("train", "--data", tmp_path / "none", "--out", tmp_path / "run"), "data folder not found")
    assert not (tmp_path / "run").exists()


def test_bench_option_values() -> None:
    one_line_error(cli("bench", "--size", "bogus"), "unknown --size 'bogus'")
    one_line_error(cli("bench", "--preset", "bogus"), "unknown --size 'bogus'")
    one_line_error(cli("bench", "--side", "0"), "--side and --scale must be at least 1")


def _run(tmp_path: Path, image_folder: Path) -> Path:
    out = tmp_path / "run"
    Trainer(tiny_config(image_folder, out, iters=4, ckpt_every=2)).run(stop_at=2)
    return out


@pytest.mark.parametrize("key", ["optimizer", "torch_rng", "iter"])
def test_resume_with_a_checkpoint_missing_a_part(tmp_path: Path, image_folder: Path, key: str) -> None:
    out = _run(tmp_path, image_folder)
    last = out / "checkpoints" / "last.pth"
    ckpt = torch.load(last, weights_only=True)
    del ckpt[key]
    torch.save(ckpt, last)
    one_line_error(cli("train", "--out", out, "--resume"), f"it has no {key}")


def test_resume_names_a_missing_model_tensor(tmp_path: Path, image_folder: Path) -> None:
    out = _run(tmp_path, image_folder)
    last = out / "checkpoints" / "last.pth"
    ckpt = torch.load(last, weights_only=True)
    del ckpt["model"]["body.0.weight"]
    torch.save(ckpt, last)
    one_line_error(cli("train", "--out", out, "--resume"), "misses the tensor 'body.0.weight'")


def test_a_torn_last_log_line_is_dropped_and_a_bad_line_is_named(tmp_path: Path, image_folder: Path) -> None:
    out = _run(tmp_path, image_folder)
    log = out / "log.jsonl"
    log.write_text(log.read_text() + '{"iter": 3, "lo')  # a crash mid-write
    result = cli("train", "--out", out, "--resume")
    assert result.returncode == 0, result.stderr
    records = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert [r["iter"] for r in records] == [1, 2, 3, 4]
    lines = log.read_text().splitlines()
    lines[2] = "garbage"
    log.write_text("\n".join(lines) + "\n")
    pytest.importorskip("matplotlib")
    one_line_error(cli("plot", out), "line 3 is not a log record")


def test_full_disk_keeps_the_last_good_checkpoint(
    tmp_path: Path, image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(tmp_path, image_folder)
    last = out / "checkpoints" / "last.pth"
    good = last.read_bytes()

    def full(obj: object, path: object) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match="disk full: checkpoint not written; the last good checkpoint is kept"):
        Trainer(tiny_config(image_folder, out, iters=4, ckpt_every=2), resume=True).run()
    assert last.read_bytes() == good
    assert [p.name for p in last.parent.iterdir() if p.name.startswith(".")] == []


def test_each_torchrun_rank_drives_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a GPU here, CUDA is faked to 4 devices: `cuda` and `auto` resolve to cuda:LOCAL_RANK."""
    from repsr_cli import runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert runtime.resolve_device("cuda") == torch.device("cuda", 2)
    assert runtime.resolve_device("auto") == torch.device("cuda", 2)
    assert runtime.resolve_device("cuda:3") == torch.device("cuda", 3)
    with pytest.raises(UserError, match="'cuda:4' is not available on this machine \\(4 CUDA devices found\\)"):
        runtime.resolve_device("cuda:4")


# ---- nothing lost, nothing silent (the hostile run of issue 28) ----------------------------------------------


def _noise(path: Path, size: tuple[int, int] = (24, 32), seed: int = 0, **save: object) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, **save)
    return path


def test_no_output_replaces_an_input_of_the_same_batch(tmp_path: Path) -> None:
    a, b = _noise(tmp_path / "a.png"), _noise(tmp_path / "a_x4.png", seed=1)
    before = b.read_bytes()
    result = cli("upscale", a, b, "-s", "4", "--overwrite")
    assert result.returncode == 1 and "another input of this batch" in result.stderr, result.stderr
    assert b.read_bytes() == before  # the input a_x4.png is intact
    assert (tmp_path / "a_x4_x4.png").exists()  # the rest of the batch went on


def test_a_folder_rerun_leaves_out_our_own_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    _noise(folder / "a.png")
    _noise(folder / "b.jpg", quality=90)
    first = cli("upscale", folder, "-s", "2")
    assert first.returncode == 0, first.stderr
    second = cli("upscale", folder, "-s", "2")
    assert second.returncode == 0, second.stderr
    assert "left out 2 file(s) that an earlier repsr run wrote" in second.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "a_x2.png", "b.jpg", "b_x2.jpg"]
    named = cli("upscale", folder / "a_x2.png", "-s", "4")  # named as a file: taken
    assert named.returncode == 0 and (folder / "a_x2_x4.png").exists(), named.stderr


@pytest.mark.parametrize("out_suffix", [".tif", ".png", ".jpg", ".webp"])
def test_tiff_layout_tags_are_not_carried(tmp_path: Path, out_suffix: str) -> None:
    src = _noise(tmp_path / "a.tif")
    target = tmp_path / f"out{out_suffix}"
    result = cli("upscale", src, "-m", "repsr-tiny-x4", "-o", target)
    assert result.returncode == 0, result.stderr
    with Image.open(target) as im:
        assert im.size == (128, 96)
        im.load()
        exif = im.getexif()
    if out_suffix != ".tif":  # a TIFF's own tags describe itself again
        assert not {256, 257, 273, 279} & set(exif), dict(exif)
    assert str(exif.get(0x0131, "")).startswith("repsr")


def test_exif_too_large_for_jpeg_is_dropped_with_a_note(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription
    src = _noise(tmp_path / "a.png", exif=exif.tobytes())
    result = cli("upscale", src, "-m", "repsr-tiny-x4", "-o", tmp_path / "a.jpg")
    assert result.returncode == 0, result.stderr
    assert "EXIF not carried" in result.stdout, result.stdout
    with Image.open(tmp_path / "a.jpg") as im:
        assert str(im.getexif().get(0x0131)).startswith("repsr")


def test_a_second_run_on_a_busy_output_is_refused(tmp_path: Path, image_folder: Path) -> None:
    """Two train runs on one --out, or two video runs on one output, would destroy each other's files; the lock
    is the OS's, so a run that was killed holds none."""
    from repsr_cli.formats.files import exclusive

    out = tmp_path / "run"
    out.mkdir()
    # what a live run holds
    with exclusive(out / ".train.lock"), pytest.raises(UserError, match="another train run is using this folder"):
        Trainer(tiny_config(image_folder, out, iters=2)).run()
    assert Trainer(tiny_config(image_folder, out, iters=2)).run().finished  # released: runs
    assert not (out / ".train.lock").exists()


def test_an_unreadable_validation_folder_is_refused(tmp_path: Path, image_folder: Path) -> None:
    val = tmp_path / "val"
    val.mkdir()
    (val / "broken.png").write_bytes(b"not a png")
    args = ["train", "--data", image_folder, "--out", tmp_path / "run", "--scale", "2", "--patch", "12"]
    one_line_error(cli(*args, "--val", val), "no validation image could be read")


def test_resume_refuses_changed_options_and_sigterm_is_not_success(tmp_path: Path, image_folder: Path) -> None:
    out = _run(tmp_path, image_folder)
    for flag, value in (("--scale", "3"), ("--size", "small")):
        one_line_error(cli("train", "--out", out, "--resume", flag, value), f"{flag} {value} differs from the run's")
    one_line_error(cli("train", "--out", out, "--resume", "--preset", "small"), "--size small differs from the run's")
    # a new length is refused where it would change steps taken (a cosine schedule scales with the length)
    one_line_error(cli("train", "--out", out, "--resume", "--iters", "9"), "--iters 9 would change the learning rate")
    one_line_error(cli("train", "--out", out, "--resume", "--stop-at", "2"), "the run is at iteration 2 already")
    assert cli("train", "--out", out, "--resume", "--iters", "4").returncode == 0  # the same value: fine


def test_a_checkpoint_before_its_bn_switch_is_flagged_in_train_and_convert(tmp_path: Path, image_folder: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", image_folder, "--out", out, "--scale", "2", "--iters", "4", "--patch", "12"]
    result = cli(*args, "--batch", "2", "--stop-at", "1")
    assert result.returncode == 0 and "before its BN switch" in result.stderr, result.stderr
    converted = cli("convert", out / "checkpoints" / "last.pth", "-o", tmp_path / "m.safetensors")
    assert converted.returncode == 0
    assert "warning: the run stopped at iteration 1 before its BN switch" in converted.stderr


def test_convert_refuses_what_it_cannot_write_right(tmp_path: Path, tiny_checkpoint: Path) -> None:
    wrong = cli("convert", tiny_checkpoint, "-o", tmp_path / "x.safetensors", "--format", "pth")
    one_line_error(wrong, "writes a .pth")
    one_line_error(cli("convert", tiny_checkpoint, "-o", tmp_path, "--overwrite"), "is a folder; name the output file")
    one_line_error(cli("convert", tiny_checkpoint, "-o", tmp_path / "no" / "m.safetensors"), "folder does not exist")
    one_line_error(cli("convert", "repsr-x4"), "is a deploy model already")
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["model"]["body.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(ckpt, tmp_path / "nan.pth")
    one_line_error(cli("convert", tmp_path / "nan.pth"), "NaN or infinite", "diverged")
    assert not (tmp_path / "nan.safetensors").exists()


def test_eval_and_plot_refuse_nonsense(tmp_path: Path, tiny_checkpoint: Path, image_folder: Path) -> None:
    one_line_error(cli("eval", "-m", "bicubic", "--data", image_folder, "-s", "2", "--degrade", "jpeg:²"), "jpeg:²")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.new("RGB", (8, 8)).save(tiny / "dot.png")  # nothing left after a 4-pixel crop per side
    result = cli("eval", "-m", "bicubic", "--data", tiny, "-s", "4")
    assert result.returncode == 1 and "dot: 8x8 leaves nothing after the 4-pixel border crop" in result.stderr
    assert result.stderr.splitlines()[-1].endswith("no image could be scored"), result.stderr
    same = tmp_path / "same"
    same.mkdir()
    Image.new("RGB", (32, 32), "gray").save(same / "flat.png")  # bicubic reproduces it: PSNR inf
    result = cli("eval", "-m", "bicubic", "--data", same, "-s", "2", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["results"][0]["psnr"] is None, result.stdout
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"iter": "x", "loss": 1}\n{"iter": 2, "loss": 1}\n')
    one_line_error(cli("plot", run), "line 1 is not a log record")
    (run / "log.jsonl").write_text('{"iter": 1, "loss": 1}\n{"iter": 2, "loss": 1}\n')
    (run / "config.json").write_text('{"iters": "abc"}')
    one_line_error(cli("plot", run, "-o", tmp_path / "missing" / "c.png"), "the output folder does not exist")
    one_line_error(cli("plot", run, "-o", tmp_path / "c.xyz"), "cannot plot to '.xyz'")
    assert cli("plot", run).returncode == 0  # a damaged config.json is left out, the log still plots


def test_tracebacks_of_the_hostile_run_are_one_line(tmp_path: Path, tiny_checkpoint: Path, image: Path) -> None:
    """Each case once raised a traceback (issue 28); the class it stands for is handled where it arises."""
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    damaged = {
        "version": "2.0",
        "iter": "abc",
        "config": [1],
        "train": [1],
    }
    for key, value in damaged.items():
        torch.save({**ckpt, key: value}, tmp_path / "bad.pth")
        one_line_error(cli("convert", tmp_path / "bad.pth", "-o", tmp_path / "o.safetensors"), "damaged checkpoint")
    torch.save({**ckpt, "config": {**ckpt["config"], "scale": "4"}}, tmp_path / "bad.pth")
    one_line_error(cli("upscale", image, "-m", tmp_path / "bad.pth"), "config scale '4': expected a value of type int")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    result = cli("upscale", tmp_path / "loop1", image, "-m", "repsr-tiny-x4")
    assert result.returncode == 1 and "a symbolic link to nothing (or to itself)" in result.stderr, result.stderr
    assert image.with_name("a_x4-repsr-tiny-x4.png").exists()
    one_line_error(cli("bench", "--size", "300000"), "--side 300000 is above 4096")  # the old name still works


def test_a_16_bit_png_with_a_bad_crc_is_named(tmp_path: Path) -> None:
    import png

    path = tmp_path / "deep.png"
    png.from_array(np.full((8, 8 * 3), 40000, np.uint16), "RGB;16").save(str(path))
    data = bytearray(path.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # corrupt the compressed data: the chunk's CRC no longer matches
    path.write_bytes(bytes(data))
    result = cli("upscale", path, "-m", "repsr-tiny-x4")
    assert result.returncode == 1 and "deep.png" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_an_unwritable_lr_cache_only_costs_time(tmp_path: Path, image_folder: Path, monkeypatch) -> None:
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    from repsr_cli.data.dataset import load_pairs

    pairs, _ = load_pairs(image_folder, 2)
    assert pairs and pairs[0].lr.shape[0] == pairs[0].hr.shape[0] // 2


def test_images_the_hostile_run_read_wrong(tmp_path: Path) -> None:
    """Each once gave a wrong image with exit 0 (issue 28)."""
    from repsr_cli.media.read import read_image

    rgb = np.random.default_rng(3).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "trns.png", transparency=tuple(int(v) for v in rgb[0, 0]))
    assert read_image(tmp_path / "trns.png").pixels[0, 0, 3] == 0  # tRNS: that colour is transparent
    rgba = np.dstack([rgb, np.full((6, 5), 77, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.bmp")  # 32-bit BMP with alpha, which Pillow drops
    assert np.array_equal(read_image(tmp_path / "a.bmp").pixels, rgba)
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", np.full((6, 5, 3), 0.5, np.float32), photometric="rgb")  # float RGB
    assert np.all(read_image(tmp_path / "f.tif").pixels == 32768)
    Image.fromarray(np.full((6, 5), 2.0, np.float32), "F").save(tmp_path / "f2.tif")  # above 1: clipped, not counts
    assert np.all(read_image(tmp_path / "f2.tif").pixels == 65535)
    cmyk = np.zeros((6, 5, 4), np.uint16)
    cmyk[..., 0] = 65535  # full cyan
    tifffile.imwrite(tmp_path / "c.tif", cmyk, photometric="separated")
    assert read_image(tmp_path / "c.tif").pixels[0, 0].tolist() == [0, 65535, 65535]  # cyan, not RGBA
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(UserError, match="has 2 frames"):
        read_image(tmp_path / "anim.gif")
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with pytest.raises(UserError, match="is a video: use `repsr upscale-video`"):
        read_image(tmp_path / "clip.mp4")


def test_gif_and_avif_are_found_and_avif_counts_as_lossy(tmp_path: Path) -> None:
    from repsr_cli.media.read import find_images, read_image

    rgb = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.gif")
    Image.fromarray(rgb).save(tmp_path / "b.avif", quality=60)
    assert [p.name for p in find_images(tmp_path)] == ["a.gif", "b.avif"]
    assert read_image(tmp_path / "b.avif").lossy and not read_image(tmp_path / "a.gif").lossy
    result = cli("upscale", tmp_path, "-s", "2")
    real = weights.default_model_name(2, "real", weights.CPU_SIZES)  # AVIF: the real model (a CPU's size)
    assert result.returncode == 0 and f"{real})" in result.stdout and "real" in real, result.stdout
    assert sorted(p.name for p in tmp_path.glob("*_x2.*")) == ["a_x2.png", "b_x2.png"]  # written as PNG


def test_a_cmyk_profile_is_not_attached_to_rgb_output(tmp_path: Path) -> None:
    header = bytearray(128)
    header[16:20] = b"CMYK"
    src = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 12), (0, 80, 160, 0)).save(src, icc_profile=bytes(header))
    result = cli("upscale", src, "-m", "repsr-tiny-x4", "-o", tmp_path / "o.png")
    assert result.returncode == 0 and "ICC profile not carried: it describes CMYK" in result.stdout, result.stdout
    assert "icc_profile" not in Image.open(tmp_path / "o.png").info


def test_integer_weights_and_pickles_are_named_for_what_they_are(tmp_path: Path, image: Path) -> None:
    state = _deploy_file(tmp_path / "q.safetensors")
    state["body.0.weight"] = state["body.0.weight"].to(torch.int8)
    save_file(state, str(tmp_path / "q.safetensors"))
    one_line_error(cli("upscale", image, "-m", tmp_path / "q.safetensors"), "holds int8 values")
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"params": Evil()}, tmp_path / "evil.pth")
    one_line_error(cli("upscale", image, "-m", tmp_path / "evil.pth"), "refusing to load", "posix.system")


def test_a_torch_file_that_would_unpack_beyond_reason_is_refused(tmp_path: Path) -> None:
    import zipfile

    bomb = tmp_path / "bomb.pth"
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("archive/data/0", "w", force_zip64=True) as entry,
    ):
        chunk = bytes(2**24)
        for _ in range(70):  # 1.1 GiB of zeros, about a megabyte on disk
            entry.write(chunk)
    assert bomb.stat().st_size < 8 * 2**20
    with pytest.raises(UserError, match="would unpack to 1.1 GiB"):
        files.read_torch_file(bomb)


def test_output_names_and_options_say_what_they_do(tmp_path: Path) -> None:
    a, b = _noise(tmp_path / "a.png"), _noise(tmp_path / "b.png", seed=1)
    one_line_error(cli("upscale", a, b, "-s", "2", "-o", tmp_path / "new.png"), "names one file, but 2 inputs")
    assert not (tmp_path / "new.png").exists()
    folder = f"{tmp_path / 'outdir.png'}/"  # a trailing slash: a folder, whatever the name looks like
    assert cli("upscale", a, "-s", "2", "-o", folder).returncode == 0
    assert (tmp_path / "outdir.png" / "a_x2.png").is_file()
    one_line_error(cli("upscale", a, "-s", "2", "-o", tmp_path / "o.png", "--format", "jpg"), "--format asks for jpg")
    one_line_error(cli("upscale", a, "-s", "2", "--quality", "80"), "--quality is for JPEG and WebP outputs")
    one_line_error(cli("upscale", a, "-s", "2", "--format", "jpg", "--png-compression", "3"), "--png-compression is")
    one_line_error(cli("upscale", a, "-s", "2", "--width", "100"), "-s and --width/--height both set")
    assert cli("upscale", a, "--width", "100").returncode == 0 and Image.open(tmp_path / "a_w100.png").width == 100


def test_an_old_format_torch_file_is_refused_before_unpickling(tmp_path: Path) -> None:
    legacy = tmp_path / "old.pth"
    torch.save({"params": {}}, legacy, _use_new_zipfile_serialization=False)  # the pre-1.6 format
    with pytest.raises(UserError, match="old-format"):
        files.read_torch_file(legacy)


def test_data_pack_options_are_checked_in_one_line(tmp_path: Path) -> None:
    import argparse

    from benchmarks.make_data_pack import check_args

    afile = tmp_path / "afile"
    afile.write_text("x")
    defaults = {"quality": 90, "max_side": 2048, "measure": 0, "out": tmp_path / "pack"}
    cases = [
        ({"max_side": 1}, "--max-side must be at least 8 pixels, got 1"),
        ({"max_side": -1}, "--max-side must be at least 8 pixels, got -1"),
        ({"quality": -5}, "--quality must be 1 to 100, got -5"),
        ({"out": afile}, "is a file; name a folder"),
    ]
    for change, words in cases:
        assert words in (check_args(argparse.Namespace(**{**defaults, **change})) or ""), change
    assert check_args(argparse.Namespace(**defaults)) is None
    result = subprocess.run(  # and the script says it in one line, before reading any image
        [sys.executable, str(ROOT / "benchmarks" / "make_data_pack.py"), "--max-side", "1"],
        capture_output=True,
        text=True,
    )
    assert (
        result.returncode == 1
        and result.stderr.strip() == "make_data_pack: --max-side must be at least 8 pixels, got 1"
    )


def test_text_files_and_odd_state_dicts_as_models_are_one_line(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (12, 10)).save(image)
    (tmp_path / "hello.pth").write_text("hello\n")
    (tmp_path / "words.pth").write_text("some other text here\n")
    torch.save({"params_ema": {0: torch.zeros(3)}}, tmp_path / "intkeys.pth")
    for name, words in (("hello", "not a PyTorch file"), ("words", "not a PyTorch file"), ("intkeys", "entry 0")):
        model = tmp_path / f"{name}.pth"
        for args in (
            ("upscale", image, "-m", model, "-o", tmp_path / "o.png"),
            ("convert", model, "-o", tmp_path / "o.safetensors"),
            ("eval", "-m", model, "--data", tmp_path),
        ):
            result = cli(*args)
            expected = "nothing to convert" if name == "intkeys" and args[0] == "convert" else words  # no fuse needed
            assert result.returncode == 1 and expected in result.stderr, (args, result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_missing_ffmpeg_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.media import synthetic_clip
    from repsr_cli.media.ffmpeg import ffmpeg_exe

    clip = synthetic_clip(tmp_path / "v.mp4", "48x32", "25", seconds=0.2)
    set5 = tmp_path / "set"
    set5.mkdir()
    Image.new("RGB", (32, 32), (90, 20, 200)).save(set5 / "a.png")
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    ffmpeg_exe.cache_clear()
    try:
        for args in (
            ("upscale-video", clip, "-o", tmp_path / "o.mp4"),
            ("eval", "-m", "repsr-x4", "--data", set5, "--degrade", "h264:26"),
        ):
            result = cli(*args)
            assert result.returncode == 1 and "no ffmpeg at" in result.stderr, (args, result.stderr)
            assert "IMAGEIO_FFMPEG_EXE" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    finally:
        monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
        ffmpeg_exe.cache_clear()


def test_long_names_and_unwritable_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 250-byte name works for images and video (temporary, lock and work names are kept within the limit);
    a name past the limit and a folder that takes no files are one line before any work."""
    from benchmarks.media import synthetic_clip

    image, clip = tmp_path / "a.png", synthetic_clip(tmp_path / "v.mp4", "48x32", "25", seconds=0.2)
    Image.new("RGB", (12, 10)).save(image)
    long = "n" * 250
    assert cli("upscale", image, "-o", tmp_path / f"{long}.png").returncode == 0
    result = cli("upscale-video", clip, "-o", tmp_path / f"{long[:246]}.mp4", "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / f"{long}.png").exists() and (tmp_path / f"{long[:246]}.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    too_long = tmp_path / f"{'n' * 300}.mp4"
    for args in (
        ("upscale-video", clip, "-o", too_long),
        ("convert", "repsr-x4", "--format", "onnx", "-o", too_long),
        ("upscale", image, "-o", too_long.with_suffix(".png")),
    ):
        result = cli(*args)
        assert result.returncode == 1 and "file systems take at most 255" in result.stderr, result.stderr
    for args in (  # a name past the limit as an input or a folder: what the OS says about it, in one line
        ("upscale", too_long.with_suffix(".png")),
        ("eval", "-m", "repsr-tiny-x4", "--data", too_long.with_suffix(""), "-s", "4"),
        ("convert", too_long.with_suffix(".pth")),
        ("plot", too_long.with_suffix("")),
        ("train", "--data", tmp_path, "--out", too_long.with_suffix(""), "--iters", "1"),
    ):
        one_line_error(cli(*args), "File name too long")
    # in a batch, an input whose name with the suffix passes the limit fails alone: the rest go on
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("m" * 250, "ok"):
        Image.new("RGB", (12, 10)).save(batch / f"{name}.png")
    result = cli("upscale", batch, "-s", "2", "-o", tmp_path / "out/")
    assert result.returncode == 1 and "file systems take at most 255" in result.stdout + result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ok_x2.png"]
    import os

    from repsr_cli.formats import files as files_module

    real_access = os.access  # a read-only folder: reading allowed, writing not
    monkeypatch.setattr(files_module.os, "access", lambda path, mode: not mode & os.W_OK and real_access(path, mode))
    for args in (
        ("convert", "repsr-x4", "--format", "onnx", "-o", tmp_path / "m.onnx"),
        ("upscale-video", clip, "-o", tmp_path / "o.mp4"),
    ):
        result = cli(*args)
        assert result.returncode == 1 and "the output folder is not writable" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_tiff_without_pages_fails_in_one_line_and_a_planar_16_bit_tiff_is_read(tmp_path: Path) -> None:
    import struct

    import tifffile

    from repsr_cli.media.read import read_image

    (tmp_path / "empty.tif").write_bytes(b"II*\x00" + struct.pack("<I", 0))  # a header whose first page is 'none'
    planes = np.random.default_rng(0).integers(0, 65536, (3, 24, 32), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", planes, photometric="rgb", planarconfig="separate")
    assert np.array_equal(read_image(tmp_path / "planar.tif").pixels, np.moveaxis(planes, 0, -1))
    result = cli("upscale", tmp_path / "empty.tif", tmp_path / "planar.tif", "-s", "2", "-m", "repsr-x2")
    assert result.returncode == 1
    assert result.stderr.strip() == f"failed: {tmp_path / 'empty.tif'}: not an image, or a format we cannot read"
    out = read_image(tmp_path / "planar_x2-repsr-x2.tif")
    assert out.pixels.dtype == np.uint16 and out.pixels.shape == (48, 64, 3)


def test_every_written_format_is_left_out_of_a_rerun_and_alpha_is_kept_or_composited(tmp_path: Path) -> None:
    """BMP and 16-bit TIFF outputs carry our marker too (a BMP in its reserved header fields), so a folder rerun
    with other settings does not upscale them again; an RGBA BMP keeps its alpha; RGBA to JPEG is composited
    on white, and the line says so."""
    from repsr_cli.media.read import read_image

    rgba = np.random.default_rng(0).integers(0, 256, (12, 16, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    rgba[:, 8:, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    wide = np.random.default_rng(1).integers(0, 65536, (12, 16, 3), dtype=np.uint16)
    import tifffile

    tifffile.imwrite(tmp_path / "w.tif", wide, photometric="rgb")
    first = cli("upscale", tmp_path / "a.png", "-s", "2", "--format", "bmp")
    assert first.returncode == 0, first.stderr
    assert cli("upscale", tmp_path / "w.tif", "-s", "2").returncode == 0
    bmp = read_image(tmp_path / "a_x2.bmp").pixels
    assert bmp.shape == (24, 32, 4) and bmp[:, :14, 3].max() == 0 and bmp[:, 18:, 3].min() == 255
    rerun = cli("upscale", tmp_path, "-s", "2", "--detail", "0.5")
    assert rerun.returncode == 0 and "left out 2 file(s)" in rerun.stdout, rerun.stdout
    assert sorted(p.name for p in tmp_path.glob("*detail*")) == ["a_x2-detail0.5.png", "w_x2-detail0.5.tif"]
    jpeg = cli("upscale", tmp_path / "a.png", "-s", "2", "-o", tmp_path / "j.jpg")
    assert jpeg.returncode == 0 and "alpha composited on white" in jpeg.stdout, jpeg.stdout
    pixels = read_image(tmp_path / "j.jpg").pixels
    assert pixels[:, :12].min() > 235  # fully transparent: white, not the hidden colour


def test_a_second_run_writing_the_same_image_output_is_refused(tmp_path: Path) -> None:
    from repsr_cli.formats.files import exclusive, sidecar

    source, out = tmp_path / "a.png", tmp_path / "out.png"
    Image.new("RGB", (12, 10)).save(source)
    with exclusive(sidecar(out, ".lock")):  # what a first run holds while it writes out.png
        result = cli("upscale", source, "-s", "2", "-o", out)
    assert result.returncode == 1 and "another repsr run is writing this output right now" in result.stderr
    assert not out.exists()
    assert cli("upscale", source, "-s", "2", "-o", out).returncode == 0 and out.exists()
    assert not list(tmp_path.glob(".*"))  # the lock goes with the run


def test_what_is_known_up_front_is_refused_before_any_work(tmp_path: Path) -> None:
    """One line, no bar, no summary, nothing written: a bad --tile (even when the output exists), CUDA that is
    not there, a missing input, an existing video output, a codec ffmpeg lacks."""
    from benchmarks.media import synthetic_clip

    image = tmp_path / "a.png"
    Image.new("RGB", (12, 10)).save(image)
    (tmp_path / "a_x2.png").write_bytes(b"an earlier output")
    clip = synthetic_clip(tmp_path / "v.mp4", "48x32", "25", seconds=0.2)
    (tmp_path / "v_x2.mp4").write_bytes(b"an earlier output")
    cases = [
        (("upscale", image, "-s", "2", "--tile", "-5"), "--tile must be 0 (whole image) or more, got -5"),
        (("upscale", tmp_path / "none.png", "-s", "2"), "none.png: file not found"),
        (("upscale-video", clip, "-s", "2", "-o", tmp_path / "v_x2.mp4"), "exists already"),
        (("upscale-video", clip, "-s", "2", "--codec", "nope", "-o", tmp_path / "n.mp4"), "unknown --codec 'nope'"),
    ]
    if not torch.cuda.is_available():
        cases.append((("upscale", image, "-s", "2", "--device", "cuda", "--overwrite"), "not available"))
    for args, words in cases:
        result = cli(*args)
        one_line_error(result, words)
        assert result.stdout == "", (args, result.stdout)


def test_plot_says_when_it_leaves_a_damaged_config_out(tmp_path: Path, tiny_checkpoint: Path) -> None:
    pytest.importorskip("matplotlib")
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_checkpoint.parent.parent, run)
    config = json.loads((run / "config.json").read_text())
    config["iters"] = str(config["iters"])
    (run / "config.json").write_text(json.dumps(config))
    result = cli("plot", run)
    assert result.returncode == 0 and (run / "curves.png").exists()
    assert "config.json: left out (--iters" in result.stderr and "expected a value of type int" in result.stderr


def test_a_16_bit_grey_tiff_keeps_its_exif_rotation_like_an_rgb_one(tmp_path: Path) -> None:
    import tifffile

    from repsr_cli.media.read import read_image

    grey = np.zeros((24, 32), np.uint16)
    grey[:4] = 60000  # a bright band along the top, stored; orientation 6 shows it on the right
    tifffile.imwrite(tmp_path / "g.tif", grey, photometric="minisblack", extratags=[(274, 3, 1, 6, True)])
    tifffile.imwrite(
        tmp_path / "c.tif", np.repeat(grey[..., None], 3, 2), photometric="rgb", extratags=[(274, 3, 1, 6, True)]
    )
    g, c = read_image(tmp_path / "g.tif").pixels, read_image(tmp_path / "c.tif").pixels
    assert g.shape == (32, 24, 1) and c.shape == (32, 24, 3) and g.dtype == np.uint16
    assert np.array_equal(g[..., 0], c[..., 0]) and g[:, -4:].min() == 60000 and g[:, :-4].max() == 0


@pytest.mark.parametrize("command", ["upscale", "upscale-video", "convert", "eval", "train", "plot", "models", "bench"])
def test_help_speaks_shell_not_python_annotations(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0
    page = result.stdout
    assert not re.search(r"<(bool|int|float|str|list\[\w+\]|path)>", page), page  # Typer's annotation labels
    (usage,) = [line for line in page.splitlines() if "Usage:" in line]
    assert "{" not in usage  # Typer's `{inputs}...` for a required argument
    flags = [line for line in page.splitlines() if re.match(r"│ +--(help|json|compile|overwrite|recursive)\b", line)]
    assert flags and not any(re.search(r"\b(BOOLEAN|TEXT|INTEGER)\b", line) for line in flags)
    if command == "upscale":
        assert "Usage: repsr upscale [OPTIONS] INPUTS..." in page
        assert re.search(r"--scale +-s +FLOAT", page) and re.search(r"--tile +INTEGER", page)
