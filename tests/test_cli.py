"""The chain from the command line: train -> convert -> upscale, and one-line errors for bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from repsr_cli.deploy.weights import load_model

from .conftest import cli, run_cli


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture()
def lr_image(tmp_path: Path) -> Path:
    path = tmp_path / "small.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)
    return path


def test_train_command_writes_checkpoint_log_and_config(tmp_path: Path, image_folder: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "train",
        "--data",
        image_folder,
        "--out",
        out,
        "--scale",
        "2",
        "--iters",
        "4",
        "--batch",
        "2",
        "--patch",
        "16",
        "--bn-switch",
        "0.5",
        "--bn-batches",
        "2",
        "--log-every",
        "2",
    )
    assert result.returncode == 0, result.stderr
    assert (out / "checkpoints" / "last.pth").exists()
    assert (out / "config.json").exists()
    records = [line for line in (out / "log.jsonl").read_text().splitlines() if line]
    assert len(records) == 2 and '"bn": "population"' in records[-1]
    again = cli("train", "--data", image_folder, "--out", out, "--iters", "4")
    assert_one_line_error(again, "--resume")


def test_convert_then_upscale(tmp_path: Path, tiny_checkpoint: Path, lr_image: Path) -> None:
    deploy = tmp_path / "tiny.safetensors"
    result = cli("convert", tiny_checkpoint, "-o", deploy)
    assert result.returncode == 0, result.stderr
    assert "max abs difference" in result.stdout
    diff = float(result.stdout.split("network:")[-1].split()[0])
    assert diff < 1e-5
    state = load_file(str(deploy))
    assert "body.0.weight" in state
    result = cli("convert", tiny_checkpoint, "-o", tmp_path / "tiny.pth", "--format", "pth")
    assert result.returncode == 0, result.stderr
    pth = torch.load(tmp_path / "tiny.pth", weights_only=True)
    assert set(pth) == {"params_ema"} and set(pth["params_ema"]) == set(state)

    for model in (deploy, tmp_path / "tiny.pth", tiny_checkpoint):
        out = tmp_path / f"up_{Path(model).stem}.png"
        result = cli("upscale", lr_image, "-s", "2", "-m", model, "-o", out)
        assert result.returncode == 0, result.stderr
        assert Image.open(out).size == (48, 40)
    # All three forms of the same model give the same pixels.
    images = [np.asarray(Image.open(tmp_path / f"up_{Path(m).stem}.png")) for m in (deploy, tiny_checkpoint)]
    assert np.abs(images[0].astype(int) - images[1].astype(int)).max() <= 1


def test_upscale_default_output_name_and_no_overwrite(tmp_path: Path, tiny_checkpoint: Path, lr_image: Path) -> None:
    result = cli("upscale", lr_image, "-s", "2", "-m", tiny_checkpoint)
    assert result.returncode == 0, result.stderr
    target = lr_image.with_name(f"small_x2-{tiny_checkpoint.stem}.png")
    assert target.exists()
    stamp = target.stat().st_mtime_ns
    result = cli("upscale", lr_image, "-s", "2", "-m", tiny_checkpoint)
    assert result.returncode == 0 and "skipped" in result.stdout
    assert target.stat().st_mtime_ns == stamp
    result = cli("upscale", lr_image, "-s", "2", "-m", tiny_checkpoint, "-o", lr_image, "--overwrite")
    assert result.returncode != 0 and "overwrite the input" in result.stderr
    assert Image.open(lr_image).size == (24, 20)


def test_output_lines_are_never_wrapped_when_not_a_terminal(
    tmp_path: Path, tiny_checkpoint: Path, lr_image: Path
) -> None:
    """A captured or piped run (CI, a script) gets each file's line whole, however long its paths."""
    deep = tmp_path / ("d" * 70) / ("e" * 70)
    deep.mkdir(parents=True)
    result = cli("upscale", lr_image, "-s", "2", "-m", tiny_checkpoint, "-o", deep)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if " -> " in line]
    assert len(lines) == 1 and str(deep / f"small_x2-{tiny_checkpoint.stem}.png") in lines[0], result.stdout


def test_bad_image_in_batch_is_reported_and_the_rest_complete(
    tmp_path: Path, tiny_checkpoint: Path, lr_image: Path
) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    out.mkdir()
    result = cli("upscale", bad, lr_image, "-s", "2", "-m", tiny_checkpoint, "-o", out)
    assert result.returncode != 0
    assert "broken.png" in result.stderr and "Traceback" not in result.stderr
    assert (out / f"small_x2-{tiny_checkpoint.stem}.png").exists() and not list(out.glob("broken*"))


def test_convert_errors_are_one_line(tmp_path: Path, tiny_checkpoint: Path) -> None:
    assert_one_line_error(cli("convert", tmp_path / "missing.pth"), "missing.pth", "not found")

    not_ckpt = tmp_path / "plain.pth"
    torch.save({"something": torch.zeros(2)}, not_ckpt)
    assert_one_line_error(cli("convert", not_ckpt), "plain.pth", "not a repsr training checkpoint")

    deploy = tmp_path / "fused.safetensors"
    assert cli("convert", tiny_checkpoint, "-o", deploy).returncode == 0
    assert_one_line_error(cli("convert", deploy), "fused.safetensors", "already fused")
    fused_pth = tmp_path / "fused.pth"
    torch.save({"params_ema": load_file(str(deploy))}, fused_pth)
    assert_one_line_error(cli("convert", fused_pth), "already fused")

    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(tiny_checkpoint.read_bytes()[:2000])
    assert_one_line_error(cli("convert", corrupt), "corrupt.pth")

    unknown = tmp_path / "unknown.pth"
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["config"]["block"] = "transformer"
    torch.save(ckpt, unknown)
    assert_one_line_error(cli("convert", unknown), "unknown.pth", "block")


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_convert_never_unpickles_objects(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as fh:
        pickle.dump({"format": "repsr-train", "x": Payload()}, fh)
    result = cli("convert", evil)
    assert_one_line_error(result, "evil.pth")
    assert "code ran" not in result.stdout


def test_upscale_errors_are_one_line(tmp_path: Path, lr_image: Path) -> None:
    assert_one_line_error(cli("upscale", lr_image, "-m", tmp_path / "nope.safetensors"), "nope.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    assert_one_line_error(cli("upscale", lr_image, "-m", garbage), "garbage.safetensors")
    assert_one_line_error(cli("upscale", lr_image, "-m", "no-such-model"), "no-such-model")
    assert_one_line_error(cli("upscale", lr_image, "--device", "cuda:7", "-m", garbage))


def test_unknown_architecture_state_dict(tmp_path: Path) -> None:
    from repsr_cli.errors import UserError

    odd = tmp_path / "odd.pth"
    torch.save({"params": {"conv_first.weight": torch.zeros(4, 3, 3, 3)}}, odd)
    with pytest.raises(UserError, match="unknown architecture"):
        load_model(odd)


def test_train_errors_are_one_line_and_nothing_else(tmp_path: Path) -> None:
    result = cli("train", "--data", tmp_path / "missing", "--out", tmp_path / "run")
    assert_one_line_error(result, "missing")
    assert result.stdout == ""  # no empty progress bar before the error
    misspelt = cli("train", "--data", tmp_path, "--out", tmp_path / "run", "--loss", "L1")
    assert_one_line_error(misspelt, "unknown --loss 'L1' (use l1, l2, sharp, sharp-overshoot10, sharp-usm)")


def test_a_script_sees_each_file_as_it_finishes_and_ctrl_c_says_what_was_done(tmp_path: Path) -> None:
    """stdout to a file (a script, nohup, CI): each line arrives when its file is written, not at exit; a
    Ctrl-C ends the batch with one line counting what was written and what was not."""
    import signal
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (400, 600, 3), dtype=np.uint8)).save(tmp_path / f"a{i}.png")
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        cmd = [sys.executable, "-m", "repsr_cli", "upscale", str(tmp_path), "-s", "4"]
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (tmp_path / "a0_x4.png").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        line = f"{tmp_path / 'a0.png'} -> {tmp_path / 'a0_x4.png'}"
        while line not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the line comes between the next image's tiles, not at exit
        assert proc.poll() is None, "the batch ended before the check: give it more files"
        assert line in log.read_text() and not (tmp_path / "a5_x4.png").exists()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "interrupted:" in lines[0] and "of 6 files written" in lines[0], stderr
    written = len(list(tmp_path.glob("*_x4.png")))
    assert 1 <= written < 6 and not list(tmp_path.glob(".*.tmp"))


def test_tables_keep_whole_names_without_a_terminal() -> None:
    result = cli("models")
    assert result.returncode == 0
    for name in ("repsr-sharp-base-x4", "repsr-sharp-base-x2", "repsr-real-base-x4"):
        assert f" {name} " in result.stdout, result.stdout
    assert "…" not in result.stdout


def test_detail_values_name_their_outputs_exactly(tmp_path: Path) -> None:
    """-0 is 0; two values that differ in the seventh digit are two files; a value just over 1 is quoted as
    given, not rounded to 1."""
    image = tmp_path / "a.png"
    Image.new("RGB", (16, 12), (40, 90, 200)).save(image)
    for value in ("-0", "0", "0.1234561", "0.1234564"):
        assert cli("upscale", image, "-s", "4", f"--detail={value}").returncode == 0
    names = sorted(p.name for p in tmp_path.glob("a_x4*"))
    assert names == ["a_x4-detail0.1234561.png", "a_x4-detail0.1234564.png", "a_x4-detail0.png"]
    result = cli("upscale", image, "-s", "4", "--detail=1.0000001")
    assert result.returncode == 1 and "got 1.0000001" in result.stderr
